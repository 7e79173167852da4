"""The shard loop's policies (attempts, reuse, watch, balance) against the in-process fake worker
(``fake_worker.FakeWorker``): retries, bisection, timeouts and deaths as events, init failures,
early stop, reuse, stealing and hand-offs, in milliseconds. A few real-worker tests per behaviour
stay in test_runner.py, test_supervision.py and test_balance.py."""

import os
import time

import pytest

from fake_worker import Die, FakeWorker, Hang
from helpers import file_batch, lines, runner_spec, write
from snakebatch.errors import EntryScriptError
from snakebatch.infer.attempts import Part
from snakebatch.infer.shard import ShardRunner
from snakebatch.infer.store import MiniBatchStore
from snakebatch.infer.workers import InitFailed, ScriptImportFailed
from snakebatch.monitor import progress
from snakebatch.partition.manifest import ShardManifest
from snakebatch.storage.layout import RunLayout

INVOCATION = "inv-fake"


def manifest_of(files, size, shard=0, shard_count=1, first_index=0, total=None):
    """The manifest of ``shard`` over ``files`` in mini-batches of ``size``, indices from ``first_index``."""
    batches = tuple(file_batch(first_index + n, first_index * size + start, files[start:start + size],
                               "|".join(files[start:start + size]))
                    for n, start in enumerate(range(0, len(files), size)))
    total_batches, total_items = total if total is not None else (len(batches), len(files))
    return ShardManifest(run_name="r", shard=shard, shard_count=shard_count, total_mini_batches=total_batches,
                         total_items=total_items, mini_batches=batches)


def make_runner(tmp_path, worker, store=True, run_dir=True, **spec):
    """A ShardRunner of run folder ``tmp_path/run`` with ``worker`` and a RunnerSpec of ``spec``."""
    script = tmp_path / "score.py"
    if not script.exists():
        write(script, "def run(mini_batch):\n    return mini_batch\n")
    spec = runner_spec(script, **spec)
    run = str(tmp_path / "run")
    layout = RunLayout(run)
    os.makedirs(os.path.dirname(layout.shard_logs(0)["error"]), exist_ok=True)
    runner = ShardRunner(spec, worker, MiniBatchStore(layout.store_dir, spec, run) if store else None,
                         layout.shard_logs(0)["error"], run if run_dir else None)
    runner.invocation = INVOCATION
    return runner


def error_log(tmp_path):
    return open(RunLayout(str(tmp_path / "run")).shard_logs(0)["error"]).read()


def names(files):
    return [os.path.basename(f) for f in files]


# ------------------------------------------------------------------------------------ attempts
def test_every_item_yields_its_line_in_order_with_one_start(tmp_path, files):
    worker = FakeWorker()
    results = make_runner(tmp_path, worker).run(manifest_of(files, 3))
    assert lines(results) == [n + ": ok" for n in names(files)]
    assert [(r.index, r.item_count, r.succeeded, r.tries) for r in results] == [(0, 3, 3, 1), (1, 3, 3, 1),
                                                                              (2, 3, 3, 1), (3, 1, 1, 1)]
    assert (worker.starts, worker.stopped, worker.killed) == (1, 1, 0)
    assert worker.sent == [f"{'|'.join(files[i:i + 3])}" for i in (3, 6, 9)]   # each next one prefetched


def test_a_raising_call_is_retried_up_to_run_max_try(tmp_path, files):
    tries = {}

    def flaky(batch):
        tries[batch[0]] = tries.get(batch[0], 0) + 1
        if tries[batch[0]] < 3:
            raise RuntimeError("flaky " + batch[0])
        return batch

    results = make_runner(tmp_path, FakeWorker(flaky)).run(manifest_of(files[:4], 2))
    assert lines(results) == names(files[:4])
    assert [r.tries for r in results] == [3, 3]
    assert "try 1/3: RuntimeError: flaky f00.txt\n" in error_log(tmp_path)
    assert "try 3/3" not in error_log(tmp_path)


@pytest.mark.parametrize("poison", [0, 4, 8])
def test_a_poison_item_is_isolated_by_bisection_and_the_rest_keep_their_lines(tmp_path, files, poison):
    bad = f"f{poison:02d}.txt"

    def run(batch):
        if bad in batch:
            raise ValueError("bad " + bad)
        return batch

    worker = FakeWorker(run)
    results = make_runner(tmp_path, worker).run(manifest_of(files[:9], 9))
    (result,) = results
    assert result.lines == tuple(n for n in names(files[:9]) if n != bad)
    assert [(f.item, f.error, f.tries) for f in result.failures] == [(files[poison], f"ValueError: bad {bad}", 3)]
    assert result.tries == len(worker.calls) == {0: 11, 4: 11, 8: 13}[poison]   # every call counts a try
    assert worker.calls[:3] == [names(files[:9])] * 3   # the whole 3 times, then halves once, the item 3 times
    assert worker.calls.count([bad]) == 3


