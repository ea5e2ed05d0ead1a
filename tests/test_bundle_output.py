"""A run's output appears whole and only if the run succeeds; an output that is not a
bundle is refused before the job starts (kdp_beam.bundle.staging)."""

import json
import os
import tempfile

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pytest

import kdp_beam
import tests.object_store as store
from kdp_beam.analyzers import analyze_batches
from kdp_beam.bundle.loader import load_bundle
from kdp_beam.bundle.writer import write_bundle
from kdp_beam.cli import main
from kdp_beam.errors import BundleError
from kdp_beam.job import run_analysis
from kdp_beam.plugins import FeatureType, register_type
from kdp_beam.spec import FeatureSpec

SPEC = FeatureSpec({"x": "float_normalized", "name": "string_categorical"})
DIRTY = "x,name\n1.5,a\noops,b\n2.5,c\n"  # row 2 is bad: a dead letter in skip mode
CLEAN = "x,name\n1.5,zz\n2.5,yy\n4,zz\n"


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def files_in(directory):
    return {
        os.path.relpath(os.path.join(root, f), directory).replace(os.sep, "/")
        for root, _, names in os.walk(directory)
        for f in names
    }


def snapshot(directory):
    return {name: (directory / name).read_bytes() for name in files_in(directory)}


def assert_holds_exactly_its_bundle(directory):
    manifest = json.loads((directory / "manifest.json").read_text())
    assert files_in(directory) == {"manifest.json", *manifest["files"]}


def test_a_rerun_replaces_the_whole_output(tmp_path, capsys):
    features = write(tmp_path / "f.json", json.dumps({"features": SPEC.to_json()["features"]}))
    out = tmp_path / "runs" / "out"
    args = ["analyze", "--features", features, "--output", str(out)]
    assert main(args + ["--input", write(tmp_path / "dirty.csv", DIRTY), "--on-bad-record=skip"]) == 0
    assert files_in(out / "bad_records") and load_bundle(str(out)).bad_records["count"] == 1
    assert_holds_exactly_its_bundle(out)  # dead letters are listed, with their checksums
    assert main(args + ["--input", write(tmp_path / "clean.csv", CLEAN)]) == 0
    assert_holds_exactly_its_bundle(out)
    assert not (out / "bad_records").exists()  # the previous run's dead letters are gone
    assert load_bundle(str(out)).features["name"]["vocabulary"] == ["zz", "yy"]
    assert os.listdir(out.parent) == ["out"]  # no staging directory left beside it


class NanAnalyzer:
    """Fails the job at its very end: its NaN cannot be written to statistics.json."""

    def create_accumulator(self):
        return 0

    def add_batch(self, acc, column):
        return acc + len(column)

    def merge_accumulators(self, accs):
        return sum(accs)

    def finalize(self, acc):
        return {"value": float("nan")}

    def to_state(self, acc):
        return acc

    def from_state(self, state):
        return state


@register_type
class NanStatistic(FeatureType):
    name = "nan_statistic"

    def column_kind(self, options):
        return "float"

    def analyzers(self, options, profile=False):
        return {**super().analyzers(options, profile), "nan": NanAnalyzer()}


@pytest.mark.parametrize(
    "features, policy",
    [
        # After the workers wrote token state and dead letters, while the bundle is written.
        ({**SPEC.to_json()["features"], "x2": {"type": "custom", "statistic": "nan_statistic"}}, "skip"),
        (SPEC.to_json()["features"], "fail"),  # at the bad record
    ],
    ids=["failing_at_the_end", "failing_at_a_bad_record"],
)
def test_a_failed_run_leaves_the_previous_bundle_exactly_as_it_was(tmp_path, features, policy):
    out = tmp_path / "runs" / "out"
    run_analysis(SPEC, write(tmp_path / "clean.csv", CLEAN), str(out))
    before = snapshot(out)
    dirty = write(tmp_path / "dirty.csv", DIRTY.replace("\n", ",1\n").replace("x,name,1", "x,name,x2"))
    with pytest.raises(Exception):
        run_analysis(FeatureSpec(features), dirty, str(out), on_bad_record=policy)
    assert snapshot(out) == before
    assert load_bundle(str(out)).row_count == 3
    assert os.listdir(out.parent) == ["out"]


def unwritable(tmp_path):
    """A directory this process cannot create anything in (root ignores permissions)."""
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        return locked / "out"
    return "/proc/kdp-beam-unwritable/out"  # procfs: no directory can be made there


