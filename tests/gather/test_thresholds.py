"""Thresholds at unit level: ParallelRunStep's boundaries (count > threshold fails), the running
tally, and the denominator of allowed_failed_percent when shards stopped early."""

import dataclasses
import json

import pytest

from helpers import gather_spec as spec, mini_batch_result as result, write_shards
from snakebatch.errors import ErrorThresholdExceeded
from snakebatch.gather.job import gather
from snakebatch.infer.results import FailedItem
from snakebatch.gather.thresholds import RunningTally, Tally, threshold_breaches, thresholds_set


def tally(failed=0, failed_mini_batches=0, mini_batches=10):
    return Tally(items=100, succeeded=100 - failed, failed=failed, mini_batches=mini_batches,
                 failed_mini_batches=failed_mini_batches, reused_mini_batches=0)


@pytest.mark.parametrize("threshold,at,over", [(0, 0, 1), (2, 2, 3), (50, 50, 51)])
def test_error_threshold_passes_at_the_threshold_and_fails_one_over(threshold, at, over):
    limits = spec(error_threshold=threshold)
    assert threshold_breaches(tally(failed=at, failed_mini_batches=1), limits) == []
    assert threshold_breaches(tally(failed=over, failed_mini_batches=1), limits) == [
        f"{over} failed item(s) > error_threshold {threshold}"]


@pytest.mark.parametrize("threshold,at,over", [(0, 0, 1), (1, 1, 2), (4, 4, 5)])
def test_allowed_failed_count_passes_at_the_threshold_and_fails_one_over(threshold, at, over):
    limits = spec(allowed_failed_count=threshold)
    assert threshold_breaches(tally(failed=9, failed_mini_batches=at), limits) == []
    assert threshold_breaches(tally(failed=9, failed_mini_batches=over), limits) == [
        f"{over} failed mini-batch(es) > allowed_failed_count {threshold}"]


@pytest.mark.parametrize("percent,mini_batches,at,over,shown", [
    (10, 10, 1, 2, "20.00% failed mini-batches > allowed_failed_percent 10%"),
    (2.5, 40, 1, 2, "5.00% failed mini-batches > allowed_failed_percent 2.5%"),
    (0, 7, 0, 1, "14.29% failed mini-batches > allowed_failed_percent 0%"),
    (50, 4, 2, 3, "75.00% failed mini-batches > allowed_failed_percent 50%"),
])
def test_allowed_failed_percent_passes_at_the_threshold_and_fails_one_over(percent, mini_batches, at, over, shown):
    limits = spec(allowed_failed_percent=percent)
    assert threshold_breaches(tally(failed=9, failed_mini_batches=at, mini_batches=mini_batches), limits) == []
    assert threshold_breaches(tally(failed=9, failed_mini_batches=over, mini_batches=mini_batches), limits) == [shown]


def test_minus_one_and_none_check_nothing():
    unchecked = spec(error_threshold=-1, allowed_failed_count=None, allowed_failed_percent=None)
    assert not thresholds_set(unchecked)
    assert threshold_breaches(tally(failed=100, failed_mini_batches=10), unchecked) == []
    assert thresholds_set(spec(error_threshold=0))
    assert thresholds_set(spec(allowed_failed_count=0))
    assert thresholds_set(spec(allowed_failed_percent=0))


def test_no_mini_batches_never_breach_the_percentage():
    assert threshold_breaches(tally(failed=0, failed_mini_batches=0, mini_batches=0),
                              spec(allowed_failed_percent=0)) == []


def test_every_exceeded_threshold_is_named_in_order():
    limits = spec(error_threshold=3, allowed_failed_count=1, allowed_failed_percent=10)
    assert threshold_breaches(tally(failed=4, failed_mini_batches=2, mini_batches=10), limits) == [
        "4 failed item(s) > error_threshold 3", "2 failed mini-batch(es) > allowed_failed_count 1",
        "20.00% failed mini-batches > allowed_failed_percent 10%"]
    assert threshold_breaches(tally(failed=3, failed_mini_batches=1, mini_batches=10), limits) == []


def stop_early(path, total):
    with open(path, "a") as handle:
        handle.write(json.dumps({"stopped_early": "stopped early: 1 failed mini-batch(es) > allowed_failed_count 0 "
                                                  "in this run so far (all shards).\nFirst failures:\n  shard 0: x",
                                 "total_mini_batches": total}) + "\n")


