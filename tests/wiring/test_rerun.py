"""wiring.rerun: a shard that stopped early runs again without a marker dated ahead (issue 21)."""

import os
from types import SimpleNamespace

from helpers import write
from snakebatch.storage.layout import RunLayout
from snakebatch.wiring.rerun import drop_unfinished_results, unfinished_param

LAYOUT = RunLayout.for_run("r")


def test_a_real_run_removes_the_results_of_shards_with_a_marker_and_nothing_else(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for shard in ("00000", "00001"):
        write(LAYOUT.shard_result(shard), "{}\n")
    markers = {"00001": LAYOUT.shard_unfinished("00001", alternate=True)}
    assert drop_unfinished_results(LAYOUT, markers, main_process=True, dryrun=True) == []
    assert drop_unfinished_results(LAYOUT, markers, main_process=False, dryrun=False) == []
    assert (tmp_path / LAYOUT.shard_result("00001")).exists()
    assert drop_unfinished_results(LAYOUT, markers, main_process=True, dryrun=False) == [LAYOUT.shard_result("00001")]
    assert not (tmp_path / LAYOUT.shard_result("00001")).exists() and (tmp_path / LAYOUT.shard_result("00000")).exists()
    assert drop_unfinished_results(LAYOUT, markers, main_process=True, dryrun=False) == []   # already gone


def test_the_marker_is_a_param_in_a_dry_run_only():
    markers = {"00001": LAYOUT.shard_unfinished("00001")}
    assert unfinished_param(markers, dryrun=False) == "" and unfinished_param({}, dryrun=True) == ""
    param = unfinished_param(markers, dryrun=True)
    assert param(SimpleNamespace(shard="00001")) == "shard-00001.unfinished"
    assert param(SimpleNamespace(shard="00000")) == ""


def test_snakemakes_incomplete_marker_is_where_the_installed_snakemake_puts_it():
    from snakemake.persistence.file import FilePersistence

    from snakebatch.wiring.rerun import SNAKEMAKE_INCOMPLETE, snakemake_incomplete_marker

    persistence = SimpleNamespace(_fetch_max_len=lambda subject: 255)
    for path in ("results/r/out.txt", "results/" + "r" * 300 + "/_SUCCESS"):
        assert snakemake_incomplete_marker(path) == FilePersistence._record_path(persistence, SNAKEMAKE_INCOMPLETE, path)


def test_only_outputs_snakemake_marks_incomplete_are_removed_and_never_under_a_lock(tmp_path, monkeypatch):
    from snakebatch.wiring.rerun import SNAKEMAKE_LOCKS, drop_incomplete_gather_outputs, snakemake_incomplete_marker

    monkeypatch.chdir(tmp_path)
    outputs = [LAYOUT.summary, LAYOUT.success_marker]
    for path in outputs:
        write(path, "x")
    assert drop_incomplete_gather_outputs(outputs, main_process=True, dryrun=False) == []   # none marked
    write(snakemake_incomplete_marker(LAYOUT.success_marker), "{}")
    write(os.path.join(SNAKEMAKE_LOCKS, "0.output.lock"), LAYOUT.success_marker)
    assert drop_incomplete_gather_outputs(outputs, main_process=True, dryrun=False) == []   # a snakemake runs
    os.unlink(os.path.join(SNAKEMAKE_LOCKS, "0.output.lock"))
    assert drop_incomplete_gather_outputs(outputs, main_process=True, dryrun=True) == []
    assert drop_incomplete_gather_outputs(outputs, main_process=False, dryrun=False) == []
    assert drop_incomplete_gather_outputs(outputs, main_process=True, dryrun=False) == [LAYOUT.success_marker]
    assert os.path.exists(LAYOUT.summary) and not os.path.exists(LAYOUT.success_marker)


def test_no_shard_result_is_removed_while_another_snakemake_holds_the_lock(tmp_path, monkeypatch):
    from snakebatch.wiring.rerun import SNAKEMAKE_LOCKS

    monkeypatch.chdir(tmp_path)
    write(LAYOUT.shard_result("00001"), "{}\n")
    write(os.path.join(SNAKEMAKE_LOCKS, "0.input.lock"), "data\n")
    markers = {"00001": LAYOUT.shard_unfinished("00001")}
    assert drop_unfinished_results(LAYOUT, markers, main_process=True, dryrun=False) == []
    assert os.path.exists(LAYOUT.shard_result("00001"))