def refused_outputs(tmp_path):
    """(output, words of the error, what must stay as it was)."""
    data = tmp_path / "data"
    write(data / "part-0.csv", CLEAN)
    notes = tmp_path / "annotated"
    run_analysis(SPEC, str(data / "part-0.csv"), str(notes))
    write(notes / "notes.txt", "my notes")
    other = tmp_path / "other-tool"
    write(other / "manifest.json", '{"name": "a web app"}')
    a_file = write(tmp_path / "a_file", "precious")
    current = tmp_path / "current"
    run_analysis(SPEC, str(data / "part-0.csv"), str(current))
    os.chdir(current)  # the caller's monkeypatch restores it
    mount_point = {"mount_point": ("/proc", "is a mount point", None)} if os.path.ismount("/proc") else {}
    return {
        **mount_point,
        "current_directory": (".", "is the current directory or holds it", current),
        "its_parent": ("..", "is the current directory or holds it", None),
        "directory_of_data": (data, "holds files that are not part of a kdp_beam bundle (part-0.csv)", data),
        "bundle_with_other_files": (notes, "(notes.txt)", notes),
        "another_tools_manifest": (other, "(manifest.json)", other),
        "a_file": (a_file, "is a file; the output is the bundle's directory", tmp_path / "a_file"),
        "below_a_file": (f"{a_file}/out", "a_file is a file", tmp_path / "a_file"),
        "unwritable": (unwritable(tmp_path), "cannot write the bundle", None),
    }


@pytest.mark.parametrize("command", ["analyze", "merge"])
def test_an_output_that_is_not_a_bundle_is_refused_before_the_job_starts(tmp_path, capsys, monkeypatch, command):
    source, later = tmp_path / "source", tmp_path / "later"
    run_analysis(SPEC, write(tmp_path / "clean.csv", CLEAN), str(source))
    run_analysis(SPEC, write(tmp_path / "later.csv", CLEAN), str(later))
    features = write(tmp_path / "f.json", json.dumps({"features": SPEC.to_json()["features"]}))
    monkeypatch.chdir(tmp_path)
    cases = refused_outputs(tmp_path)
    monkeypatch.setattr(beam.Pipeline, "run", lambda self: pytest.fail("the job started"))
    for name, (output, words, kept) in cases.items():
        before = snapshot(kept) if kept is not None and kept.is_dir() else kept and kept.read_bytes()
        if command == "analyze":
            args = ["analyze", "--features", features, "--input", str(tmp_path / "clean.csv")]
        else:
            args = ["merge", str(source), str(later)]
        assert main([*args, "--output", str(output)]) == 2, name
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("kdp-beam: error: ") and words in err[0], (name, err)
        if kept is not None:
            assert (snapshot(kept) if kept.is_dir() else kept.read_bytes()) == before, name
    assert sorted(p.name for p in tmp_path.iterdir() if "kdp-beam" in p.name) == []