def test_gather_takes_the_percentage_of_all_mini_batches_when_shards_stopped_early(tmp_path):
    # 2 of 10 mini-batches ran, 1 failed: 10% of the input (not 50% of what ran)
    shards = write_shards(tmp_path, [[result(0, ["a"], failed_items=["x.png"])], [result(5, ["b"])]])
    stop_early(shards[0], 10)
    with pytest.raises(ErrorThresholdExceeded) as info:
        gather(spec(allowed_failed_percent=9), shards, str(tmp_path / "run"))
    assert str(info.value).startswith("The run failed: 10.00% failed mini-batches > allowed_failed_percent 9%. "
                                      "1 shard(s) stopped early; 2 mini-batch(es) ran.\n")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert (summary["mini_batches"], summary["failed_mini_batches"]) == (2, 1)
    assert summary["threshold_breaches"] == ["10.00% failed mini-batches > allowed_failed_percent 9%"]

    # at the threshold the percentage passes; the run still fails: a shard stopped early
    shards = write_shards(tmp_path, [[result(0, ["a"], failed_items=["x.png"])], [result(5, ["b"])]])
    stop_early(shards[0], 10)
    with pytest.raises(ErrorThresholdExceeded) as info:
        gather(spec(allowed_failed_percent=10), shards, str(tmp_path / "run"))
    assert str(info.value).startswith(
        "The run failed: a shard stopped early: 1 failed mini-batch(es) > allowed_failed_count 0 "
        "in this run so far (all shards). 1 shard(s) stopped early; 2 mini-batch(es) ran.\n")


def test_the_runner_takes_the_percentage_of_all_mini_batches_of_the_input(tmp_path, monkeypatch):
    from snakebatch.monitor import progress
    from snakebatch.partition.manifest import ShardManifest
    from snakebatch.infer.job import ShardRunner

    monkeypatch.setenv(progress.INVOCATION_ENV, "inv-t")
    runner = ShardRunner(spec(allowed_failed_percent=10), None, None,
                         str(tmp_path / "error.txt"), str(tmp_path / "run"))
    runner._manifest = ShardManifest(run_name="r", shard=0, shard_count=2, total_mini_batches=20, total_items=40,
                                     mini_batches=())
    progress.write_progress(str(tmp_path / "run"), progress.ShardProgress("inv-t", 1, 1, 10, 1, 1, "y.png: E"))
    at = progress.ShardProgress("inv-t", 0, 2, 10, 1, 1, "x.png: ValueError: bad")     # 2 of 20 failed: 10%
    assert runner._breach(at) is None
    over = dataclasses.replace(at, failed_mini_batches=2, failed_items=2)              # 3 of 20: 15%
    assert runner._breach(over) == (
        "stopped early: 15.00% failed mini-batches > allowed_failed_percent 10% in this run so far (all shards).\n"
        "First failures:\n  shard 0: x.png: ValueError: bad\n  shard 1: y.png: E")


def test_the_running_tally_equals_the_tally_of_the_same_results():
    unknown = FailedItem(None, 4, "ResultCountError: run() returned 1 result(s) for 2 item(s)", "", 1)
    results = [result(0, ["a", "b"]), result(1, [], reused=True), result(2, ["c"], failed_items=["x.png", "y.png"]),
               result(3, ["d"], reused=True),
               dataclasses.replace(result(4, ["e"]), item_count=2, failures=(unknown,)),
               result(5, [], failed_items=["z.png"])]
    running = RunningTally()
    assert running.snapshot() == Tally.of([]) == Tally(0, 0, 0, 0, 0, 0)
    assert running.first_failure_text == ""
    for number, item in enumerate(results, 1):
        running.add(item)
        assert running.snapshot() == Tally.of(results[:number])
    assert running.snapshot() == Tally(items=9, succeeded=5, failed=4, mini_batches=6, failed_mini_batches=3,
                                       reused_mini_batches=2)
    assert running.first_failure == results[2].failures[0]
    assert running.first_failure_text == "x.png: ValueError: bad x.png"
    only_unknown = RunningTally()
    only_unknown.add(results[4])
    assert only_unknown.first_failure_text == "mini-batch 4: ResultCountError: run() returned 1 result(s) for 2 item(s)"
