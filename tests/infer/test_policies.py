"""The shard loop's policies (attempts, reuse, watch, balance) against the in-process fake worker
(``fake_worker.FakeWorker``): retries, bisection, timeouts and deaths as events, init failures,
early stop, reuse, stealing and hand-offs, in milliseconds. A few real-worker tests per behaviour
stay in test_runner.py, test_supervision.py and test_balance.py."""

import dataclasses
import os

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


def make_runner(tmp_path, worker, store=True, run_dir=True, invocation=INVOCATION, **spec):
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
    runner.invocation = invocation
    return runner


def error_log(tmp_path):
    """The worker error log's text ('' when nothing failed)."""
    path = RunLayout(str(tmp_path / "run")).shard_logs(0)["error"]
    return open(path).read() if os.path.exists(path) else ""


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
    assert "try 2/3: RuntimeError: flaky f00.txt\n" in error_log(tmp_path)
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


# ------------------------------------------------------------------------ watch: early stop
def failing(*bad):
    def run(batch):
        for name in batch:
            if name in bad:
                raise ValueError("broken " + name)
        return batch
    return run


def test_the_shard_stops_early_once_the_failures_of_all_shards_exceed_the_threshold(tmp_path, files):
    run = str(tmp_path / "run")
    progress.write_progress(run, progress.ShardProgress(INVOCATION, 7, 3, 3, 2, 1, "x.png: OSError: gone"))
    progress.write_progress(run, progress.ShardProgress("inv-old", 8, 3, 3, 50, 3, "old"))
    runner = make_runner(tmp_path, FakeWorker(failing("f01.txt")), run_max_try=1, error_threshold=2)
    results = runner.run(manifest_of(files[:6], 1))
    assert [r.index for r in results] == [0, 1]
    assert runner.stopped_early == (
        "stopped early: 3 failed item(s) > error_threshold 2 in this run so far (all shards).\n"
        "First failures:\n  shard 0: " + files[1] + ": ValueError: broken f01.txt\n  shard 7: x.png: OSError: gone")
    mine = {r.shard: r for r in progress.invocation_progress(run, INVOCATION)}[0]
    assert (mine.state, mine.done_mini_batches, mine.failed_items) == ("stopped", 2, 1)


def test_a_shard_starting_after_the_breach_starts_no_worker(tmp_path, files):
    progress.write_progress(str(tmp_path / "run"), progress.ShardProgress(INVOCATION, 3, 1, 1, 5, 1, "y: E"))
    worker = FakeWorker()
    runner = make_runner(tmp_path, worker, error_threshold=4)
    assert runner.run(manifest_of(files[:4], 2)) == []
    assert runner.stopped_early.startswith("stopped early: 5 failed item(s) > error_threshold 4")
    assert worker.starts == 0


def test_a_hanging_call_is_interrupted_when_another_shard_breaches_meanwhile(tmp_path, files, monkeypatch):
    monkeypatch.setattr(ShardRunner, "CHECK_EVERY_S", 0.0)
    run = str(tmp_path / "run")

    def run_script(batch):
        if batch == ["f01.txt"]:   # meanwhile shard 5 fails 3 items
            progress.write_progress(run, progress.ShardProgress(INVOCATION, 5, 1, 4, 3, 1, "z.png: KeyError: 'z'"))
            raise Hang()
        return batch

    worker = FakeWorker(run_script)
    runner = make_runner(tmp_path, worker, run_max_try=1, error_threshold=2)
    results = runner.run(manifest_of(files[:4], 1))
    assert [r.index for r in results] == [0]       # the interrupted mini-batch is not a result
    assert runner.stopped_early.startswith("stopped early: 3 failed item(s) > error_threshold 2 in this run so far")
    assert worker.killed == 1 and "MiniBatchTimeout" not in error_log(tmp_path)


def test_a_shard_whose_last_mini_batch_breaks_the_threshold_did_not_stop_early(tmp_path, files):
    runner = make_runner(tmp_path, FakeWorker(failing("f02.txt")), run_max_try=1, error_threshold=0)
    results = runner.run(manifest_of(files[:3], 1))
    assert len(results) == 3 and runner.stopped_early is None


