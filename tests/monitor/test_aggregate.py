"""One aggregation of a run's progress records and the one reader of summary.json
(snakebatch.monitor.aggregate)."""

import json
import os

import pytest


def _record(shard, **fields):
    from snakebatch.monitor.progress import ShardProgress

    values = dict(invocation="inv", shard=shard, done_mini_batches=0, shard_mini_batches=3, failed_items=0,
                  failed_mini_batches=0, shard_items=6, total_items=12, total_mini_batches=6)
    values.update(fields)
    return ShardProgress(**values)


def test_the_records_are_added_up_once_into_one_frozen_picture():
    import dataclasses

    from snakebatch.monitor.aggregate import add_up

    run = add_up([
        _record(0, done_mini_batches=2, done_items=4, succeeded_items=3, failed_items=1, reused_items=2,
                reused_mini_batches=1, started_at=1000.0, updated_at=1100.0, first_failure="a.txt: E: x",
                top_errors=(("E: x", 1), ("E: y", 1)), running_since=1050.0, running_items=2),
        _record(1, done_mini_batches=1, done_items=2, succeeded_items=2, started_at=1002.0, updated_at=1090.0,
                top_errors=(("E: y", 2),), running_since=1040.0, running_items=1),
        _record(2, state="done", done_mini_batches=3, done_items=6, succeeded_items=6, started_at=1001.0,
                updated_at=1080.0, running_since=1001.0, running_items=2)])   # ended: not in run()
    assert (run.shards_reporting, run.shards_running) == (3, 2)
    assert (run.done_mini_batches, run.total_mini_batches, run.reused_mini_batches) == (6, 6, 1)
    assert (run.done_items, run.total_items, run.succeeded_items, run.failed_items) == (12, 12, 11, 1)
    assert (run.reused_items, run.computed_items) == (2, 10)
    assert (run.running_mini_batches, run.running_items, run.running_since) == (2, 3, 1040.0)
    assert (run.started_at, run.updated_at) == (1000.0, 1100.0)
    assert run.top_errors == (("E: y", 3), ("E: x", 1))
    assert run.first_failures == ((0, "a.txt: E: x"),)
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.done_items = 0


def test_no_records_add_up_to_nothing_with_unknown_times():
    from snakebatch.monitor.aggregate import add_up

    run = add_up([])
    assert (run.shards_reporting, run.total_mini_batches, run.done_items, run.running_since, run.started_at,
            run.updated_at, run.top_errors) == (0, 0, 0, None, None, None, ())


def test_a_run_is_read_once_for_its_invocation_and_settled_records_are_added_up(tmp_path):
    import dataclasses

    from snakebatch.monitor import progress
    from snakebatch.monitor.aggregate import read_run_progress

    run_dir = str(tmp_path / "run")
    progress.write_progress(run_dir, _record(0, done_mini_batches=1, done_items=2))
    progress.write_progress(run_dir, _record(1, invocation="older", done_mini_batches=3, done_items=6))
    run = read_run_progress(run_dir, "inv")
    assert ([r.shard for r in run.records], run.done_items) == ([0], 2)
    settled = read_run_progress(run_dir, "inv", settle=lambda r: dataclasses.replace(r, state="lost", done_items=4))
    assert (settled.records[0].state, settled.shards_running, settled.done_items) == ("lost", 0, 4)


def test_the_summary_is_read_in_one_place_naming_a_missing_stale_or_corrupt_file(tmp_path):
    from snakebatch.errors import ManifestError
    from snakebatch.monitor.aggregate import read_summary, summary_or_none

    path = str(tmp_path / "summary.json")
    with pytest.raises(ManifestError, match="summary .* does not exist: gather has not run"):
        read_summary(path)
    with open(path, "w") as handle:
        json.dump({"status": "succeeded", "items": 3}, handle)
    os.utime(path, (1000.0, 1000.0))
    assert read_summary(path) == {"status": "succeeded", "items": 3}
    assert read_summary(path, since=1000.0)["items"] == 3
    with pytest.raises(ManifestError, match="older than this run"):
        read_summary(path, since=1000.5)
    assert summary_or_none(path, since=1000.5) is None
    with open(path, "w") as handle:
        handle.write("[1]")
    with pytest.raises(ManifestError, match="is corrupt: not a JSON object"):
        read_summary(path)
    with open(path, "w") as handle:
        handle.write("{")
    assert summary_or_none(path) is None
