"""The life cycle of a run's result: invalidation, shard result files and what reruns."""

import json
import os

import pytest

from helpers import gather_spec as spec, mini_batch_result as result, write_shards
from snakebatch.errors import ManifestError
from snakebatch.gather.job import gather
from snakebatch.gather.lifecycle import (clear_verdict, drop_shards_to_rerun,                                   invalidate_result, read_shard_file)

TRAILER = {"stopped_early": "stopped early: 2 failed item(s) > error_threshold 1 in this run so far (all shards).",
           "total_mini_batches": 10}


def test_invalidate_removes_the_earlier_result_once(tmp_path):
    shards = write_shards(tmp_path, [[result(0, ["a"])]])
    run_dir = tmp_path / "run"
    gather(spec(), shards, str(run_dir))
    invalidate_result(str(run_dir))
    assert sorted(os.listdir(run_dir)) == ["errors.jsonl", "logs", "summary.json"]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "stale"
    invalidate_result(str(run_dir))   # a second shard job doing the same: nothing left to do
    assert json.loads((run_dir / "summary.json").read_text()) == summary


def test_invalidate_without_a_success_marker_leaves_everything(tmp_path):
    (tmp_path / "summary.json").write_text('{"status": "failed"}')
    (tmp_path / "out.txt").write_text("a\n")
    invalidate_result(str(tmp_path))
    assert (tmp_path / "summary.json").read_text() == '{"status": "failed"}'
    assert (tmp_path / "out.txt").read_text() == "a\n"


def test_clear_verdict_marks_the_summary_stale_and_removes_marker_merged_file_and_temps(tmp_path):
    (tmp_path / "summary.json").write_text('{"status": "succeeded", "items": 3}')
    (tmp_path / "_SUCCESS").write_text("out.txt\n")
    (tmp_path / "out.txt").write_text("a\n")
    (tmp_path / ".tmp-out.txt-123").write_text("half")
    (tmp_path / "errors.jsonl").write_text("")
    clear_verdict(str(tmp_path), str(tmp_path / "out.txt"))
    assert sorted(os.listdir(tmp_path)) == ["errors.jsonl", "summary.json"]
    assert json.loads((tmp_path / "summary.json").read_text()) == {
        "status": "stale", "items": 3, "note": "a newer run started; this summary describes the run before it"}
    clear_verdict(str(tmp_path), None)   # nothing left to remove; no merged file (summary_only)
    assert sorted(os.listdir(tmp_path)) == ["errors.jsonl", "summary.json"]


def test_read_shard_file_returns_results_and_the_stopped_early_trailer(tmp_path):
    [path] = write_shards(tmp_path, [[result(0, ["a", "b"]), result(1, ["c"], failed_items=["x.png"])]])
    with open(path, "a") as handle:
        handle.write(json.dumps(TRAILER) + "\n")
    seen = []
    shard = read_shard_file(path, on_result=lambda r: seen.append((r.index, r.lines)))
    assert seen == [(0, ("a", "b")), (1, ("c",))]
    assert [(r.index, r.lines, r.failed) for r in shard.results] == [(0, (), 0), (1, (), 1)]  # kept without lines
    assert (shard.path, shard.stopped_early, shard.total_mini_batches) == (path, TRAILER["stopped_early"], 10)
    whole = read_shard_file(path)
    assert [r.lines for r in whole.results] == [("a", "b"), ("c",)]
    [finished] = write_shards(tmp_path / "other", [[result(0, ["a"])]])
    assert (read_shard_file(finished).stopped_early, read_shard_file(finished).total_mini_batches) == (None, None)


def test_read_shard_file_names_the_missing_or_corrupt_file(tmp_path):
    with pytest.raises(ManifestError) as info:
        read_shard_file(str(tmp_path / "nope.jsonl"))
    assert str(info.value) == f"shard result {str(tmp_path / 'nope.jsonl')!r} does not exist"
    [path] = write_shards(tmp_path, [[result(0, ["a"])]])
    with open(path, "a") as handle:
        handle.write("{not json\n")
    with pytest.raises(ManifestError, match=r"shard result .*shard-00000.jsonl' line 2 is corrupt: .*; delete it "
                                            r"\(or run snakemake with --forcerun infer_shard\)"):
        read_shard_file(path)


def test_the_shards_with_failures_or_an_early_stop_are_dropped_to_rerun(tmp_path):
    paths = write_shards(tmp_path, [[result(0, ["a"])], [result(1, ["b"], failed_items=["x.png"])],
                                    [result(2, ["c"])], []])
    with open(paths[2], "a") as handle:
        handle.write(json.dumps(TRAILER) + "\n")
    shards = [read_shard_file(path) for path in paths]
    assert drop_shards_to_rerun(shards) == [paths[1], paths[2]]
    assert [os.path.exists(path) for path in paths] == [True, False, False, True]


def _killed_writer(path):
    """The temporary file a process writing ``path`` with atomic_open leaves when SIGKILL ends it."""
    import signal
    import subprocess
    import sys

    code = ("import os, sys, signal\nfrom snakebatch.storage.atomic import atomic_open\n"
            "with atomic_open(sys.argv[1]) as handle:\n    handle.write('half')\n    handle.flush()\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(path)], env={**os.environ}, check=False)
    assert proc.returncode == -signal.SIGKILL


def test_the_temporary_files_of_a_killed_gather_are_removed_by_the_next_and_a_live_writers_kept(tmp_path):
    """issue 21 point 8: SIGKILL in gather left .tmp-summary.json-* and .tmp-_SUCCESS-* for good."""
    from snakebatch.gather.lifecycle import remove_verdict_temps
    from snakebatch.storage.atomic import temp_prefix
    from snakebatch.storage.layout import RunLayout

    layout = RunLayout(str(tmp_path))
    for path in (layout.summary, layout.success_marker, layout.job_result, layout.errors,
                 layout.kept_report("summary.json"), str(tmp_path / "out.txt")):
        _killed_writer(path)
    (tmp_path / ".tmp-summary.json-k3j2a9q1").write_text("half")   # named before writers named themselves
    live = tmp_path / (temp_prefix(layout.summary) + "abcd1234")     # this process: a writer at work
    live.write_text("being written")
    leftovers = sorted(os.path.relpath(os.path.join(d, n), tmp_path)
                       for d, _, names in os.walk(tmp_path) for n in names if n.startswith(".tmp-"))
    assert len(leftovers) == 8
    clear_verdict(str(tmp_path), str(tmp_path / "out.txt"))
    assert [n for _, _, names in os.walk(tmp_path) for n in names if n.startswith(".tmp-")] == [live.name]
    assert remove_verdict_temps(str(tmp_path), None) == []