def test_an_empty_directory_and_a_bundle_are_replaced_and_merge_may_write_over_its_input(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    run_analysis(SPEC, write(tmp_path / "clean.csv", CLEAN), str(empty))
    assert load_bundle(str(empty)).row_count == 3
    run_analysis(SPEC, write(tmp_path / "day.csv", CLEAN), str(tmp_path / "day"))
    kdp_beam.merge_bundles([str(empty), str(tmp_path / "day")], str(empty))  # a daily job's history
    assert load_bundle(str(empty)).features["name"]["vocabulary_counts"] == [4, 2]
    assert_holds_exactly_its_bundle(empty)


def test_feature_space_adapt_leaves_nothing_behind(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    fs = kdp_beam.FeatureSpace({"x": kdp_beam.FeatureSpace.float_normalized(), "name": "string_categorical"})
    fs.adapt(write(tmp_path / "clean.csv", CLEAN))
    assert fs.preprocessors["name"].get_vocabulary() == ["[UNK]", "zz", "yy"]
    assert os.listdir(tmp_path / "tmp") == []


def test_write_bundle_to_a_path_it_cannot_write_is_a_bundle_error(tmp_path):
    stats = {"spec": SPEC.to_json(), **analyze_batches(SPEC, [pa.record_batch({"x": [1.0], "name": ["a"]})])}
    a_file = write(tmp_path / "a_file", "")
    with pytest.raises(BundleError, match=r"cannot write .*a_file"):
        write_bundle(stats, a_file)  # users' own pipelines write where they say


def test_without_an_atomic_exchange_the_previous_bundle_is_moved_aside_then_deleted(tmp_path, monkeypatch):
    import kdp_beam.bundle.staging as staging

    monkeypatch.setattr(staging, "_exchange", lambda a, b: False)  # macOS, Windows, ...
    out = tmp_path / "runs" / "out"
    run_analysis(SPEC, write(tmp_path / "dirty.csv", DIRTY), str(out), on_bad_record="skip")
    run_analysis(SPEC, write(tmp_path / "clean.csv", CLEAN), str(out))
    assert load_bundle(str(out)).row_count == 3 and os.listdir(out.parent) == ["out"]
    assert_holds_exactly_its_bundle(out)
    # A kill between the two renames: no bundle at the output, the previous one whole aside.
    real_rename = os.rename

    def rename(source, destination):
        if destination == os.path.realpath(out):  # the second one: the new bundle in
            raise store.Killed()
        real_rename(source, destination)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(store.Killed):
        run_analysis(SPEC, str(tmp_path / "dirty.csv"), str(out), on_bad_record="skip")
    monkeypatch.undo()
    aside = [p for p in os.listdir(out.parent) if p.startswith(".out.kdp-beam-old-")]
    assert not out.exists() and len(aside) == 1
    assert load_bundle(str(out.parent / aside[0])).row_count == 3


# --- object stores (gs://, s3://): no rename, a copy and a delete per object ----------------


@pytest.fixture
def objects():
    store.OBJECTS.clear()
    store.fail_after(None)
    yield store.OBJECTS
    store.OBJECTS.clear()
    store.fail_after(None)


def objects_under(prefix):
    return {path[len(prefix) + 1 :] for path in store.OBJECTS if path.startswith(prefix + "/")}


def test_an_object_store_output_is_replaced_whole(tmp_path, objects):
    out = "memstore://bucket/runs/out"
    run_analysis(SPEC, write(tmp_path / "dirty.csv", DIRTY), out, on_bad_record="skip")
    bundle = load_bundle(out, with_state=True)
    assert bundle.bad_records["count"] == 1 and bundle.state["tokens"]["name"]
    assert objects_under(out) == {"manifest.json", *bundle.manifest["files"]}
    run_analysis(SPEC, write(tmp_path / "clean.csv", CLEAN), out)
    bundle = load_bundle(out)
    assert objects_under(out) == {"manifest.json", *bundle.manifest["files"]}
    assert bundle.bad_records["count"] == 0 and set(objects) == {f"{out}/{n}" for n in objects_under(out)}
    day = "memstore://bucket/runs/day"
    run_analysis(SPEC, write(tmp_path / "day.csv", CLEAN), day)
    kdp_beam.merge_bundles([out, day], "memstore://bucket/runs/merged")
    assert load_bundle("memstore://bucket/runs/merged").features["name"]["vocabulary_counts"] == [4, 2]
    objects["memstore://bucket/runs/data/part-0.csv"] = b"x\n1\n"
    for output, words in [("memstore://bucket/runs/data", r"not part of a kdp_beam bundle \(part-0\.csv\)"),
                          ("memstore://bucket/runs/data/part-0.csv", "is a file")]:
        with pytest.raises(BundleError, match=words):
            run_analysis(SPEC, str(tmp_path / "clean.csv"), output)


def test_an_object_store_swap_killed_at_any_change_leaves_the_previous_bundle_none_or_the_new(tmp_path, objects):
    from kdp_beam.bundle.staging import staged_output

    out = "memstore://bucket/out"
    previous = {"spec": SPEC.to_json(), **analyze_batches(SPEC, [pa.record_batch({"x": [1.0], "name": ["a"]})])}
    rng = np.random.default_rng(0)
    new_batch = pa.record_batch({"x": rng.normal(size=50), "name": [f"n{i % 7}" for i in range(50)]})
    new = {"spec": SPEC.to_json(), **analyze_batches(SPEC, [new_batch])}
    with staged_output(out) as staging_dir:
        write_bundle(previous, staging_dir)
    before = dict(objects)
    outcomes = []
    for changes in range(100):
        objects.clear()
        objects.update(before)
        store.fail_after(changes)
        try:
            with staged_output(out) as staging_dir:
                write_bundle(new, staging_dir)
        except store.Killed:
            pass
        else:
            break
        finally:
            store.fail_after(None)
        try:
            bundle = load_bundle(out)
        except BundleError:
            outcomes.append("none")
            continue
        if bundle.row_count == 1:  # the previous bundle, untouched
            outcomes.append("previous")
            assert {k: v for k, v in objects.items() if k.startswith(out + "/")} == before
        else:
            outcomes.append("new")
            assert bundle.row_count == 50
    assert load_bundle(out).row_count == 50 and objects_under(out) == {"manifest.json", *load_bundle(out).manifest["files"]}
    assert {"previous", "none"} <= set(outcomes), outcomes
    # What a killed swap left (a part of the files, no manifest) goes with the next run.
    objects.clear()
    objects.update(before)
    store.fail_after(len(outcomes) - 1 - outcomes[::-1].index("none"))  # the last "none"
    with pytest.raises(store.Killed):
        with staged_output(out) as staging_dir:
            write_bundle(new, staging_dir)
    store.fail_after(None)
    with staged_output(out) as staging_dir:
        write_bundle(new, staging_dir)
    assert objects_under(out) == {"manifest.json", *load_bundle(out).manifest["files"]}