def test_a_script_bug_failing_every_item_stops_splitting_after_eight_alone(tmp_path, dataset):
    many = [write(dataset / f"g{i:03d}.txt", "x") for i in range(64)]

    def run(batch):
        raise ValueError("bug")

    worker = FakeWorker(run)
    (result,) = make_runner(tmp_path, worker, run_max_try=1).run(manifest_of(many, 64))
    assert result.failed == 64 and result.succeeded == 0
    assert len(worker.calls) < 40   # not 127 calls (every part down to single items)
    assert any("not split further" in f.error for f in result.failures)


@pytest.mark.parametrize("event,cause", [(Hang, "MiniBatchTimeout: run() did not return"),
                                         (Die, "WorkerDied: the worker process exited during run()")])
def test_a_hang_or_a_death_counts_as_a_try_and_the_worker_is_started_again(tmp_path, files, event, cause):
    seen = []

    def run(batch):
        seen.append(batch[0])
        if len(seen) == 1:
            raise event()
        return batch

    worker = FakeWorker(run)
    results = make_runner(tmp_path, worker).run(manifest_of(files[:4], 2))
    assert lines(results) == names(files[:4]) and [r.tries for r in results] == [2, 1]
    assert worker.starts == 2 and worker.loads.count("|".join(files[:2])) == 2   # the new worker reads it again
    assert f"try 1/3: {cause}" in error_log(tmp_path)


def test_a_call_that_dies_every_try_fails_its_item_with_the_cause(tmp_path, files):
    def run(batch):
        if "f01.txt" in batch:
            raise Die()
        return batch

    (result,) = make_runner(tmp_path, FakeWorker(run)).run(manifest_of(files[:2], 2))
    assert result.lines == ("f00.txt",)
    assert [(f.item, f.error.split(":")[0]) for f in result.failures] == [(files[1], "WorkerDied")]


def test_an_init_failing_every_try_ends_the_shard_an_import_failure_at_once(tmp_path, files):
    def failing_init():
        raise InitFailed("init() of entry_script 's.py' failed: OSError: no model\nTraceback")

    worker = FakeWorker(init=failing_init)
    with pytest.raises(EntryScriptError, match="failed 3 times in a row: OSError: no model"):
        make_runner(tmp_path, worker).run(manifest_of(files[:2], 2))
    assert worker.starts == 3

    def broken():
        raise ScriptImportFailed("importing entry_script 's.py' failed: SyntaxError: bad")

    worker = FakeWorker(init=broken)
    with pytest.raises(EntryScriptError, match="SyntaxError: bad\nWorker error log: "):
        make_runner(tmp_path, worker).run(manifest_of(files[:2], 2))
    assert worker.starts == 1


def test_an_init_failing_once_is_retried_and_the_shard_goes_on(tmp_path, files):
    starts = []

    def init():
        starts.append(1)
        if len(starts) == 1:
            raise InitFailed("init() failed: OSError: flaky download")

    results = make_runner(tmp_path, FakeWorker(init=init)).run(manifest_of(files[:2], 2))
    assert lines(results) == ["f00.txt: ok", "f01.txt: ok"] and len(starts) == 2
    assert "worker start 1/3 failed: init() failed: OSError: flaky download" in error_log(tmp_path)


def test_unreadable_items_fail_alone_and_the_others_run(tmp_path, files):
    worker = FakeWorker(unreadable={"f01.txt", "f03.txt"})
    (result,) = make_runner(tmp_path, worker).run(manifest_of(files[:5], 5))
    assert result.lines == ("f00.txt: ok", "f02.txt: ok", "f04.txt: ok")
    assert [f.item for f in result.failures] == [files[1], files[3]]
    assert worker.calls == [["f00.txt"], ["f02.txt"], ["f04.txt"]]   # one call per readable run


def test_parts_are_combined_in_place():
    part = Part(["a"], 1)
    other = Part(["b", "c"], 2, ["x"], 1, 0.5)
    assert part.extend(other) is part
    assert (part.lines, part.succeeded, part.failures, part.tries, part.cpu_s) == (["a", "b", "c"], 3, ["x"], 1, 0.5)
