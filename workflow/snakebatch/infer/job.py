"""The shard job: run every mini-batch of one shard manifest through a supervised worker.

``python -m snakebatch.infer.job --spec JSON --manifest M --output O`` (the run folder is the one
``O`` lies in, ``results/{run}/shards/``)

For each mini-batch, in order: reuse its durable result (``store.MiniBatchStore``) when an earlier
run finished it with the same input, entry script, models, side inputs and settings; otherwise take
the lines an earlier run produced for some of its files from the item index (``store.ItemIndex``,
incremental reruns: file input, append_row txt) and send the rest to the worker, up to ``run_max_try`` tries (ParallelRunStep: a raise, a timeout or a worker death
each count). A ``run()`` call that outlives ``run_invocation_timeout`` seconds gets its worker
killed (SIGKILL of its process group, so native code and its children stop too); a new worker is
started and runs ``init()`` again. A mini-batch that fails every try is bisected until the failing
items are isolated, so the other items still produce results. Each finished mini-batch is written
atomically to the store before the next starts, so a killed shard resumes where it stopped. The
shard result file (one MiniBatchResult per line, input order) is written as mini-batches finish to
a temporary file, renamed when the shard ends. The worker first materialises a mini-batch's
input (``load``: its input kind gives file paths or a DataFrame), then run() gets parts of it by
position, so retries and bisection never branch on the kind. While run() works on a mini-batch,
the next one (unless the store holds it) is materialised on the worker's loader thread
(prefetch: ``send_load``). With ``balance_shards`` every mini-batch is claimed before it starts
(``claims.ClaimBoard``); a shard job whose own mini-batches are all claimed takes unstarted ones
from the end of the busy shard with the most left and hands their results off, and the owner
writes those into its shard file at their place (see docs/architecture.md, Balance across
shards). This module is the policy; the worker
process mechanism (start, requests, timeouts, kills) is ``supervisor.WorkerProcess``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import json
import logging
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass

from snakebatch.settings.config import RunnerSpec
from snakebatch.infer.devices import lease_gpus, thread_environment
from snakebatch.infer.entry import MiniBatchContext, WorkerContext
from snakebatch.monitor import progress
from snakebatch.infer.claims import CLAIM_MARGIN_S, Claim, ClaimBoard, remove_other_invocations
from snakebatch.errors import EntryScriptError, ManifestError, SnakebatchError, WorkerDied
from snakebatch.kinds import get_kind
from snakebatch.storage.layout import RunLayout
from snakebatch.gather.lifecycle import invalidate_result
from snakebatch.storage.locations import is_url
from snakebatch.partition.manifest import MiniBatch, ShardManifest
from snakebatch.settings.plan import read_plan
from snakebatch.infer.results import FailedItem, MiniBatchResult
from snakebatch.storage.atomic import atomic_open, describe_os_error, remove_stale_temps, write_text_atomic
from snakebatch.infer.store import ItemIndex, MiniBatchStore
from snakebatch.infer.supervisor import Outcome, WorkerProcess, describe_exit  # noqa: F401 - describe_exit: re-exported
from snakebatch.gather.thresholds import RunningTally, Tally, threshold_breaches, thresholds_set
from snakebatch.infer.worker import WorkerSetup

log = logging.getLogger("snakebatch.infer.job")


# ---------------------------------------------------------------------------------- the shard job
@dataclass
class _Part:
    """What running some items of a mini-batch gave: merged lines, successes, failures, tries,
    CPU seconds, csv headers and Arrow IPC tables (parquet) of each successful call, in order."""

    lines: list
    succeeded: int
    failures: list
    tries: int
    cpu_s: float
    headers: list = dataclasses.field(default_factory=list)
    ipcs: list = dataclasses.field(default_factory=list)

    def __add__(self, other: _Part) -> _Part:
        return _Part(self.lines + other.lines, self.succeeded + other.succeeded, self.failures + other.failures,
                     self.tries + other.tries, self.cpu_s + other.cpu_s, self.headers + other.headers,
                     self.ipcs + other.ipcs)


class _InOrder:
    """Results of a shard's mini-batches, passed on (``emit``) in manifest order: a result that
    comes before an earlier one (a busy shard's hand-off still awaited) waits here, lines and
    all, until the ones before it are in. ``indices``: the manifest's mini-batch indices, in order."""

    def __init__(self, indices: list[int], emit) -> None:
        self._indices = indices
        self._position = {index: position for position, index in enumerate(indices)}
        self._emit = emit
        self._next = 0
        self._waiting: dict[int, MiniBatchResult] = {}

    def put(self, result: MiniBatchResult) -> None:
        """Add ``result``; emit it and every waiting one that now follows in order."""
        self._waiting[result.index] = result
        while self._next < len(self._indices) and self._indices[self._next] in self._waiting:
            self._emit(self._waiting.pop(self._indices[self._next]))
            self._next += 1

    def placed(self, index: int) -> bool:
        """True when mini-batch ``index``'s result was put (emitted or waiting); O(1), so the
        early stop's pass over a shard (``ShardRunner._settle``) is linear in its mini-batches."""
        return index in self._waiting or self._position.get(index, len(self._indices)) < self._next

    def flush(self) -> None:
        """Emit the waiting results in manifest order across the gaps: the shard stopped early,
        so the mini-batches before them will not come (the result file of a shard that stopped
        early need not be contiguous; gather does not check its order)."""
        for index in self._indices[self._next:]:
            if index in self._waiting:
                self._emit(self._waiting.pop(index))
        self._next = len(self._indices)


class _StopEarly(Exception):
    """Raised out of a mini-batch whose run() was interrupted because the run stopped early."""


class ShardRunner:
    """Runs the mini-batches of one manifest (see module doc). ``worker`` is a WorkerProcess or
    anything with ``call(items, context, timeout) -> Outcome``, ``start()`` and ``stop()``.
    With ``run_dir``, the shard publishes its progress and stops early once the failures of all
    shards of this invocation exceed a threshold (checked after each mini-batch, and every
    CHECK_EVERY_S seconds while run() works: an interrupted mini-batch is killed and left for the
    next run): ``stopped_early`` then holds the reason, and gather reports the failure. Finished mini-batches stay in the store, so the next run resumes."""

    CHECK_EVERY_S = 2.0  # how often other shards' progress is read when this shard has no new failure

    def __init__(self, spec: RunnerSpec, worker, store: MiniBatchStore | None, error_log: str,
                 run_dir: str | None = None) -> None:
        self.spec = spec
        self.worker = worker
        self.store = store
        self.error_log = error_log
        self.run_dir = run_dir
        self.started = False
        self.invocation = progress.invocation_id()
        self._last_check = 0.0
        self.stopped_early: str | None = None
        self.shard = 0
        self._owner = 0  # the shard whose mini-batch is computed (FailedItem.shard): this one, or a busy one
        self.on_result = None  # called with each finished MiniBatchResult, in order
        self.results: list[MiniBatchResult] = []
        self.start_s = 0.0  # seconds spent starting workers (import + init()): not a mini-batch's wall time
        self._alone_failures = 0  # bisection state of the current mini-batch
        self._any_success = False
        self._manifest: ShardManifest | None = None
        self._mine: progress.ShardProgress | None = None
        self._tally = RunningTally()
        self._error_counts: collections.Counter = collections.Counter()  # error message -> failed items
        self._started_at = 0.0  # time.time() of the shard's start, of its last finished mini-batch
        self._progress_at = 0.0
        self._published_at = 0.0  # time.time() of the last record written
        self._shard_items = 0
        self._watching = False
        self._next: MiniBatch | None = None  # the mini-batch after the one running: prefetched
        self._prefetched: str | None = None  # key of the mini-batch whose load was sent ahead
        self._looked_up: tuple[str, MiniBatchResult | None] | None = None  # (key, store.load of it)
        self.item_index = ItemIndex(store.root) if store is not None else None
        self.claims: ClaimBoard | None = None  # balance_shards: who computes which mini-batch
        self._holding: Claim | None = None  # the claim of the mini-batch being computed
        self._beat_at = 0.0
        self._victims: dict[int, tuple] = {}  # shard -> its manifest's mini-batches (stealing)
        self._tails: dict[int, int] = {}  # shard -> position of its last mini-batch maybe unclaimed
        self._stolen_mini_batches = self._stolen_items = self._adopted = 0
        self._done_items = 0

    def _note_modules(self) -> None:
        if self.store is not None and self.worker.modules:
            self.store.note_modules(self.worker.modules)

    def _ensure_worker(self) -> None:
        """Start a worker when none runs. A failing init() (or a worker dying in it) is retried up
        to ``run_max_try`` times in a row, then the shard ends with the last init traceback
        (ParallelRunStep also stops after a bounded number of init failures). A script that
        cannot be imported fails at once. Raises EntryScriptError."""
        if self.started and self.worker.alive():
            return
        self.worker.kill()
        limit = self.spec.run_max_try
        for attempt in range(1, limit + 1):
            began = time.monotonic()
            try:
                self.worker.start(self.spec.init_timeout)
            except EntryScriptError as exc:
                self.start_s += time.monotonic() - began
                first_line = str(exc).split("\n", 1)[0]
                log.warning("worker start %d/%d failed: %s", attempt, limit, first_line)
                with open(self.error_log, "a", encoding="utf-8", errors="backslashreplace") as handle:
                    handle.write(f"--- worker start {attempt}/{limit} failed: {exc}\n")
                if not getattr(exc, "retryable", False) or attempt == limit:
                    text = str(exc)
                    if attempt > 1:
                        text = text.replace(" failed: ", f" failed {attempt} times in a row: ", 1)
                    raise EntryScriptError(f"{text.rstrip()}\nWorker error log: {self.error_log}") from None
                continue
            self.start_s += time.monotonic() - began
            self.started = True
            self._note_modules()
            return

    def _call(self, items, mini_batch: MiniBatch, first_item: int) -> Outcome:
        """One run() of ``items`` (positions in the mini-batch's materialised input); a worker
        that does not hold that input (a new worker) reads it first."""
        self._ensure_worker()
        self._beat()
        if self.worker.loaded != mini_batch.key:
            outcome = self.worker.load(mini_batch.key, mini_batch.to_json(), self.spec.run_invocation_timeout)
            if not outcome.ok:
                return outcome
        kind = get_kind(mini_batch.kind)
        context = MiniBatchContext(minibatch_index=mini_batch.index, global_row_index_lower_bound=first_item,
                                   partition_key_value=kind.partition_key_value(mini_batch),
                                   dataset=kind.dataset(mini_batch, list(items)))
        interrupt = self._poll if self._watching or self._holding is not None else None
        self._prefetch()
        outcome = self.worker.call(tuple(items), context, self.spec.run_invocation_timeout, interrupt=interrupt,
                                   loaded=mini_batch.key)
        self._note_modules()
        if outcome.interrupted:
            raise _StopEarly
        return outcome

    def _stored(self, mini_batch: MiniBatch) -> MiniBatchResult | None:
        """The store's result for ``mini_batch`` (None: compute it), looked up once."""
        if self.store is None or not self.spec.allow_reuse:
            return None
        if self._looked_up is None or self._looked_up[0] != mini_batch.key:
            self._looked_up = (mini_batch.key, self.store.load(mini_batch))
        return self._looked_up[1]

    def _prefetch(self) -> None:
        """Ask the worker to materialise the next mini-batch while run() works on this one (its
        loader thread reads it meanwhile), unless the store already holds its result."""
        upcoming = self._next
        if upcoming is None or self._prefetched == upcoming.key or not hasattr(self.worker, "send_load"):
            return
        self._prefetched = upcoming.key
        if self._stored(upcoming) is not None:
            return
        size = get_kind(upcoming.kind).prefetch_bytes(upcoming)
        if size > self.spec.prefetch_bytes:  # read when its turn comes, not held on disk meanwhile
            log.debug("mini-batch %d not prefetched: %d bytes > prefetch_bytes %d", upcoming.index, size,
                      self.spec.prefetch_bytes)
            return
        try:
            self.worker.send_load(upcoming.key, upcoming.to_json())
        except WorkerDied:  # the call that follows notices and restarts it
            pass

    def _record_error(self, mini_batch: MiniBatch, count: int, first: str, attempt: int, outcome: Outcome) -> None:
        """Log a failed try of ``count`` item(s) starting with the one named ``first``."""
        log.warning("mini-batch %d (%d item(s), try %d/%d) failed: %s", mini_batch.index, count,
                    attempt, self.spec.run_max_try, outcome.error)
        with open(self.error_log, "a", encoding="utf-8", errors="backslashreplace") as handle:
            handle.write(f"--- mini-batch {mini_batch.index}, {count} item(s) starting at {first!r}, "
                         f"try {attempt}/{self.spec.run_max_try}: {outcome.error}\n{outcome.traceback}\n")

    def _failure(self, position, mini_batch: MiniBatch, error: str, traceback: str, tries: int) -> FailedItem:
        """The FailedItem of the item at ``position`` (None: unknown, run() returned too few)."""
        item = None if position is None else get_kind(mini_batch.kind).describe_item(mini_batch, position)
        return FailedItem(item, mini_batch.index, error, traceback, tries, shard=self._owner)

    GIVE_UP_AFTER = 8  # items failing alone in a row, with no success yet in the mini-batch

    def _run_items(self, mini_batch: MiniBatch, items: tuple, first_item: int, whole: bool = True) -> _Part:
        """The _Part of ``items`` (positions of items in the mini-batch's materialised input) with
        retries and bisection. The whole mini-batch and single items get ``run_max_try`` tries;
        the halves in between one each (the whole already failed every try). When the first
        GIVE_UP_AFTER items tried alone all fail and nothing in the mini-batch has succeeded yet, the
        failure is likely the script's, not the items': every part still gets its one try, but a
        failing part is no longer split, its items fail together with its error (no thousands of
        calls for one bug). A success anywhere resumes normal bisection."""
        tries = 0
        cpu_s = 0.0
        outcome = None
        allowed = self.spec.run_max_try if whole or len(items) == 1 else 1
        for attempt in range(1, allowed + 1):
            tries += 1
            outcome = self._call(items, mini_batch, first_item)
            cpu_s += outcome.cpu_s
            if outcome.ok:
                succeeded = min(outcome.length, len(items))
                failures = []
                if outcome.length < len(items):
                    deficit = len(items) - outcome.length
                    message = (f"ResultCountError: run() returned {outcome.length} result(s) for "
                               f"{len(items)} item(s); {deficit} item(s) counted as failed")
                    log.warning("mini-batch %d: %s", mini_batch.index, message)
                    failures = [self._failure(None, mini_batch, message, "", tries)] * deficit
                elif outcome.length > len(items):
                    log.warning("mini-batch %d: run() returned %d results for %d items; all kept",
                                mini_batch.index, outcome.length, len(items))
                self._alone_failures = 0
                self._any_success = self._any_success or succeeded > 0
                return _Part(list(outcome.lines), succeeded, failures, tries, cpu_s,
                             [outcome.header] if outcome.header is not None else [],
                             [outcome.ipc] if outcome.ipc is not None else [])
            self._record_error(mini_batch, len(items), get_kind(mini_batch.kind).describe_item(mini_batch, items[0]),
                               attempt, outcome)
        if len(items) == 1:
            self._alone_failures += 1
            if not self._any_success and self._alone_failures == self.GIVE_UP_AFTER:
                log.warning("mini-batch %d: the first %d items failed alone and none succeeded; failing parts "
                            "are no longer split down to single items", mini_batch.index, self._alone_failures)
            return _Part([], 0, [self._failure(items[0], mini_batch, outcome.error, outcome.traceback, tries)],
                         tries, cpu_s)
        if not self._any_success and self._alone_failures >= self.GIVE_UP_AFTER:
            note = (f"{outcome.error} (raised for these {len(items)} items together; not split further: the "
                    f"first {self._alone_failures} items of mini-batch {mini_batch.index} tried alone all failed "
                    "and nothing in it has succeeded)")
            return _Part([], 0, [self._failure(item, mini_batch, note, outcome.traceback, tries) for item in items],
                         tries, cpu_s)
        half = len(items) // 2
        log.info("mini-batch %d: bisecting %d items to isolate the failing ones", mini_batch.index, len(items))
        return (_Part([], 0, [], tries, cpu_s) + self._run_items(mini_batch, items[:half], first_item, whole=False)
                + self._run_items(mini_batch, items[half:], first_item + half, whole=False))

    def _load(self, mini_batch: MiniBatch) -> tuple[int | None, _Part, tuple]:
        """Have the worker materialise the mini-batch's input (its kind: file paths, a table's
        rows), with up to run_max_try tries for a worker that dies or times out (a read error is
        final: the same bytes fail the same way). Returns (item count, _Part) - item count None
        when it cannot be read, the _Part then holds one failure for the whole mini-batch, named
        by its kind (file and lines)."""
        tries, cpu_s, outcome = 0, 0.0, None
        what = get_kind(mini_batch.kind).describe(mini_batch)
        for attempt in range(1, self.spec.run_max_try + 1):
            self._ensure_worker()
            self._beat()
            tries += 1
            outcome = self.worker.load(mini_batch.key, mini_batch.to_json(), self.spec.run_invocation_timeout)
            cpu_s += outcome.cpu_s
            if outcome.ok:
                failed = [self._failure(position, mini_batch, error, "", tries) for position, error in outcome.failed_items]
                for item in failed:
                    log.warning("mini-batch %d: %s", mini_batch.index, item.error)
                return outcome.length, _Part([], 0, failed, 0, cpu_s), tuple(p for p, _ in outcome.failed_items)
            self._record_error(mini_batch, mini_batch.count, what, attempt, outcome)
            if not outcome.restart:
                break
        failure = FailedItem(what, mini_batch.index, outcome.error, outcome.traceback, tries, shard=self._owner)
        return None, _Part([], 0, [failure], tries, cpu_s), ()

    def run_mini_batch(self, mini_batch: MiniBatch) -> MiniBatchResult:
        """The result of one mini-batch: reused from the store or computed (and stored)."""
        cached = self._stored(mini_batch)
        if cached is not None:  # same files, maybe at another position of the input now
            return dataclasses.replace(cached, index=mini_batch.index, first_item=mini_batch.first_item,
                                       reused=True)
        start, started_at, start_s = time.monotonic(), time.time(), self.start_s
        self._alone_failures, self._any_success = 0, False
        count, part, unread = self._load(mini_batch)
        identities, known = None, {}
        if count is None:  # unreadable: every item counts as failed
            item_count = get_kind(mini_batch.kind).item_count(mini_batch)
        else:
            item_count = count
            identities = self._item_identities(mini_batch, count)
            if identities is not None:
                known = {p: line for p, line in self.item_index.lookup(
                    self.store.fingerprint, identities, self._shard_identities).items() if p not in unread}
            if known:
                log.info("mini-batch %d: %d of %d item(s) reused from earlier runs' lines", mini_batch.index,
                         len(known), count)
            blocks = [(p, [line]) for p, line in known.items()]
            for segment in _segments(count, set(unread) | set(known)):  # unreadable items are failed already
                before = len(part.lines)
                part = part + self._run_items(mini_batch, segment, mini_batch.first_item + segment[0])
                blocks.append((segment[0], part.lines[before:]))
            if known:  # the reused lines and the computed parts' lines, in item order
                part = dataclasses.replace(part, lines=[line for _, lines in sorted(blocks, key=lambda b: b[0])
                                                        for line in lines], succeeded=part.succeeded + len(known))
        table_file = None
        if part.ipcs and self.store is not None:
            table_file = self.store.save_table(mini_batch, part.ipcs)
        result = MiniBatchResult(
            index=mini_batch.index, key=mini_batch.key, first_item=mini_batch.first_item,
            item_count=item_count, succeeded=part.succeeded, lines=tuple(part.lines),
            failures=tuple(part.failures), tries=part.tries, duration_s=time.monotonic() - start - (self.start_s - start_s),
            agent_name=getattr(self.worker, "name", "worker"), started_at=started_at,
            positional=self.worker.takes_context, cpu_s=part.cpu_s,
            header=part.headers[0] if part.headers else None, table_file=table_file,
        )
        if self.store is not None:
            self.store.save(result, mini_batch)
            if (identities is not None and result.failed == 0 and len(result.lines) == item_count
                    and result.header is None and not result.positional):
                self.item_index.add(self.store.fingerprint, [None if p in known else i for p, i in enumerate(identities)],
                                    result.lines)
        return result

    def _item_identities(self, mini_batch: MiniBatch, count: int) -> list | None:
        """Per item of ``mini_batch`` its identity for item-level reuse (``store.ItemIndex``), or
        None when the lines of this mini-batch are not reused or indexed item by item: reuse off
        (``allow_reuse``, ``reuse_items``), no store, output other than append_row txt, a kind
        without item identities (tables), run() taking mini_batch_context, or a count that
        differs from the manifest's."""
        spec = self.spec
        if (self.store is None or not spec.allow_reuse or not spec.reuse_items or spec.output_action != "append_row"
                or spec.append_row_format != "txt" or self.worker.takes_context):
            return None
        identities = get_kind(mini_batch.kind).item_identities(mini_batch)
        return identities if identities is not None and len(identities) == count else None

    def _shard_identities(self) -> list:
        """The item identities of every mini-batch the store does not hold of this shard and of
        the busy shards it took mini-batches from (read on the first item-index lookup and when
        a mini-batch of a new busy shard asks, so the index keeps only what this job may ask for)."""
        out = []
        own = self._manifest.mini_batches if self._manifest is not None else ()
        for mini_batch in [*own, *(mb for batches in self._victims.values() for mb in batches)]:
            if not self.store.holds(mini_batch):
                out.extend(i for i in (get_kind(mini_batch.kind).item_identities(mini_batch) or ()) if i)
        return out

    def _thresholds_set(self) -> bool:
        return thresholds_set(self.spec)

    BEAT_EVERY_S = 5.0  # how often a claim's heartbeat is refreshed while run() works on its mini-batch

    def _beat(self, force: bool = False) -> None:
        """Refresh the heartbeat of the claim this shard job holds (see claims.ClaimBoard) when the
        last one is BEAT_EVERY_S seconds old: before each try (after a worker start) and while
        run() works, so a live holder's claim is never older than BEAT_EVERY_S + one call."""
        if self._holding is None or self.claims is None:
            return
        now = time.monotonic()
        if force or now - self._beat_at >= self.BEAT_EVERY_S:
            self._beat_at = now
            self.claims.heartbeat(self._holding)

    def _poll(self) -> bool:
        """Asked every second while run() works: refresh the claim's heartbeat; True when the run
        stopped early meanwhile (``_breached_elsewhere``)."""
        self._beat()
        return self._watching and self._breached_elsewhere()

    def _breached_elsewhere(self) -> bool:
        """While run() works on a mini-batch (asked every second): publish the progress record
        (at most once a second, naming the mini-batch in run()), and say whether the failures of
        all shards have exceeded a threshold meanwhile (read at most every CHECK_EVERY_S seconds;
        sets ``stopped_early``)."""
        if self._manifest is not None:
            self._publish(self._manifest)
        now = time.monotonic()
        if now - self._last_check < self.CHECK_EVERY_S or self._mine is None:
            return False
        self._last_check = now
        self.stopped_early = self._breach(self._mine)
        return self.stopped_early is not None

    PUBLISH_EVERY_S = 1.0  # the longest a running shard's published record lags its tally

    def _publish(self, manifest: ShardManifest, state: str = "running",
                 force: bool = False) -> progress.ShardProgress | None:
        """This shard's progress record (its running tally ``self._tally``, see
        progress.ShardProgress) for the other shards, the live view and the status command;
        written (one small file renamed into place, not fsynced) when the shard starts, when it
        ends, with ``force`` (a new failure) and otherwise at most every PUBLISH_EVERY_S seconds
        after a mini-batch (a rename per mini-batch would cost fast mini-batches measurably:
        scripts/benchmark_live_view.py) or while run() works (``_breached_elsewhere``, every
        second: the record then names the mini-batch in run(), from the worker's ``started``
        Event, ``supervisor.InFlight``). None without ``run_dir``."""
        if self.run_dir is None:
            return None
        tally, now = self._tally, time.time()
        in_flight = getattr(self.worker, "running", None) if state == "running" else None
        self._started_at = self._started_at or now
        mine = progress.ShardProgress(
            invocation=self.invocation, shard=manifest.shard, done_mini_batches=tally.mini_batches,
            shard_mini_batches=len(manifest.mini_batches), failed_items=tally.failed,
            failed_mini_batches=tally.failed_mini_batches, first_failure=tally.first_failure_text,
            done_items=tally.items, shard_items=self._shard_items, succeeded_items=tally.succeeded,
            reused_mini_batches=tally.reused_mini_batches, total_items=manifest.total_items,
            total_mini_batches=manifest.total_mini_batches, state=state, started_at=self._started_at,
            progress_at=self._progress_at or self._started_at, updated_at=now, host=socket.gethostname(),
            pid=os.getpid(), run_invocation_timeout=self.spec.run_invocation_timeout,
            top_errors=tuple(self._error_counts.most_common(progress.TOP_ERRORS)),
            reused_items=tally.reused_items, running_mini_batch=in_flight.mini_batch if in_flight else -1,
            running_items=in_flight.items if in_flight else 0, running_since=in_flight.since if in_flight else 0.0,
            stolen_mini_batches=self._stolen_mini_batches, stolen_items=self._stolen_items,
            adopted_mini_batches=self._adopted)
        self._mine = mine
        if state == "running" and not force and now - self._published_at < self.PUBLISH_EVERY_S:
            return mine
        self._published_at = now
        with contextlib.suppress(OSError):  # advisory: a full disk must not fail the shard here
            progress.write_progress(self.run_dir, mine)
        return mine

    def _check_early_stop(self, manifest: ShardManifest, new_failure: bool) -> str | None:
        """Publish this shard's progress (``_publish``); return why to stop when the failures of
        every shard of this invocation already exceed a threshold (the final count can only be
        higher). O(1) per call, but for the other shards' progress files, read after a new
        failure or at most every CHECK_EVERY_S seconds."""
        mine = self._publish(manifest, force=new_failure)
        if mine is None:
            return None
        now = time.monotonic()
        if not (new_failure or now - self._last_check >= self.CHECK_EVERY_S):
            return None
        self._last_check = now
        return self._breach(mine)

    def _breach(self, mine: progress.ShardProgress) -> str | None:
        """Why to stop, from this shard's record ``mine`` and the other shards' published ones;
        None while no threshold is exceeded."""
        if not self._thresholds_set():
            return None
        records = {r.shard: r for r in progress.invocation_progress(self.run_dir, self.invocation)}
        records[mine.shard] = mine
        tally = Tally(items=self._manifest.total_items, succeeded=0,
                      failed=sum(r.failed_items for r in records.values()),
                      mini_batches=self._manifest.total_mini_batches,
                      failed_mini_batches=sum(r.failed_mini_batches for r in records.values()),
                      reused_mini_batches=0)
        breaches = threshold_breaches(tally, self.spec)
        if not breaches:
            return None
        causes = [f"  shard {r.shard}: {r.first_failure}" for r in sorted(records.values(), key=lambda r: r.shard)
                  if r.first_failure]
        return ("stopped early: " + "; ".join(breaches) + " in this run so far (all shards).\n"
                "First failures:\n" + "\n".join(causes[:5]))

    def run(self, manifest: ShardManifest) -> list[MiniBatchResult]:
        """Run the mini-batches of ``manifest`` in order, all of them unless it stops early (see
        the class doc); stops the worker at the end. With ``balance_shards`` (and ``run_dir``)
        each mini-batch is claimed first (``claims.ClaimBoard``); one another shard job claimed
        is taken from its hand-off instead; when this shard's own are done, unstarted
        mini-batches of busy shards are computed and handed off (``_steal``), then the hand-offs
        of this shard's are waited for (``_await``). The result file gets every result of this
        shard's manifest in order either way."""
        results = self.results = []  # also what a run that raised had finished
        self.shard = self._owner = manifest.shard
        self._manifest = manifest
        if self.item_index is not None:
            self.item_index.shard = manifest.shard
        self._tally = RunningTally()  # this shard's counts, kept as results arrive
        self._error_counts = collections.Counter()
        self._started_at, self._progress_at, self._published_at = time.time(), 0.0, 0.0
        self._watching = self.run_dir is not None  # the record while run() works; early stop with thresholds
        self._stolen_mini_batches = self._stolen_items = self._adopted = self._done_items = 0
        self._victims, self._tails = {}, {}
        self.claims = None
        if self.run_dir is not None and self.spec.balance_shards:
            remove_other_invocations(self.run_dir, self.invocation)
            self.claims = ClaimBoard(self.run_dir, self.invocation, manifest.shard,
                                     self.spec.run_invocation_timeout + CLAIM_MARGIN_S)
        self._start = time.monotonic()
        self._shard_items = sum(mb.count for mb in manifest.mini_batches)
        in_order = _InOrder([mb.index for mb in manifest.mini_batches], self._emit)
        pending: list[MiniBatch] = []  # this shard's mini-batches another shard job holds
        finished = False
        state = "interrupted"  # what the last record says when this raises (a signal, an exception)
        try:
            self.stopped_early = self._check_early_stop(manifest, new_failure=True)
            for number, mini_batch in enumerate(manifest.mini_batches, 1):
                self._next = manifest.mini_batches[number] if number < len(manifest.mini_batches) else None
                if self.stopped_early:
                    break
                if self.claims is not None:
                    adopted = self._claim_or_adopt(mini_batch)
                    if adopted is not None:  # another shard job computed it (an earlier attempt of this one died)
                        in_order.put(adopted)
                        continue
                    if self._holding is None:  # another shard job took it: its hand-off comes later
                        pending.append(mini_batch)
                        continue
                if not self._compute(mini_batch, in_order):
                    break
            if self.claims is not None and not self.stopped_early:
                self._next = None
                self._steal(manifest)
                for mini_batch in pending:
                    if self.stopped_early or not self._await(mini_batch, in_order):
                        break
            if self.claims is not None and self.stopped_early:
                self._settle(manifest, in_order)
            if self.stopped_early and len(results) == len(manifest.mini_batches):
                self.stopped_early = None  # the threshold broke with this shard's last mini-batch: it did all
            if self.stopped_early:
                log.warning("%s", self.stopped_early)
            finished = True
            state = "stopped" if self.stopped_early else "done"
        except EntryScriptError:
            state = "failed"
            raise
        finally:
            self._holding = None
            try:
                if self.store is not None:
                    self.store.commit()  # the results of this shard's last group reach the disk
                if self.item_index is not None:
                    self.item_index.close()
            finally:
                self._publish(manifest, state)  # after the commit: "done" only once results are durable
            if self.started:
                if finished:  # shutdown() gets its chance; an interrupted shard kills at once
                    self.worker.stop()
                    self._note_modules()
                else:
                    self.worker.kill()
        return results

    def _emit(self, result: MiniBatchResult) -> None:
        """Take ``result`` (the next of this shard's manifest, in order) into the shard's results."""
        if self.on_result is not None:  # written out now; keep only the counts in memory
            self.on_result(result)
            result = dataclasses.replace(result, lines=())
        self.results.append(result)

    def _compute(self, mini_batch: MiniBatch, in_order: _InOrder | None = None, owner: int | None = None) -> bool:
        """Run ``mini_batch`` under the claim ``_holding`` (if any) and count it; with
        ``in_order`` its result goes to this shard's results, else (``owner``: a busy shard's
        mini-batch) it is handed off. False when the run stopped early meanwhile."""
        self._owner = owner if owner is not None else self.shard  # failures name the mini-batch's own shard
        try:
            result = self.run_mini_batch(mini_batch)
        except _StopEarly:  # another shard's failures went over a threshold meanwhile
            log.warning("mini-batch %d interrupted: the run stopped early", mini_batch.index)
            return False
        finally:
            claim, self._holding, self._owner = self._holding, None, self.shard
        if owner is not None and not self.claims.hand_off(claim, result.to_json()):
            log.warning("mini-batch %d of shard %d: its claim was taken over while it ran (no sign of life for "
                        "over %g s); the result is dropped, shard %d computes it", mini_batch.index, owner,
                        self.claims.stale_after_s, owner)
            return True
        self._count(result, mini_batch, owner)
        if in_order is not None:
            in_order.put(result)
        return True

    def _count(self, result: MiniBatchResult, mini_batch: MiniBatch, owner: int | None) -> None:
        """Add a result this shard job computed or reused (for itself, or for shard ``owner``)
        to its tally and progress record, log it, and check for an early stop."""
        manifest = self._manifest
        self._tally.add(result)
        self._progress_at = time.time()
        for failure in result.failures:
            self._error_counts[_error_message(failure.error)] += 1
        self._done_items += result.item_count
        if owner is not None:
            self._stolen_mini_batches += 1
            self._stolen_items += result.item_count
        elapsed = time.monotonic() - self._start - self.start_s  # worker starts (init()) excluded
        rate = self._done_items / elapsed if elapsed > 0 else 0.0
        own_left = self._shard_items - (self._done_items - self._stolen_items)
        eta = max(0, own_left) / rate if rate > 0 else 0.0
        where = f" of shard {owner} (taken from a busy shard)" if owner is not None else ""
        log.info("mini-batch %d%s: %d item(s), %d succeeded, %d failed, %s, wall %.3f s, cpu %.3f s "
                 "(%d/%d in shard, %d/%d items, %.1f items/s, ETA %.0f s)",
                 mini_batch.index, where, result.item_count, result.succeeded, result.failed,
                 "reused" if result.reused else f"{result.tries} tr{'y' if result.tries == 1 else 'ies'}",
                 0.0 if result.reused else result.duration_s, 0.0 if result.reused else result.cpu_s,
                 self._tally.mini_batches, len(manifest.mini_batches), self._done_items, self._shard_items, rate, eta)
        self.stopped_early = self._check_early_stop(manifest, new_failure=result.failed > 0)

    def _adopt(self, mini_batch: MiniBatch) -> MiniBatchResult | None:
        """The result another shard job handed off for this shard's ``mini_batch``, or None.
        Not counted again: that job's progress record counts it."""
        text = self.claims.handed_off(mini_batch.index)
        if text is None:
            return None
        try:
            result = MiniBatchResult.from_json(text)
        except (ValueError, KeyError, TypeError):
            return None  # torn by a machine crash: its claim's holder is judged as usual
        if (result.index, result.key) != (mini_batch.index, mini_batch.key):
            return None
        self._adopted += 1
        log.info("mini-batch %d: computed by another shard job (%s), taken into this shard's results",
                 mini_batch.index, result.agent_name)
        return result

    def _claim_or_adopt(self, mini_batch: MiniBatch) -> MiniBatchResult | None:
        """Claim this shard's ``mini_batch`` (``_holding`` then holds the claim), or return the
        result another shard job handed off for it. Neither (None, ``_holding`` None): a live
        holder has it. A claim another job made is judged (and a void one taken over) only
        after looking for its hand-off, so a finished job's claim is not taken over needlessly."""
        self._holding = self.claims.claim(mini_batch.index, take_over=False)
        if self._holding is None:
            adopted = self._adopt(mini_batch)
            if adopted is not None:
                return adopted
            self._holding = self.claims.claim(mini_batch.index)
            if self._holding is not None and self.claims.took_over is not None:
                adopted = self._adopt(mini_batch)  # handed off just before its holder ended
                if adopted is not None:
                    self._holding = None
                    return adopted
                log.warning("mini-batch %d: claimed again, computed here: %s", mini_batch.index,
                            self.claims.took_over)
        self._beat_at = time.monotonic()  # a new claim file's mtime is its first heartbeat
        return None

    AWAIT_POLL_S = 0.5  # the longest pause between looks at a hand-off this shard waits for

    def _await(self, mini_batch: MiniBatch, in_order: _InOrder) -> bool:
        """Wait for the hand-off of this shard's ``mini_batch``, which another shard job claimed;
        when that claim becomes void (its holder died, see claims) take it over and compute it
        here. The shard file is never finished without it. False when the run stopped early."""
        delay = 0.01
        while True:
            adopted = self._claim_or_adopt(mini_batch)
            if adopted is not None:
                in_order.put(adopted)
                return True
            if self._holding is not None:
                return self._compute(mini_batch, in_order)
            self.stopped_early = self._check_early_stop(self._manifest, new_failure=False)
            if self.stopped_early:
                return False
            time.sleep(delay)
            delay = min(delay * 2, self.AWAIT_POLL_S)

    def _settle(self, manifest: ShardManifest, in_order: _InOrder) -> None:
        """The run stopped early: take in every hand-off of this shard's mini-batches that
        another shard job finished (its failures must reach the error report), so that none
        is left only in the claims folder. A mini-batch not yet placed is claimed (nobody
        starts it now) or, while a live holder still has it, waited for until it hands off or
        its claim goes void (a holder that sees the early stop ends at once; at most
        ``stale_after_s``). Then the waiting results are written past the gaps."""
        deadline = time.monotonic() + self.claims.stale_after_s
        for mini_batch in manifest.mini_batches:
            delay = 0.01
            while not in_order.placed(mini_batch.index):
                adopted = self._claim_or_adopt(mini_batch)
                if adopted is not None:
                    in_order.put(adopted)
                elif self._holding is not None or time.monotonic() > deadline:
                    break  # claimed here (it never ran) or its holder gave no sign: not run
                else:
                    time.sleep(delay)
                    delay = min(delay * 2, self.AWAIT_POLL_S)
            self._holding = None
        in_order.flush()

    def _steal(self, manifest: ShardManifest) -> None:
        """While this invocation's busy shard jobs have unclaimed mini-batches: claim the last of
        the one with the most (``_next_steal``), compute it, hand it off."""
        while not self.stopped_early:
            found = self._next_steal()
            if found is None:
                return
            owner, mini_batch, self._holding = found
            self._beat_at = time.monotonic()
            if not self._compute(mini_batch, owner=owner):
                return

    def _victim(self, shard: int) -> tuple:
        """The mini-batches of ``shard``'s manifest (read once; () when unreadable)."""
        if shard not in self._victims:
            try:
                self._victims[shard] = ShardManifest.read(RunLayout(self.run_dir).manifest(shard)).mini_batches
            except (OSError, SnakebatchError, ValueError, KeyError, TypeError) as exc:
                log.warning("shard %d's manifest cannot be read, nothing taken from it: %s", shard, exc)
                self._victims[shard] = ()
        return self._victims[shard]

    def _unclaimed(self, shard: int) -> tuple[int, int]:
        """``(count, position)`` of the unclaimed mini-batches of busy ``shard``: its owner claims
        from the front, takers from the end, so they are the run between; ``position`` is the
        last of them (one stat per claimed mini-batch from the end, then a binary search)."""
        batches = self._victim(shard)
        tail = self._tails.get(shard, len(batches) - 1)
        while tail >= 0 and self.claims.was_claimed(batches[tail].index):
            tail -= 1
        self._tails[shard] = tail
        low, high = 0, max(tail, 0)
        while low < high:
            middle = (low + high) // 2
            if self.claims.was_claimed(batches[middle].index):
                low = middle + 1
            else:
                high = middle
        return (tail - low + 1 if tail >= 0 else 0), tail

    def _next_steal(self) -> tuple[int, MiniBatch, Claim] | None:
        """Claim the last unclaimed mini-batch of the running shard job (this invocation's
        progress records) with the most unclaimed ones: ``(shard, mini_batch, claim)``, or None
        when no running shard has any."""
        while True:
            busy = [r.shard for r in progress.invocation_progress(self.run_dir, self.invocation)
                    if r.state == "running" and r.shard != self.shard]
            best = None
            for shard in busy:
                count, tail = self._unclaimed(shard)
                if count > 0 and (best is None or count > best[0]):
                    best = (count, shard, tail)
            if best is None:
                return None
            _, shard, tail = best
            mini_batch = self._victim(shard)[tail]
            self._tails[shard] = tail - 1
            claim = self.claims.claim(mini_batch.index, take_over=False)
            if claim is not None:
                return shard, mini_batch, claim


def _error_message(error: str, limit: int = 200) -> str:
    """The message a progress record counts an error under: its first line, at most ``limit``
    characters (``"ValueError: bad pixel"``)."""
    first = error.split("\n", 1)[0]
    return first if len(first) <= limit else first[:limit - 3] + "..."


def _segments(count: int, skip: set) -> list[tuple[int, ...]]:
    """The runs of consecutive positions in ``range(count)`` without those in ``skip``:
    ``_segments(6, {2})`` is ``[(0, 1), (3, 4, 5)]``."""
    segments, current = [], []
    for position in range(count):
        if position in skip:
            if current:
                segments.append(tuple(current))
            current = []
        else:
            current.append(position)
    if current:
        segments.append(tuple(current))
    return segments


def shard_log_paths(run_dir: str, shard: int) -> dict:
    """The per-worker log files of ``shard`` (SPEC §6 layout, ``RunLayout.shard_logs``), absolute."""
    return RunLayout(run_dir).absolute().shard_logs(shard)


def worker_environment(spec: RunnerSpec, devices: dict | None = None) -> dict:
    """The environment a worker is spawned with: the thread caps of ``threads_per_process``, the
    GPU placement (``devices``: CUDA_VISIBLE_DEVICES or nothing), then the user's
    ``environment_variables``, which win."""
    return {**thread_environment(spec.threads_per_process), **(devices or {}), **spec.environment_variables}


def build_worker(spec: RunnerSpec, run_dir: str, shard: int, devices: dict | None = None) -> WorkerProcess:
    """The WorkerProcess of ``shard`` with absolute paths and its log files; ``devices`` is the
    environment of its GPU lease (see worker_environment)."""
    paths = shard_log_paths(run_dir, shard)
    agent = f"process{shard:03d}"  # ParallelRunStep's agent names; log files keep shard-NNNNN
    context = WorkerContext(
        agent_name=agent,
        output_dir=RunLayout(run_dir).absolute().outputs_dir,
        working_dir=os.getcwd(),
        log_dir=os.path.dirname(os.path.dirname(paths["stdout"])),
        logging_level=spec.logging_level,
        side_inputs={k: v if is_url(v) else os.path.abspath(v) for k, v in spec.side_inputs.items()},
        models={k: v if is_url(v) else os.path.abspath(v) for k, v in spec.models.items()},
    )
    setup = WorkerSetup(
        entry_script=os.path.abspath(spec.entry_script),
        source_directory=os.path.abspath(spec.source_directory),
        arguments=tuple(spec.arguments), environment_variables=dict(spec.environment_variables),
        append_row_format=spec.append_row_format, output_action=spec.output_action,
        read_options=dict(spec.read_options),
        append_row_dataframe_header=spec.append_row_dataframe_header,
        storage_options=dict(spec.storage_options),
        download_dir=RunLayout(run_dir).absolute().downloads_dir(shard),
        resources_dir=RunLayout(run_dir).absolute().downloads_dir(shard, "resources"),
        stdout_path=paths["stdout"], stderr_path=paths["stderr"], stack_path=paths["stack"], context=context,
        process_environment=worker_environment(spec, devices),
    )
    worker = WorkerProcess(setup)
    worker.name = agent
    return worker


def run_shard(spec: RunnerSpec, manifest_path: str, output_path: str,
              run_dir: str | None = None) -> tuple[list[MiniBatchResult], str | None]:
    """Run one shard job end to end and write its result file atomically (one JSON line per
    mini-batch, written as each finishes to a temporary file, then a trailer line when it stopped
    early). ``run_dir`` defaults to the run folder ``output_path`` lies in. Returns the results
    (without their lines, which are in the file) and why it stopped early (None when it ran every
    mini-batch). A shard that stopped early leaves a marker newer than its result, so the next
    snakemake invocation runs it again, reusing what it finished (``mark_unfinished``). Raises SnakebatchError
    subclasses with a clear message."""
    layout = RunLayout(run_dir) if run_dir is not None else RunLayout.of_shard_result(output_path)
    invalidate_result(layout.root)
    remove_stale_temps(output_path)  # a shard file a killed run of this shard left half-written
    with contextlib.suppress(FileNotFoundError):  # this shard runs again now (see mark_unfinished)
        os.unlink(RunLayout.of_shard_result(output_path).shard_unfinished(_shard_name(output_path)))
    manifest = ShardManifest.read(manifest_path)
    paths = shard_log_paths(layout.root, manifest.shard)
    for path in paths.values():
        os.makedirs(os.path.dirname(path), exist_ok=True)
    os.makedirs(layout.outputs_dir, exist_ok=True)
    handler = logging.FileHandler(paths["node"], encoding="utf-8", errors="backslashreplace")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(spec.logging_level)
    plan = read_plan(layout.plan)
    # held for the whole shard job, so its GPU indices are its own (see snakebatch.infer.devices)
    lease = lease_gpus(spec.gpus_per_process, plan.gpu_pool if plan is not None else None, layout.gpus_dir)
    try:
        if manifest.run_name != spec.run_name:
            raise ManifestError(f"shard manifest {manifest_path!r} belongs to run {manifest.run_name!r}, "
                                f"not {spec.run_name!r}")
        if lease.warning:
            log.warning("%s", lease.warning)
        if lease.indices:
            log.info("GPU(s) %s of this run's pool for this shard's worker", lease.environment["CUDA_VISIBLE_DEVICES"])
        store = MiniBatchStore(layout.store_dir, spec, layout.root)
        worker = build_worker(spec, layout.root, manifest.shard, lease.environment)
        runner = ShardRunner(spec, worker, store, paths["error"], layout.root)
        if plan is not None:  # the id the main snakemake process gave this invocation's shards
            runner.invocation = plan.invocation
        log.info("shard %d/%d: %d mini-batch(es)", manifest.shard, manifest.shard_count, len(manifest.mini_batches))
        with atomic_open(output_path) as handle:  # becomes the shard result only when the shard ends well
            runner.on_result = lambda result: handle.write(result.to_json() + "\n")
            failure = None
            try:
                results = runner.run(manifest)
            except EntryScriptError as exc:  # the script cannot be imported or init() keeps failing
                log.error("%s", exc)
                failure = str(exc)
                results = runner.results
                runner.stopped_early = "the entry script failed to start: " + failure.split("\n", 1)[0]
            if runner.stopped_early:  # the trailer gather looks for (see lifecycle.read_shard_file)
                trailer = {"stopped_early": runner.stopped_early, "total_mini_batches": manifest.total_mini_batches}
                if failure is not None:
                    trailer.update(failure=failure, shard=manifest.shard, shard_count=manifest.shard_count)
                handle.write(json.dumps(trailer) + "\n")
        if runner.stopped_early:
            mark_unfinished(output_path)
        return results, runner.stopped_early
    finally:
        lease.release()
        log.removeHandler(handler)
        handler.close()


def _shard_name(output_path: str) -> str:
    """``'00003'`` of ``.../shards/shard-00003.jsonl``."""
    return os.path.basename(output_path)[len("shard-"):-len(".jsonl")]


UNFINISHED_AHEAD_S = 86400  # how far ahead of now an unfinished marker's mtime is set (see mark_unfinished)


def mark_unfinished(output_path: str) -> str:
    """Leave the marker ``RunLayout.shard_unfinished`` next to the shard result ``output_path``
    of a shard that stopped early. The workflow makes an existing marker an input of its shard
    job; dated a day ahead, it stays newer than the result after Snakemake touches the job's
    outputs at its end, so the next snakemake invocation runs that shard again (a dry run only
    reads it). The shard removes it when it starts, so the date never outlives the stop.
    Returns the marker's path."""
    layout = RunLayout.of_shard_result(output_path)
    marker = layout.shard_unfinished(_shard_name(output_path))
    write_text_atomic(marker, "stopped early; the next run runs this shard again\n")
    ahead = int((time.time() + UNFINISHED_AHEAD_S) * 1e9)
    os.utime(marker, ns=(ahead, ahead))
    return marker


def _terminate(signum, frame):
    # once: a Ctrl-C reaches the runner both from the terminal and forwarded by snakemake's process
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    name = signal.Signals(signum).name
    print(f"snakebatch runner: stopped by {name}" + (" (Ctrl-C)" if signum == signal.SIGINT else "")
          + "; the next run resumes the unfinished mini-batches", file=sys.stderr, flush=True)
    raise SystemExit(128 + signum)  # unwinds through ShardRunner.run, which kills the worker


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m snakebatch.infer.job", description=__doc__.split("\n\n")[0])
    specs = parser.add_mutually_exclusive_group(required=True)
    specs.add_argument("--spec", help="RunnerSpec as JSON")
    specs.add_argument("--spec-file", help="a file holding --spec")
    parser.add_argument("--manifest", required=True, help="the shard manifest to run")
    parser.add_argument("--output", required=True, help="the shard result file to write (JSON lines)")
    parser.add_argument("--run-dir", help="results/{run_name} (default: the run folder of --output)")
    args = parser.parse_args(argv)
    spec = RunnerSpec.from_json(args.spec if args.spec is not None else _read_text(args.spec_file))
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    try:
        results, stopped = run_shard(spec, args.manifest, args.output, args.run_dir)
    except SnakebatchError as exc:
        print(f"snakebatch runner: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:   # the shard's own writes (a full disk): the worker is stopped by now
        print(f"snakebatch runner: error: {describe_os_error(exc)}", file=sys.stderr)
        return 1
    items = sum(r.item_count for r in results)
    failed = sum(r.failed for r in results)
    reused = sum(1 for r in results if r.reused)
    why = ""
    if stopped:
        why = (" - " + stopped) if stopped.startswith("the entry script failed") else \
            " - stopped early, an error threshold is exceeded"
    print(f"snakebatch runner: {os.path.basename(args.manifest)}: {len(results)} mini-batch(es), "
          f"{items} item(s), {failed} failed, {reused} reused" + why)
    return 0


if __name__ == "__main__":
    sys.exit(main())
