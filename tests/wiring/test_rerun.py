"""wiring.rerun: a shard that stopped early runs again without a marker dated ahead (issue 21)."""

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