def test_without_a_run_folder_nothing_is_published_and_nothing_stops(tmp_path, files):
    runner = make_runner(tmp_path, FakeWorker(failing("f00.txt", "f01.txt")), run_dir=False, run_max_try=1,
                         error_threshold=0)
    assert [r.failed for r in runner.run(manifest_of(files[:3], 1))] == [1, 1, 0]
    assert not os.path.exists(tmp_path / "run" / "progress")


def test_new_failures_do_not_reread_every_shards_progress(tmp_path, files, monkeypatch):
    reads = []
    real = progress.invocation_progress
    monkeypatch.setattr(progress, "invocation_progress", lambda *a: reads.append(a) or real(*a))
    runner = make_runner(tmp_path, FakeWorker(failing(*names(files))), run_max_try=1, error_threshold=1000)
    results = runner.run(manifest_of(files, 1))
    assert sum(r.failed for r in results) == 10 and runner.stopped_early is None
    assert len(reads) <= 2   # once per CHECK_EVERY_S (2 s), not once per failure (11)


# ------------------------------------------------------------------------------------- reuse
def test_finished_mini_batches_are_reused_without_starting_a_worker(tmp_path, files):
    make_runner(tmp_path, FakeWorker()).run(manifest_of(files, 3))
    worker = FakeWorker()
    again = make_runner(tmp_path, worker).run(manifest_of(files, 3))
    assert [r.reused for r in again] == [True] * 4 and worker.starts == 0
    assert lines(again) == [n + ": ok" for n in names(files)]
    worker = FakeWorker()
    fresh = make_runner(tmp_path, worker, allow_reuse=False).run(manifest_of(files, 3))
    assert [r.reused for r in fresh] == [False] * 4 and len(worker.calls) == 4


def test_a_failed_mini_batch_is_not_stored_and_runs_again(tmp_path, files):
    make_runner(tmp_path, FakeWorker(failing("f00.txt")), run_max_try=1).run(manifest_of(files[:4], 2))
    worker = FakeWorker()
    again = make_runner(tmp_path, worker).run(manifest_of(files[:4], 2))
    assert [r.reused for r in again] == [False, True] and worker.calls == [["f00.txt", "f01.txt"]]


def test_added_files_alone_reach_run_the_others_lines_come_from_the_item_index(tmp_path, dataset, files):
    make_runner(tmp_path, FakeWorker()).run(manifest_of(files, 3))
    added = write(dataset / "f00b.txt", "new")
    grown = sorted(files + [added])
    worker = FakeWorker()
    results = make_runner(tmp_path, worker).run(manifest_of(grown, 3))
    assert worker.calls == [["f00b.txt"]]
    assert lines(results) == [os.path.basename(f) + ": ok" for f in grown]
    assert sum(r.succeeded for r in results) == 11


def test_a_failing_store_commit_records_failed_not_done_and_kills_the_worker(tmp_path, files, monkeypatch):
    def full(self):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(MiniBatchStore, "commit", full)
    worker = FakeWorker()
    runner = make_runner(tmp_path, worker)
    with pytest.raises(OSError, match="No space left"):
        runner.run(manifest_of(files[:4], 2))
    [record] = progress.invocation_progress(str(tmp_path / "run"), INVOCATION)
    assert record.state == "failed"          # not "done": its results may not be durable
    assert (worker.killed, worker.alive()) == (1, False)


