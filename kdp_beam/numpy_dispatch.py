"""numpy's AVX-512 sort is ~5x slower than its AVX2 sort on AMD Zen 4: the CLI turns
numpy's AVX-512 dispatch off there, before numpy is imported.

numpy sorts with x86-simd-sort, whose AVX-512 partition writes with the memory form of
VPCOMPRESS, which Zen 4 runs in microcode (AMD's Software Optimization Guide for the Zen 4
microarchitecture, 2.11.2: "Avoid the memory destination form of COMPRESS instructions";
x86-simd-sort issue #6). OpenJDK turns its AVX-512 sort off on the same CPUs, AMD family
19h (JDK-8317976). Measured on a Zen 4 EPYC: np.sort of 64k float64 values, 37 ns a value
with AVX-512, 7 with AVX2; the quantile summaries sort every batch of every numeric
feature (kdp_beam.analyzers.quantiles), so this is most of their cost. Zen 4 runs AVX-512
on 256-bit units, so numpy's other loops lose nothing measurable (benchmarks/README.md).

Only the kdp-beam process's own numpy (and the local worker processes it starts, which
inherit its environment); a user who sets NPY_DISABLE_CPU_FEATURES (even empty) keeps
theirs. Remote workers set it themselves (docs/scaling.md).
"""

import logging
import os
import sys

# numpy 2.4's names of its AVX-512 dispatch targets (X86_V4 and the two above it).
AVX512_TARGETS = "X86_V4 AVX512_ICL AVX512_SPR"
_ZEN4_FAMILY = 25  # AMD family 19h: Zen 3 (no AVX-512) and Zen 4; Zen 5 is 1Ah
_LOG = logging.getLogger(__name__)


def first_cpu(cpuinfo_text):
    """{field: value} of the first processor of /proc/cpuinfo's text."""
    fields = {}
    for line in cpuinfo_text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        name, _, value = line.partition(":")
        fields[name.strip()] = value.strip()
    return fields


def slow_avx512_sort(cpu):
    """Whether the CPU ({field: value} of /proc/cpuinfo) is a Zen 4: AMD, family 19h, with
    AVX-512."""
    return (
        cpu.get("vendor_id") == "AuthenticAMD"
        and cpu.get("cpu family") == str(_ZEN4_FAMILY)
        and "avx512f" in cpu.get("flags", "").split()
    )


def numpy_version():
    from importlib.metadata import PackageNotFoundError, version

    try:
        return tuple(int(part) for part in version("numpy").split(".")[:2])
    except (PackageNotFoundError, ValueError):
        return None


def avoid_slow_avx512_sort(cpuinfo="/proc/cpuinfo"):
    """Sets NPY_DISABLE_CPU_FEATURES to AVX512_TARGETS on a Zen 4 when numpy is not yet
    imported, is 2.4 or later (whose target names these are), and neither it nor
    NPY_ENABLE_CPU_FEATURES is set. Returns whether it did."""
    environ = os.environ
    if "numpy" in sys.modules or "NPY_DISABLE_CPU_FEATURES" in environ or "NPY_ENABLE_CPU_FEATURES" in environ:
        return False
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            cpu = first_cpu(f.read(1 << 16))  # the first processor's lines come first
    except OSError:  # not Linux
        return False
    if not slow_avx512_sort(cpu) or (numpy_version() or (0, 0)) < (2, 4):
        return False
    environ["NPY_DISABLE_CPU_FEATURES"] = AVX512_TARGETS
    _LOG.info(
        "kdp_beam: an AMD Zen 4, where numpy's AVX-512 sort is ~5x slower than its AVX2 "
        "one: NPY_DISABLE_CPU_FEATURES=%r (set it yourself, even empty, to keep yours)",
        AVX512_TARGETS,
    )
    return True
