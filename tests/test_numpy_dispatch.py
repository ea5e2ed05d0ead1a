"""The CLI's numpy AVX-512 switch on AMD Zen 4 (kdp_beam.numpy_dispatch): which CPUs, which
environments, and that numpy honours it. Real /proc/cpuinfo texts, real subprocesses."""

import subprocess
import sys
import textwrap

import pytest

from kdp_beam.numpy_dispatch import AVX512_TARGETS, first_cpu, slow_avx512_sort

FLAGS = "fpu vme sse sse2 ssse3 sse4_1 sse4_2 avx avx2 bmi2"
ZEN4 = f"""processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC 9R14
flags\t\t: {FLAGS} avx512f avx512dq avx512bw avx512vl
"""
CPUS = {
    "zen4": (ZEN4, True),
    "zen3, no AVX-512": (ZEN4.replace("model\t\t: 17", "model\t\t: 1").replace(" avx512f avx512dq avx512bw avx512vl", ""), False),
    "zen5": (ZEN4.replace("cpu family\t: 25", "cpu family\t: 26"), False),
    "intel with AVX-512": (ZEN4.replace("AuthenticAMD", "GenuineIntel").replace("cpu family\t: 25", "cpu family\t: 6"), False),
    "no flags line": ("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\n", False),
    "empty": ("", False),
}


@pytest.mark.parametrize("name", CPUS)
def test_only_zen4_has_the_slow_sort(name):
    text, slow = CPUS[name]
    assert slow_avx512_sort(first_cpu(text)) is slow


def test_the_first_processor_decides():
    intel = CPUS["intel with AVX-512"][0].replace("processor\t: 0", "processor\t: 1")
    assert first_cpu("\n" + ZEN4 + "\n" + intel)["vendor_id"] == "AuthenticAMD"
    assert first_cpu(ZEN4 + "\n" + intel)["model name"] == "AMD EPYC 9R14"


def run_python(code, env=None):
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, check=True)
    return done.stdout.splitlines()[-1].split()  # the script's own last line


NUMPY_AFTER = """
    import os, sys
    from kdp_beam.numpy_dispatch import avoid_slow_avx512_sort
    {before}
    done = avoid_slow_avx512_sort(cpuinfo={cpuinfo!r})
    import numpy
    from numpy._core import _multiarray_umath as umath
    print(done, repr(os.environ.get("NPY_DISABLE_CPU_FEATURES")).replace(" ", "_"), umath.__cpu_features__.get("X86_V4"))
"""


@pytest.fixture
def zen4_cpuinfo(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(ZEN4 + "\n" + ZEN4.replace("processor\t: 0", "processor\t: 1"))
    return str(path)


def test_a_zen4_gets_numpy_without_avx512(zen4_cpuinfo):
    done, variable, x86_v4 = run_python(NUMPY_AFTER.format(before="", cpuinfo=zen4_cpuinfo))
    assert (done, variable) == ("True", repr(AVX512_TARGETS).replace(" ", "_"))
    assert x86_v4 == "False"  # numpy read it (False too on a CPU without AVX-512)


@pytest.mark.parametrize(
    "before, env",
    [
        ("import numpy", {}),  # too late: numpy's dispatch is chosen at import
        ("", {"NPY_DISABLE_CPU_FEATURES": ""}),  # the user's own choice, even empty
        ("", {"NPY_ENABLE_CPU_FEATURES": "X86_V3 X86_V4"}),
    ],
)
def test_left_alone(zen4_cpuinfo, before, env):
    import os

    environment = {k: v for k, v in os.environ.items() if not k.startswith("NPY_")} | env
    done, variable, _ = run_python(NUMPY_AFTER.format(before=before, cpuinfo=zen4_cpuinfo), environment)
    assert done == "False"
    assert variable == repr(env.get("NPY_DISABLE_CPU_FEATURES")).replace(" ", "_")


def test_no_cpuinfo_file(tmp_path):
    done, variable, _ = run_python(NUMPY_AFTER.format(before="", cpuinfo=str(tmp_path / "none")))
    assert (done, variable) == ("False", "None")


def test_the_cli_process_sets_it_on_this_machine_as_its_cpu_says():
    """kdp-beam's main(), as the process's own command (cli.run), decides before importing numpy
    (any command: here --help)."""
    code = """
        import os, sys
        from kdp_beam import cli
        from kdp_beam.numpy_dispatch import first_cpu, slow_avx512_sort
        sys.argv = ["kdp-beam", "--help"]
        numpy_before = "numpy" in sys.modules
        try:
            cli.main(own_process=True)
        except SystemExit:
            pass
        try:
            zen4 = slow_avx512_sort(first_cpu(open("/proc/cpuinfo").read()))
        except OSError:
            zen4 = False
        print(zen4, numpy_before, os.environ.get("NPY_DISABLE_CPU_FEATURES") == {targets!r})
    """
    environment = {k: v for k, v in __import__("os").environ.items() if not k.startswith("NPY_")}
    zen4, numpy_imported, variable_set = run_python(code.format(targets=AVX512_TARGETS), environment)
    assert numpy_imported == "False"  # importing the CLI imports no numpy
    assert variable_set == zen4
