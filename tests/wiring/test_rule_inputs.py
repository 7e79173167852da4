"""The files the rules declare, found once while the workflow is parsed (snakebatch.wiring.inputs)."""

import os
from types import SimpleNamespace

import pytest
from snakemake.exceptions import WorkflowError

from helpers import validated, write
from snakebatch.settings.config import plan_run
from snakebatch.storage.layout import RunLayout
from snakebatch.wiring import inputs

LAYOUT = RunLayout.for_run("r")


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A working directory with ``data/`` (three files) and ``score.py``."""
    monkeypatch.chdir(tmp_path)
    for name in ("a.txt", "b.txt", "c.txt"):
        write(tmp_path / "data" / name, name)
    write(tmp_path / "score.py", "def run(b):\n    return b\n")
    return tmp_path


def plan(**config):
    return plan_run(validated({"run_name": "r", "input": {"path": "data"}, "entry_script": "score.py", **config}), 2)


def test_paths_with_braces_are_left_out():
    assert inputs.plain_paths(["a.txt", "x{y}.txt", "{z}", "b{.txt"]) == ["a.txt", "b{.txt"]


def test_a_dry_run_lists_the_dataset_and_writes_nothing(project):
    listing = inputs.dataset_listing(plan(), LAYOUT, main_process=True, dryrun=True)
    assert listing.startswith("results/r/partition/listing-") and listing.endswith(".list")
    assert not os.path.exists("results")
    assert inputs.dataset_listing(plan(), LAYOUT, True, True) == listing   # the same dataset, the same name


def test_a_real_run_hands_the_listing_to_the_partition(project):
    listing = inputs.dataset_listing(plan(), LAYOUT, main_process=True, dryrun=False)
    fingerprint = os.path.basename(listing)[len("listing-"):-len(".list")]
    assert os.path.exists(LAYOUT.listed(fingerprint)) and not os.path.exists(listing)
    write(project / "data" / "d.txt", "d")
    assert inputs.dataset_listing(plan(), LAYOUT, True, True) != listing   # a changed dataset, a new name


def test_a_dataset_a_rule_makes_is_unlisted_and_its_roots_are_inputs(project):
    missing = plan(input={"path": "made/later"})
    listing = inputs.dataset_listing(missing, LAYOUT, main_process=True, dryrun=True)
    assert listing == LAYOUT.listing(inputs.UNLISTED)
    assert inputs.dataset_roots(missing, LAYOUT, listing) == ["made/later"]
    assert inputs.dataset_roots(plan(), LAYOUT, LAYOUT.listing("0123456789abcdef")) == []


def test_a_jobs_snakemake_takes_the_recorded_listing(project):
    listing = inputs.dataset_listing(plan(), LAYOUT, main_process=False, dryrun=False,
                                     recorded_listing="listing-0123456789abcdef.list")
    assert listing == LAYOUT.partition_file("listing-0123456789abcdef.list")


def test_an_empty_dataset_fails_the_parse_naming_it(project):
    os.makedirs(project / "empty")
    with pytest.raises(WorkflowError, match=r"^snakebatch: invalid input: .*empty"):
        inputs.dataset_listing(plan(input={"path": "empty"}), LAYOUT, True, True)


def test_runner_inputs_are_the_script_and_every_file_of_local_models(project):
    write(project / "model" / "weights.bin", "w")
    assert inputs.runner_inputs(plan(models={"m": "model"}), LAYOUT) == ["score.py", "model", "model/weights.bin"]
    assert inputs.runner_inputs(plan(models={"m": "memory://bucket/model"}), LAYOUT) == ["score.py"]


def test_remote_resources_name_each_object_by_its_version(project):
    import fsspec

    with fsspec.open("memory://wiring-test/model.bin", "wb") as handle:
        handle.write(b"weights")
    remote = plan(models={"m": "memory://wiring-test/model.bin"})
    versions = inputs.remote_resources(remote, main_process=True)
    assert versions.startswith("models.m=") and len(versions) == len("models.m=") + 16
    assert inputs.remote_resources(remote, main_process=False) == ""
    assert inputs.remote_resources(plan(), main_process=True) == ""


def test_an_unreadable_remote_model_names_its_key(project):
    with pytest.raises(WorkflowError, match=r"^snakebatch: invalid config: models\.m: "):
        inputs.remote_resources(plan(models={"m": "memory://wiring-test/none.bin"}), main_process=True)


def test_unfinished_markers_and_missing_manifests_are_read_once(project):
    ids = ["00000", "00001", "00002"]
    assert inputs.unfinished_markers(LAYOUT, ids) == {}
    write(LAYOUT.shard_unfinished("00001"))
    write(LAYOUT.shard_result("00000"))
    assert inputs.unfinished_markers(LAYOUT, ids) == {"00001": LAYOUT.shard_unfinished("00001")}
    write(LAYOUT.shard_unfinished("00002", alternate=True))  # a shard that stopped early again
    assert inputs.unfinished_markers(LAYOUT, ids) == {"00001": LAYOUT.shard_unfinished("00001"),
                                                      "00002": LAYOUT.shard_unfinished("00002", alternate=True)}
    listing = LAYOUT.listing("0123456789abcdef")
    assert inputs.missing_manifests(LAYOUT, listing, ids) == {}   # no listing: the partition runs anyway
    write(listing)
    write(LAYOUT.manifest("00000"))
    assert inputs.missing_manifests(LAYOUT, listing, ids) == {s: LAYOUT.manifest(s) for s in ("00001", "00002")}


def test_an_input_by_shard_is_no_function_while_there_is_none():
    assert inputs.input_by_shard({}) == []
    by_shard = inputs.input_by_shard({"00001": "m1"})
    assert by_shard(SimpleNamespace(shard="00001")) == ["m1"]
    assert by_shard(SimpleNamespace(shard="00000")) == []


def test_run_folders_of_a_jobs_files():
    assert inputs.run_folder(None, ["results/r/merged.txt", "results/r/_SUCCESS"]) == "results/r"
    assert inputs.report_run_folder(None, SimpleNamespace(summary="/x/results/r/summary.json")) == "/x/results/r"