# ----------------------------------------------------------------------------------- balance
def two_shards(tmp_path, files, size=1):
    """Shard 0 over files[:4] and shard 1 over files[4:8] of one run (8 mini-batches); shard 1's
    manifest is written and its progress record says it runs."""
    own = manifest_of(files[:4], size, shard=0, shard_count=2, total=(8 // size, 8))
    busy = manifest_of(files[4:8], size, shard=1, shard_count=2, first_index=4 // size, total=(8 // size, 8))
    run = str(tmp_path / "run")
    busy.write(RunLayout(run).manifest(1))
    progress.write_progress(run, progress.ShardProgress(INVOCATION, 1, 0, len(busy.mini_batches), 0, 0))
    return own, busy


def test_an_idle_shard_takes_the_end_of_a_busy_one_and_the_owner_adopts_the_hand_offs(tmp_path, files):
    own, busy = two_shards(tmp_path, files)
    idle = FakeWorker(failing("f06.txt"))
    ours = make_runner(tmp_path, idle, run_max_try=1, balance_shards=True).run(own)
    assert [r.index for r in ours] == [0, 1, 2, 3]
    assert idle.calls == [[n] for n in names(files[:4])] + [["f07.txt"], ["f06.txt"], ["f05.txt"], ["f04.txt"]]
    owner = FakeWorker()
    theirs = make_runner(tmp_path, owner, balance_shards=True).run(busy)
    assert owner.starts == 0                        # every one of its mini-batches was handed off
    assert [r.index for r in theirs] == [4, 5, 6, 7]
    assert lines(theirs) == ["f04.txt", "f05.txt", "f07.txt"]
    [failure] = theirs[2].failures                  # computed by shard 0, named by its own shard
    assert (failure.item, failure.shard) == (files[6], 1)
    records = {r.shard: r for r in progress.invocation_progress(str(tmp_path / "run"), INVOCATION)}
    assert [(r.state, r.done_mini_batches, r.stolen_mini_batches, r.adopted_mini_batches, r.failed_items)
            for r in records.values()] == [("done", 8, 4, 0, 1), ("done", 0, 0, 4, 0)]


def test_a_mini_batch_another_job_holds_is_awaited_then_adopted(tmp_path, files):
    from snakebatch.infer.claims import ClaimBoard

    own, busy = two_shards(tmp_path, files)
    board = ClaimBoard(str(tmp_path / "run"), INVOCATION, 1, 60.0, host="elsewhere", pid=1)
    claim = board.claim(0)                          # shard 1's job (elsewhere) took shard 0's first one
    worker = FakeWorker()
    runner = make_runner(tmp_path, worker, balance_shards=True)
    computed = {}

    def hand_off_first(batch):                      # while shard 0 computes, the holder hands off
        if not computed:
            mini_batch = own.mini_batches[0]
            result = make_runner(tmp_path / "other", FakeWorker(), store=False, run_dir=False).run_mini_batch(
                mini_batch)
            board.hand_off(claim, result.to_json())
            computed[0] = result
        return batch

    worker.run = hand_off_first
    results = runner.run(own)
    assert [r.index for r in results] == [0, 1, 2, 3]
    assert results[0].lines == ("f00.txt: ok",) and ["f00.txt"] not in worker.calls


def test_steals_do_not_reread_every_shards_progress(tmp_path, dataset, monkeypatch):
    many = [write(dataset / f"g{i:03d}.txt", str(i)) for i in range(40)]
    own, busy = two_shards(tmp_path, many[:4] + many[20:24] + many[4:20] + many[24:], size=1)
    busy = manifest_of(many[4:40], 1, shard=1, shard_count=2, first_index=4, total=(40, 40))
    busy.write(RunLayout(str(tmp_path / "run")).manifest(1))
    reads = []
    real = progress.invocation_progress
    monkeypatch.setattr(progress, "invocation_progress", lambda *a: reads.append(a) or real(*a))
    worker = FakeWorker()
    make_runner(tmp_path, worker, balance_shards=True).run(own)
    assert len(worker.calls) == 40                  # its own 4 and all 36 of the busy shard
    assert len(reads) <= 3                          # not one per steal (37)


def test_the_items_of_each_mini_batch_are_looked_at_once_for_item_reuse(tmp_path, dataset, monkeypatch):
    many = [write(dataset / f"g{i:03d}.txt", str(i)) for i in range(12)]
    make_runner(tmp_path, FakeWorker(), invocation="inv-before").run(manifest_of(many, 2))   # indexes every line
    run = str(tmp_path / "run")
    own = manifest_of(many[:3], 3, shard=0, shard_count=3, total=(4, 12))
    for shard, part, first in ((1, many[3:9], 1), (2, many[9:], 3)):
        manifest_of(part, 3, shard=shard, shard_count=3, first_index=first, total=(4, 12)).write(
            RunLayout(run).manifest(shard))
        progress.write_progress(run, progress.ShardProgress(INVOCATION, shard, 0, 2, 0, 0))
    held = []
    real = MiniBatchStore.holds
    monkeypatch.setattr(MiniBatchStore, "holds", lambda self, mb: held.append(mb.index) or real(self, mb))
    worker = FakeWorker()
    results = make_runner(tmp_path, worker, balance_shards=True).run(own)
    assert lines(results) == ["g000.txt: ok", "g001.txt: ok", "g002.txt: ok"]
    assert worker.calls == []                       # every line came from the item index
    assert sorted(held) == [0, 1, 2, 3]             # each not-stored mini-batch once, not again per shard


class CountingList(list):
    """A list that counts the elements copied into lists made from it (``+``, ``extend``)."""

    copied = 0

    def extend(self, other):
        CountingList.copied += len(other)
        super().extend(other)

    def __add__(self, other):
        CountingList.copied += len(self) + len(other)
        return CountingList(list.__add__(self, other))


def test_a_mini_batch_of_many_segments_copies_each_line_once(tmp_path, dataset, monkeypatch):
    from snakebatch.infer.attempts import Attempts

    many = [write(dataset / f"g{i:03d}.txt", str(i)) for i in range(400)]
    real = Attempts.load

    def load(self, mini_batch):
        count, part, unread = real(self, mini_batch)
        part.lines = CountingList(part.lines)
        return count, part, unread

    monkeypatch.setattr(Attempts, "load", load)
    monkeypatch.setattr(CountingList, "copied", 0)
    worker = FakeWorker(unreadable={f"g{i:03d}.txt" for i in range(1, 400, 2)})   # 200 segments of one item
    (result,) = make_runner(tmp_path, worker).run(manifest_of(many, 400))
    assert len(worker.calls) == 200 and len(result.lines) == 200 and result.failed == 200
    assert CountingList.copied <= 2 * 200   # linear: not the 20,000 copies of adding up the lines per segment


# ------------------------------------------------ converted from real-worker tests (policy only)
def reading(dataset):
    """run() of a script printing each file's name and content (``f00.txt: 0``)."""
    return lambda batch: [f"{name}: {open(dataset / name).read().strip()}" for name in batch]


def test_failing_mini_batch_is_bisected_to_the_bad_item(tmp_path, files):
    def run(batch):
        if "f04.txt" in batch:
            raise ValueError("cannot read f04")
        return batch

    results = make_runner(tmp_path, FakeWorker(run), run_max_try=2).run(manifest_of(files, 5))
    assert lines(results) == ["f00.txt", "f01.txt", "f02.txt", "f03.txt", "f05.txt", "f06.txt", "f07.txt", "f08.txt",
                              "f09.txt"]
    assert [(r.succeeded, r.failed) for r in results] == [(4, 1), (5, 0)]
    [failure] = results[0].failures
    assert (failure.item, failure.error, failure.tries) == (files[4], "ValueError: cannot read f04", 2)
    assert "ValueError('cannot read f04')" in failure.traceback
    # the 5 items fail twice (run_max_try), then halves get one try each and single items two:
    # [f00,f01] ok, [f02,f03,f04] x1, [f02] ok, [f03,f04] x1, [f03] ok, [f04] x2
    assert results[0].tries == 2 + 1 + 1 + 1 + 1 + 1 + 2


def test_too_few_results_count_the_deficit_and_too_many_are_kept_with_a_warning(tmp_path, files, caplog):
    def run(batch):
        return batch[:1] if batch[0] == "f00.txt" else batch + ["extra"]   # 3 items: 1 result, 4 results

    short, long = make_runner(tmp_path, FakeWorker(run), run_max_try=1).run(manifest_of(files[:6], 3))
    assert (short.succeeded, short.failed, list(short.lines)) == (1, 2, ["f00.txt"])
    assert [f.item for f in short.failures] == [None, None]
    assert short.failures[0].error == ("ResultCountError: run() returned 1 result(s) for 3 item(s); "
                                       "2 item(s) counted as failed")
    assert (long.succeeded, long.failed, list(long.lines)) == (3, 0, ["f03.txt", "f04.txt", "f05.txt", "extra"])
    assert "mini-batch 1: run() returned 4 results for 3 items; all kept" in caplog.text


def test_a_flaky_run_succeeds_within_run_max_try_without_duplicate_rows(tmp_path, dataset):
    import random

    many = [write(dataset / f"g{i:02d}.txt", f"{i}\n") for i in range(60)]
    chance = random.Random(20261129)   # seeded: the same sequence of failures every run

    def run(batch):
        if chance.random() < 0.3:
            raise ConnectionError("flaky backend")
        return batch

    worker = FakeWorker(run)
    results = make_runner(tmp_path, worker, run_max_try=5).run(manifest_of(many, 2))
    assert lines(results) == names(many) and sum(r.failed for r in results) == 0
    tries = [r.tries for r in results]
    assert sum(tries) > len(results)            # some mini-batches did fail first
    assert sum(tries) - len(results) == error_log(tmp_path).count(": ConnectionError: flaky backend\n")
    assert worker.starts == 1                   # a raise does not restart the worker


@pytest.mark.parametrize("poison", [0, 3, 6], ids=["first", "middle", "last"])
def test_one_poison_item_fails_alone_and_the_rest_keep_their_results(tmp_path, dataset, files, poison):
    def run(batch):
        for name in batch:
            if name == f"f{poison:02d}.txt":
                raise ValueError("poison " + name)
        return [f"{name}={open(dataset / name).read().strip()}" for name in batch]

    [result] = make_runner(tmp_path, FakeWorker(run), run_max_try=2).run(manifest_of(files[:7], 7))
    assert list(result.lines) == [f"f{i:02d}.txt={i}" for i in range(7) if i != poison]
    assert (result.item_count, result.succeeded, result.failed) == (7, 6, 1)
    [failure] = result.failures
    assert (failure.item, failure.exception, failure.message, failure.tries) == (
        files[poison], "ValueError", f"poison f{poison:02d}.txt", 2)


def test_a_script_bug_failing_every_item_is_not_bisected_item_by_item(tmp_path, dataset):
    items = [write(dataset / f"g{i:03d}.txt", f"{i}\n") for i in range(64)]

    def run(batch):
        raise KeyError("missing")

    worker = FakeWorker(run)
    [result] = make_runner(tmp_path, worker, run_max_try=3).run(manifest_of(items, 64))
    assert (result.item_count, result.failed) == (64, 64)
    assert [f.item for f in result.failures] == items
    assert all(f.error.startswith("KeyError: 'missing'") for f in result.failures)
    assert result.failures[-1].error == ("KeyError: 'missing' (raised for these 32 items together; not split "
                                         "further: the first 8 items of mini-batch 0 tried alone all failed and "
                                         "nothing in it has succeeded)")
    # 3 tries of the whole, 1 per half on the way down, 3 per item for the first 8 alone, then one
    # try per remaining part: far from 3 x (2 x 64 - 1) = 381
    assert len(worker.calls) == result.tries < 60


def test_after_eight_bad_items_in_a_row_the_good_rest_still_runs(tmp_path, dataset):
    items = [write(dataset / f"h{i:03d}.txt", f"{i}\n") for i in range(40)]

    def run(batch):
        for name in batch:
            if int(name[1:4]) < 8:
                raise ValueError("corrupt " + name)
        return batch

    [result] = make_runner(tmp_path, FakeWorker(run), run_max_try=3).run(manifest_of(items, 40))
    assert list(result.lines) == [f"h{i:03d}.txt" for i in range(8, 40)]
    assert [(os.path.basename(f.item), f.error) for f in result.failures] == [
        (f"h{i:03d}.txt", f"ValueError: corrupt h{i:03d}.txt") for i in range(8)]


def test_an_init_failing_once_names_the_start_in_the_error_log(tmp_path, files):
    starts = []

    def init():
        starts.append(1)
        if len(starts) == 1:
            raise InitFailed("init() of entry_script 's.py' failed: OSError: model server not up yet\nTraceback")

    results = make_runner(tmp_path, FakeWorker(init=init)).run(manifest_of(files[:2], 1))
    assert lines(results) == ["f00.txt: ok", "f01.txt: ok"] and len(starts) == 2
    assert error_log(tmp_path).startswith("--- worker start 1/3 failed: init() of entry_script 's.py' failed: "
                                          "OSError: model server not up yet\n")


def test_without_thresholds_a_shard_runs_to_the_end(tmp_path, files):
    def run(batch):
        raise ValueError("always")

    results = make_runner(tmp_path, FakeWorker(run), run_max_try=1).run(manifest_of(files[:3], 1))
    assert [r.failed for r in results] == [1, 1, 1]


def test_reused_mini_batches_take_their_new_position(tmp_path, files):
    make_runner(tmp_path, FakeWorker()).run(manifest_of(files[2:], 1))
    shifted = make_runner(tmp_path, FakeWorker()).run(manifest_of(files, 1))
    assert [(r.index, r.first_item, r.reused) for r in shifted[:4]] == [(0, 0, False), (1, 1, False), (2, 2, True),
                                                                        (3, 3, True)]
    assert lines(shifted) == [n + ": ok" for n in names(files)]


def test_added_files_alone_reach_run_the_others_lines_are_reused(tmp_path, dataset, files):
    first = FakeWorker(reading(dataset))
    make_runner(tmp_path, first).run(manifest_of([f for i, f in enumerate(files) if i not in (1, 7)], 3))
    assert first.calls == [["f00.txt", "f02.txt", "f03.txt"], ["f04.txt", "f05.txt", "f06.txt"], ["f08.txt", "f09.txt"]]
    worker = FakeWorker(reading(dataset))
    again = make_runner(tmp_path, worker).run(manifest_of(files, 3))   # every boundary after f01 moved
    assert worker.calls == [["f01.txt"], ["f07.txt"]]
    assert lines(again) == [f"f{i:02d}.txt: {i}" for i in range(10)]
    assert [(r.index, r.item_count, r.succeeded, r.tries, r.reused) for r in again] == [
        (0, 3, 3, 1, False), (1, 3, 3, 0, False), (2, 3, 3, 1, False), (3, 1, 1, 0, False)]
    fresh = make_runner(tmp_path / "fresh", FakeWorker(reading(dataset)), allow_reuse=False).run(manifest_of(files, 3))
    assert lines(fresh) == lines(again)


def test_a_changed_file_alone_is_recomputed(tmp_path, dataset, files):
    make_runner(tmp_path, FakeWorker(reading(dataset))).run(manifest_of(files, 5))
    write(files[6], "sixty")
    worker = FakeWorker(reading(dataset))
    again = make_runner(tmp_path, worker).run(manifest_of(files, 4))
    assert worker.calls == [["f06.txt"]]
    assert lines(again) == [f"f{i:02d}.txt: {'sixty' if i == 6 else i}" for i in range(10)]


def test_reuse_items_false_recomputes_a_changed_mini_batch_whole(tmp_path, dataset, files):
    make_runner(tmp_path, FakeWorker(reading(dataset)), reuse_items=False).run(manifest_of(files[1:], 3))
    worker = FakeWorker(reading(dataset))
    again = make_runner(tmp_path, worker, reuse_items=False).run(manifest_of(files, 3))
    assert worker.calls == [names(files[0:3]), names(files[3:6]), names(files[6:9]), names(files[9:])]
    assert lines(again) == [f"f{i:02d}.txt: {i}" for i in range(10)]


def test_a_script_taking_the_context_gets_no_item_reuse_of_a_changed_mini_batch(tmp_path, dataset, files):
    make_runner(tmp_path, FakeWorker(reading(dataset), takes_context=True)).run(manifest_of(files[1:], 3))
    worker = FakeWorker(reading(dataset), takes_context=True)
    make_runner(tmp_path, worker).run(manifest_of(files, 3))
    assert worker.calls == [names(files[0:3]), names(files[3:6]), names(files[6:9]), names(files[9:])]


def test_a_failure_in_a_taken_mini_batch_that_stops_the_run_reaches_its_owners_results(tmp_path, files, monkeypatch):
    # shard 0 (on another node) takes f07, shard 1's last, and fails it: over error_threshold 0, so
    # the run stops; shard 1 sees it while run() works on f04 and stops early. Its results must
    # still take in f07's hand-off, so the failure is reported, and f05, f06 get claimed so that
    # nobody starts them.
    from snakebatch.infer.claims import ClaimBoard
    from snakebatch.infer.results import FailedItem, MiniBatchResult

    monkeypatch.setattr(ShardRunner, "CHECK_EVERY_S", 0.0)
    own, busy = two_shards(tmp_path, files)
    run = str(tmp_path / "run")
    stealer = ClaimBoard(run, INVOCATION, 0, 80.0, host="node-a", pid=7)

    def run_script(batch):
        if batch == ["f04.txt"]:
            claim = stealer.claim(7)
            failure = FailedItem(files[7], 7, "ValueError: bad f07.txt", "Traceback...", 1, shard=1)
            result = MiniBatchResult(7, busy.mini_batches[3].key, 7, 1, 0, (), (failure,), 1, 0.1, "process000")
            stealer.hand_off(claim, result.to_json())
            progress.write_progress(run, progress.ShardProgress(INVOCATION, 0, 1, 4, 1, 1, files[7] + ": bad"))
            raise Hang()
        return batch

    worker = FakeWorker(run_script)
    runner = make_runner(tmp_path, worker, run_max_try=1, error_threshold=0)
    results = runner.run(busy)
    assert [(r.index, r.agent_name, r.failed) for r in results] == [(7, "process000", 1)]
    [failure] = results[0].failures
    assert (failure.item, failure.mini_batch, failure.shard, failure.error) == (
        files[7], 7, 1, "ValueError: bad f07.txt")
    assert runner.stopped_early.startswith("stopped early: ")
    assert worker.calls == [["f04.txt"]] and worker.killed == 1
    assert sorted(os.listdir(stealer.folder)) == [f"{i:09d}.0" for i in (4, 5, 6, 7)] + ["000000007.result.json"]


def test_a_retried_shard_job_takes_the_hand_off_of_a_mini_batch_another_shard_finished(tmp_path, dataset, files):
    from snakebatch.infer.claims import ClaimBoard
    from helpers import mini_batch_result

    manifest = manifest_of(files[:4], 2)
    other = ClaimBoard(str(tmp_path / "run"), INVOCATION, 5, 80.0, host="node-b", pid=31)   # shard 5 took mini-batch 1
    claim = other.claim(1)
    handed = mini_batch_result(1, ["f02.txt: by shard 5", "f03.txt: by shard 5"])
    other.hand_off(claim, dataclasses.replace(handed, key=manifest.mini_batches[1].key, first_item=2).to_json())
    worker = FakeWorker(reading(dataset))
    results = make_runner(tmp_path, worker).run(manifest)
    assert lines(results) == ["f00.txt: 0", "f01.txt: 1", "f02.txt: by shard 5", "f03.txt: by shard 5"]
    assert worker.calls == [["f00.txt", "f01.txt"]]
    [mine] = progress.invocation_progress(str(tmp_path / "run"), INVOCATION)
    assert (mine.done_mini_batches, mine.adopted_mini_batches) == (1, 1)
    assert sorted(os.listdir(other.folder)) == ["000000000.0", "000000001.0", "000000001.result.json"]
