"""The attempts policy: how many times a worker is started, a mini-batch read and its items run,
and how a mini-batch that fails every try is bisected to its failing items (ParallelRunStep's
``run_max_try``: a raise, a timeout or a worker death each count as a try).

``Attempts`` talks to a ``workers.Worker`` only; the shard loop (``shard``) gives it its hooks:
``beat`` (run before each request: the claim's heartbeat), ``prefetch`` (run just before each
run() call: send the next mini-batch's read ahead), ``interrupt`` (asked while run() works: an
early stop; a call it stopped raises ``StopEarly``) and ``note_modules`` (after a worker started or
answered: note the modules it reported).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from snakebatch.errors import EntryScriptError
from snakebatch.infer.entry import MiniBatchContext
from snakebatch.infer.results import FailedItem
from snakebatch.infer.workers import InitFailed, Outcome, Worker
from snakebatch.kinds import get_kind
from snakebatch.partition.manifest import MiniBatch
from snakebatch.settings.config import RunnerSpec

log = logging.getLogger("snakebatch.infer.job")


class StopEarly(Exception):
    """Raised out of a mini-batch whose run() was interrupted because the run stopped early."""


@dataclass
class Part:
    """What running some items of a mini-batch gave: merged ``lines``, ``succeeded`` items,
    ``failures`` (FailedItems), ``tries`` (calls), ``cpu_s`` (worker CPU seconds), ``headers``
    (csv) and ``ipcs`` (Arrow IPC tables, parquet) of each successful call, in order. Parts are
    combined in place (``extend``), so a mini-batch's lines are copied once however many
    segments and bisected parts it has."""

    lines: list = field(default_factory=list)
    succeeded: int = 0
    failures: list = field(default_factory=list)
    tries: int = 0
    cpu_s: float = 0.0
    headers: list = field(default_factory=list)
    ipcs: list = field(default_factory=list)

    def extend(self, other: Part) -> Part:
        """Append ``other`` after this part; returns self."""
        self.lines.extend(other.lines)
        self.succeeded += other.succeeded
        self.failures.extend(other.failures)
        self.tries += other.tries
        self.cpu_s += other.cpu_s
        self.headers.extend(other.headers)
        self.ipcs.extend(other.ipcs)
        return self


def segments(count: int, skip: set) -> list[tuple[int, ...]]:
    """The runs of consecutive positions in ``range(count)`` without those in ``skip``:
    ``segments(6, {2})`` is ``[(0, 1), (3, 4, 5)]``."""
    runs, current = [], []
    for position in range(count):
        if position in skip:
            if current:
                runs.append(tuple(current))
            current = []
        else:
            current.append(position)
    if current:
        runs.append(tuple(current))
    return runs


class Attempts:
    """Tries and bisection for one shard job's worker (see the module doc). ``error_log``: the
    worker error log every failed try is appended to. ``owner``: the shard whose mini-batch is
    being computed (FailedItem.shard; another shard's with balance_shards). ``start_s``: seconds
    spent starting workers (import + init()), not part of a mini-batch's wall time."""

    GIVE_UP_AFTER = 8  # items failing alone in a row, with no success yet in the mini-batch

    def __init__(self, spec: RunnerSpec, worker: Worker, error_log: str, beat: Callable[[], None] = lambda: None,
                 prefetch: Callable[[], None] = lambda: None, interrupt: Callable[[], bool] | None = None,
                 note_modules: Callable[[], None] | None = None) -> None:
        self.spec = spec
        self.worker = worker
        self.error_log = error_log
        self.beat = beat
        self.prefetch = prefetch
        self.interrupt = interrupt
        self.note_modules = note_modules or (lambda: None)
        self.started = False
        self.start_s = 0.0
        self.owner = 0
        self._alone_failures = 0  # bisection state of the current mini-batch
        self._any_success = False

    # ------------------------------------------------------------------------------ the worker
    def ensure_worker(self) -> None:
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
                self._start_failed(exc, attempt, final=not isinstance(exc, InitFailed) or attempt == limit)
                continue
            self.start_s += time.monotonic() - began
            self.started = True
            self.note_modules()
            return

    def _start_failed(self, exc: EntryScriptError, attempt: int, final: bool) -> None:
        """Log a failed start ``attempt``; when ``final``, raise EntryScriptError naming how many
        starts in a row failed and the worker error log."""
        limit = self.spec.run_max_try
        log.warning("worker start %d/%d failed: %s", attempt, limit, str(exc).split("\n", 1)[0])
        with open(self.error_log, "a", encoding="utf-8", errors="backslashreplace") as handle:
            handle.write(f"--- worker start {attempt}/{limit} failed: {exc}\n")
        if final:
            text = str(exc)
            if attempt > 1:
                text = text.replace(" failed: ", f" failed {attempt} times in a row: ", 1)
            raise EntryScriptError(f"{text.rstrip()}\nWorker error log: {self.error_log}") from None

    def stop(self, finished: bool) -> None:
        """End the worker (if one was started): ``finished`` lets it call shutdown(), otherwise
        (an interrupted or failed shard) it is killed at once."""
        if not self.started:
            return
        if finished:
            self.worker.stop()
            self.note_modules()  # the modules shutdown() reported
        else:
            self.worker.kill()

    # -------------------------------------------------------------------------------- requests
    def call(self, items: tuple, mini_batch: MiniBatch, first_item: int) -> Outcome:
        """One run() of ``items`` (positions in the mini-batch's materialised input); a worker
        that does not hold that input (a new worker) reads it first. Raises StopEarly when the
        interrupt stopped it."""
        self.ensure_worker()
        self.beat()
        if self.worker.loaded != mini_batch.key:
            outcome = self.worker.load(mini_batch.key, mini_batch.to_dict(), self.spec.run_invocation_timeout)
            if not outcome.ok:
                return outcome
        kind = get_kind(mini_batch.kind)
        context = MiniBatchContext(minibatch_index=mini_batch.index, global_row_index_lower_bound=first_item,
                                   partition_key_value=kind.partition_key_value(mini_batch),
                                   dataset=kind.dataset(mini_batch, list(items)))
        self.prefetch()
        outcome = self.worker.call(tuple(items), context, self.spec.run_invocation_timeout,
                                   interrupt=self.interrupt, loaded=mini_batch.key)
        self.note_modules()  # modules imported inside run()
        if outcome.interrupted:
            raise StopEarly
        return outcome

    def load(self, mini_batch: MiniBatch) -> tuple[int | None, Part, tuple]:
        """Have the worker materialise the mini-batch's input (its kind: file paths, a table's
        rows), with up to run_max_try tries for a worker that dies or times out (a read error is
        final: the same bytes fail the same way). Returns ``(item count, Part, unread)``: item
        count None when it cannot be read (the Part then holds one failure for the whole
        mini-batch, named by its kind: file and lines); ``unread``: positions of items that
        could not be read (failed in the Part already)."""
        self._alone_failures, self._any_success = 0, False
        tries, cpu_s, outcome = 0, 0.0, None
        what = get_kind(mini_batch.kind).describe(mini_batch)
        for attempt in range(1, self.spec.run_max_try + 1):
            self.ensure_worker()
            self.beat()
            tries += 1
            outcome = self.worker.load(mini_batch.key, mini_batch.to_dict(), self.spec.run_invocation_timeout)
            cpu_s += outcome.cpu_s
            if outcome.ok:
                failed = [self.failure(position, mini_batch, error, "", tries)
                          for position, error in outcome.failed_items]
                for item in failed:
                    log.warning("mini-batch %d: %s", mini_batch.index, item.error)
                return outcome.length, Part([], 0, failed, 0, cpu_s), tuple(p for p, _ in outcome.failed_items)
            self._record_error(mini_batch, mini_batch.count, what, attempt, outcome)
            if not outcome.restart:
                break
        failure = FailedItem(what, mini_batch.index, outcome.error, outcome.traceback, tries, shard=self.owner)
        return None, Part([], 0, [failure], tries, cpu_s), ()

    # ------------------------------------------------------------------- retries and bisection
    def run_items(self, mini_batch: MiniBatch, items: tuple, first_item: int, whole: bool = True) -> Part:
        """The Part of ``items`` (positions of items in the mini-batch's materialised input) with
        retries and bisection. The whole mini-batch and single items get ``run_max_try`` tries;
        the halves in between one each (the whole already failed every try). When the first
        GIVE_UP_AFTER items tried alone all fail and nothing in the mini-batch has succeeded yet, the
        failure is likely the script's, not the items': every part still gets its one try, but a
        failing part is no longer split, its items fail together with its error (no thousands of
        calls for one bug). A success anywhere resumes normal bisection."""
        part = Part()
        outcome = None
        allowed = self.spec.run_max_try if whole or len(items) == 1 else 1
        for attempt in range(1, allowed + 1):
            part.tries += 1
            outcome = self.call(items, mini_batch, first_item)
            part.cpu_s += outcome.cpu_s
            if outcome.ok:
                return self._succeeded(part, outcome, mini_batch, len(items))
            self._record_error(mini_batch, len(items), get_kind(mini_batch.kind).describe_item(mini_batch, items[0]),
                               attempt, outcome)
        if len(items) == 1:
            self._alone_failures += 1
            if not self._any_success and self._alone_failures == self.GIVE_UP_AFTER:
                log.warning("mini-batch %d: the first %d items failed alone and none succeeded; failing parts "
                            "are no longer split down to single items", mini_batch.index, self._alone_failures)
            part.failures.append(self.failure(items[0], mini_batch, outcome.error, outcome.traceback, part.tries))
            return part
        if not self._any_success and self._alone_failures >= self.GIVE_UP_AFTER:
            note = (f"{outcome.error} (raised for these {len(items)} items together; not split further: the "
                    f"first {self._alone_failures} items of mini-batch {mini_batch.index} tried alone all failed "
                    "and nothing in it has succeeded)")
            part.failures.extend(self.failure(item, mini_batch, note, outcome.traceback, part.tries) for item in items)
            return part
        half = len(items) // 2
        log.info("mini-batch %d: bisecting %d items to isolate the failing ones", mini_batch.index, len(items))
        part.extend(self.run_items(mini_batch, items[:half], first_item, whole=False))
        return part.extend(self.run_items(mini_batch, items[half:], first_item + half, whole=False))

    def _succeeded(self, part: Part, outcome: Outcome, mini_batch: MiniBatch, count: int) -> Part:
        """``part`` completed by the successful ``outcome`` of a call of ``count`` items: a short
        result counts its deficit as failed items (ResultCountError), a long one is kept whole."""
        succeeded = min(outcome.length, count)
        if outcome.length < count:
            deficit = count - outcome.length
            message = (f"ResultCountError: run() returned {outcome.length} result(s) for "
                       f"{count} item(s); {deficit} item(s) counted as failed")
            log.warning("mini-batch %d: %s", mini_batch.index, message)
            part.failures.extend([self.failure(None, mini_batch, message, "", part.tries)] * deficit)
        elif outcome.length > count:
            log.warning("mini-batch %d: run() returned %d results for %d items; all kept",
                        mini_batch.index, outcome.length, count)
        self._alone_failures = 0
        self._any_success = self._any_success or succeeded > 0
        part.lines.extend(outcome.lines)
        part.succeeded += succeeded
        if outcome.header is not None:
            part.headers.append(outcome.header)
        if outcome.ipc is not None:
            part.ipcs.append(outcome.ipc)
        return part

    # ---------------------------------------------------------------------------- bookkeeping
    def _record_error(self, mini_batch: MiniBatch, count: int, first: str, attempt: int, outcome: Outcome) -> None:
        """Log a failed try of ``count`` item(s) starting with the one named ``first``."""
        log.warning("mini-batch %d (%d item(s), try %d/%d) failed: %s", mini_batch.index, count,
                    attempt, self.spec.run_max_try, outcome.error)
        with open(self.error_log, "a", encoding="utf-8", errors="backslashreplace") as handle:
            handle.write(f"--- mini-batch {mini_batch.index}, {count} item(s) starting at {first!r}, "
                         f"try {attempt}/{self.spec.run_max_try}: {outcome.error}\n{outcome.traceback}\n")

    def failure(self, position: int | None, mini_batch: MiniBatch, error: str, traceback: str,
                tries: int) -> FailedItem:
        """The FailedItem of the item at ``position`` (None: unknown, run() returned too few)."""
        item = None if position is None else get_kind(mini_batch.kind).describe_item(mini_batch, position)
        return FailedItem(item, mini_batch.index, error, traceback, tries, shard=self.owner)
