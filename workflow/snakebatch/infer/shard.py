"""The shard loop: run every mini-batch of one shard manifest through one worker, in order, and
pass the results on in manifest order (``InOrder``).

For each mini-batch the loop asks its policies, top-down: ``reuse`` (the store's result, or the
lines the item index holds for some of its items), ``attempts`` (read its input, run the rest
with retries and bisection, through the ``workers.Worker``), ``watch`` (count it, publish the
progress record, stop early past an error threshold) and, with ``balance_shards``, ``balance``
(claim it first; take a hand-off another shard job computed; when this shard's own are done,
compute unstarted ones of busy shards and hand them off). The worker process mechanism is
``supervisor.WorkerProcess``; the command line is ``job``.
"""

from __future__ import annotations

import dataclasses
import logging
import time

from snakebatch.errors import EntryScriptError
from snakebatch.infer.attempts import Attempts, Part, StopEarly, segments
from snakebatch.infer.balance import Balance
from snakebatch.infer.results import MiniBatchResult
from snakebatch.infer.reuse import Reuse
from snakebatch.infer.store import MiniBatchStore
from snakebatch.infer.watch import Peers, Watch
from snakebatch.infer.workers import Worker
from snakebatch.kinds import get_kind
from snakebatch.monitor import progress
from snakebatch.partition.manifest import MiniBatch, ShardManifest
from snakebatch.settings.config import RunnerSpec

log = logging.getLogger("snakebatch.infer.job")


class InOrder:
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


class ShardRunner:
    """Runs the mini-batches of one manifest (see the module doc) with ``worker`` (a
    ``workers.Worker``), ``store`` (None: nothing reused or saved) and the worker error log
    ``error_log``. With ``run_dir``, the shard publishes its progress and stops early once the
    failures of all shards of this invocation exceed a threshold (checked after each mini-batch,
    and every CHECK_EVERY_S seconds while run() works: an interrupted mini-batch is killed and
    left for the next run): ``stopped_early`` then holds the reason, and gather reports the
    failure. Finished mini-batches stay in the store, so the next run resumes. ``on_result`` is
    called with each result in manifest order (its lines are then dropped from ``results``)."""

    CHECK_EVERY_S = 2.0  # the longest the other shards' progress records are reused before a new read
    PUBLISH_EVERY_S = 1.0  # the longest a running shard's published record lags its tally
    AWAIT_POLL_S = 0.5  # the longest pause between looks at a hand-off this shard waits for

    def __init__(self, spec: RunnerSpec, worker: Worker, store: MiniBatchStore | None, error_log: str,
                 run_dir: str | None = None) -> None:
        self.spec = spec
        self.worker = worker
        self.run_dir = run_dir
        self.invocation = progress.invocation_id()
        self.on_result = None
        self.results: list[MiniBatchResult] = []
        self.shard = 0
        self.reuse = Reuse(spec, store)
        self.attempts = Attempts(spec, worker, error_log, beat=self._beat, prefetch=self._prefetch,
                                 note_modules=self._note_modules)
        self.watch: Watch | None = None
        self.balance: Balance | None = None
        self._manifest: ShardManifest | None = None
        self._next: MiniBatch | None = None  # the mini-batch after the one running: prefetched
        self._stopped: str | None = None

    @property
    def stopped_early(self) -> str | None:
        """Why the run stopped early (None: it did not)."""
        return self.watch.stopped_early if self.watch is not None else self._stopped

    @stopped_early.setter
    def stopped_early(self, reason: str | None) -> None:
        if self.watch is not None:
            self.watch.stopped_early = reason
        self._stopped = reason

    @property
    def start_s(self) -> float:
        """Seconds spent starting workers (import + init()): not a mini-batch's wall time."""
        return self.attempts.start_s

    # ---------------------------------------------------------------------------------- the loop
    def run(self, manifest: ShardManifest) -> list[MiniBatchResult]:
        """Run the mini-batches of ``manifest`` in order, all of them unless it stops early (see
        the class doc); stops the worker at the end. With ``balance_shards`` (and ``run_dir``)
        each mini-batch is claimed first; one another shard job claimed is taken from its
        hand-off instead; when this shard's own are done, unstarted mini-batches of busy shards
        are computed and handed off (``_steal``), then the hand-offs of this shard's are waited
        for (``_await``). The result file gets every result of this shard's manifest in order
        either way. Raises EntryScriptError (the worker cannot start) and OSError (the store's
        last commit failed: the record then says ``failed`` and the worker is killed)."""
        self._begin(manifest)
        in_order = InOrder([mb.index for mb in manifest.mini_batches], self._emit)
        finished, state = False, "interrupted"  # what the last record says when this raises
        try:
            self.watch.check(new_failure=True)
            pending = self._own(manifest, in_order)
            if self.balance is not None and not self.stopped_early:
                self._next = None
                self._steal()
                for mini_batch in pending:
                    if self.stopped_early or not self._await(mini_batch, in_order):
                        break
            if self.balance is not None and self.stopped_early:
                self._settle(manifest, in_order)
            if self.stopped_early and len(self.results) == len(manifest.mini_batches):
                self.stopped_early = None  # the threshold broke with this shard's last mini-batch: it did all
            if self.stopped_early:
                log.warning("%s", self.stopped_early)
            finished, state = True, "stopped" if self.stopped_early else "done"
        except EntryScriptError:
            state = "failed"
            raise
        finally:
            self._end(state, finished)
        return self.results

    def _begin(self, manifest: ShardManifest) -> None:
        """Set the loop and its policies up for ``manifest``."""
        self.results = []  # also what a run that raised had finished
        self.shard = self.attempts.owner = manifest.shard
        self._manifest = manifest
        self.reuse.begin(manifest.shard, manifest.mini_batches)
        peers = Peers(self.run_dir, self.invocation, self.CHECK_EVERY_S) if self.run_dir is not None else None
        self.watch = Watch(self.spec, manifest, peers, lambda: getattr(self.worker, "running", None),
                           self.PUBLISH_EVERY_S)
        self.watch.stopped_early = self._stopped = None
        self.balance = None
        if peers is not None and self.spec.balance_shards:
            self.balance = Balance(self.run_dir, self.invocation, manifest.shard, self.spec.run_invocation_timeout,
                                   peers)

    def _own(self, manifest: ShardManifest, in_order: InOrder) -> list[MiniBatch]:
        """Run this shard's mini-batches in order (until an early stop); returns those another
        shard job holds, whose hand-offs come later."""
        pending: list[MiniBatch] = []
        batches = manifest.mini_batches
        for number, mini_batch in enumerate(batches, 1):
            self._next = batches[number] if number < len(batches) else None
            if self.stopped_early:
                break
            if self.balance is not None:
                adopted = self.balance.claim_or_adopt(mini_batch)
                if adopted is not None:  # another shard job computed it (an earlier attempt of this one died)
                    self._adopt(adopted, in_order)
                    continue
                if self.balance.holding is None:  # another shard job took it: its hand-off comes later
                    pending.append(mini_batch)
                    continue
            if not self._compute(mini_batch, in_order):
                break
        return pending

    def _end(self, state: str, finished: bool) -> None:
        """Commit the store (this shard's last group reaches the disk), then publish the final
        record (``state``: "done" only once the results are durable) and stop the worker. A
        failing commit makes the record ``failed``, kills the worker and raises."""
        if self.balance is not None:
            self.balance.holding = None
        try:
            self.reuse.close()
        except BaseException:
            state, finished = "failed", False
            raise
        finally:
            self.watch.publish(state)
            self.attempts.stop(finished)

    def _emit(self, result: MiniBatchResult) -> None:
        """Take ``result`` (the next of this shard's manifest, in order) into the shard's results."""
        if self.on_result is not None:  # written out now; keep only the counts in memory
            self.on_result(result)
            result = dataclasses.replace(result, lines=())
        self.results.append(result)

    def _adopt(self, result: MiniBatchResult, in_order: InOrder) -> None:
        """Take the hand-off ``result`` another shard job computed into this shard's results (not
        counted again: that job's progress record counts it)."""
        self.watch.adopted += 1
        in_order.put(result)

    # ----------------------------------------------------------------------- one mini-batch
    def _compute(self, mini_batch: MiniBatch, in_order: InOrder | None = None, owner: int | None = None) -> bool:
        """Run ``mini_batch`` under the claim ``balance.holding`` (if any) and count it; with
        ``in_order`` its result goes to this shard's results, else (``owner``: a busy shard's
        mini-batch) it is handed off. False when the run stopped early meanwhile."""
        self.attempts.owner = owner if owner is not None else self.shard  # failures name the mini-batch's shard
        holding = self.balance is not None and self.balance.holding is not None
        self.attempts.interrupt = self._poll if self.watch.peers is not None or holding else None
        claim = None
        try:
            result = self.run_mini_batch(mini_batch)
        except StopEarly:  # another shard's failures went over a threshold meanwhile
            log.warning("mini-batch %d interrupted: the run stopped early", mini_batch.index)
            return False
        finally:
            claim = self.balance.release() if self.balance is not None else None
            self.attempts.owner = self.shard
        if owner is not None and not self.balance.hand_off(claim, result, owner):
            return True
        self.watch.start_s = self.attempts.start_s
        self.watch.count(result, mini_batch, owner)
        if in_order is not None:
            in_order.put(result)
        return True

    def run_mini_batch(self, mini_batch: MiniBatch) -> MiniBatchResult:
        """The result of one mini-batch: reused from the store or computed (and stored)."""
        cached = self.reuse.stored(mini_batch)
        if cached is not None:  # same files, maybe at another position of the input now
            return dataclasses.replace(cached, index=mini_batch.index, first_item=mini_batch.first_item,
                                       reused=True)
        start, started_at, start_s = time.monotonic(), time.time(), self.attempts.start_s
        count, part, unread = self.attempts.load(mini_batch)
        identities, known = None, {}
        if count is None:  # unreadable: every item counts as failed
            item_count = get_kind(mini_batch.kind).item_count(mini_batch)
        else:
            item_count = count
            identities = self.reuse.identities(mini_batch, count, self.worker.takes_context)
            if identities is not None:
                known = self.reuse.known(identities, set(unread))
            if known:
                log.info("mini-batch %d: %d of %d item(s) reused from earlier runs' lines", mini_batch.index,
                         len(known), count)
            self._run_segments(mini_batch, count, part, set(unread), known)
        result = MiniBatchResult(
            index=mini_batch.index, key=mini_batch.key, first_item=mini_batch.first_item,
            item_count=item_count, succeeded=part.succeeded, lines=tuple(part.lines),
            failures=tuple(part.failures), tries=part.tries,
            duration_s=time.monotonic() - start - (self.attempts.start_s - start_s),
            agent_name=getattr(self.worker, "name", "worker"), started_at=started_at,
            positional=self.worker.takes_context, cpu_s=part.cpu_s,
            header=part.headers[0] if part.headers else None, table_file=self.reuse.save_table(mini_batch, part.ipcs),
        )
        self.reuse.save(result, mini_batch, identities, known)
        return result

    def _run_segments(self, mini_batch: MiniBatch, count: int, part: Part, unread: set, known: dict) -> None:
        """Run the items of ``mini_batch`` neither ``unread`` (failed already) nor ``known`` (their
        lines reused), segment by segment, into ``part``; the reused and computed lines end up in
        item order. Linear in the lines: each segment's lines are copied once."""
        blocks = [(position, [line]) for position, line in known.items()]
        for segment in segments(count, unread | set(known)):
            computed = self.attempts.run_items(mini_batch, segment, mini_batch.first_item + segment[0])
            blocks.append((segment[0], computed.lines))
            part.extend(computed)
        if known:  # the reused lines and the computed parts' lines, in item order
            part.lines = [line for _, lines in sorted(blocks, key=lambda block: block[0]) for line in lines]
            part.succeeded += len(known)

    # ------------------------------------------------------------------------ worker hooks
    def _beat(self) -> None:
        if self.balance is not None:
            self.balance.beat()

    def _prefetch(self) -> None:
        self.reuse.prefetch(self.worker, self._next)

    def _note_modules(self) -> None:
        self.reuse.note_modules(self.worker.modules)

    def _poll(self) -> bool:
        """Asked every second while run() works: refresh the claim's heartbeat; True when the run
        stopped early meanwhile (``watch.poll``)."""
        self._beat()
        return self.watch.poll()

    def _breach(self, mine: progress.ShardProgress) -> str | None:
        """Why to stop, given this shard's record ``mine`` (``Watch.breach`` for ``_manifest``)."""
        peers = Peers(self.run_dir, self.invocation, self.CHECK_EVERY_S) if self.run_dir is not None else None
        return Watch(self.spec, self._manifest, peers, lambda: None, self.PUBLISH_EVERY_S).breach(mine)

    # ---------------------------------------------------------------------- balance_shards
    def _steal(self) -> None:
        """While this invocation's busy shard jobs have unclaimed mini-batches: claim the last of
        the one with the most (``balance.next_steal``), compute it, hand it off."""
        while not self.stopped_early:
            found = self.balance.next_steal()
            if found is None:
                return
            owner, mini_batch = found
            self.reuse.add_shard(owner, self.balance.victim(owner))
            if not self._compute(mini_batch, owner=owner):
                return

    def _await(self, mini_batch: MiniBatch, in_order: InOrder) -> bool:
        """Wait for the hand-off of this shard's ``mini_batch``, which another shard job claimed;
        when that claim becomes void (its holder died, see claims) take it over and compute it
        here. The shard file is never finished without it. False when the run stopped early."""
        delay = 0.01
        while True:
            adopted = self.balance.claim_or_adopt(mini_batch)
            if adopted is not None:
                self._adopt(adopted, in_order)
                return True
            if self.balance.holding is not None:
                return self._compute(mini_batch, in_order)
            if self.watch.check(new_failure=False):
                return False
            time.sleep(delay)
            delay = min(delay * 2, self.AWAIT_POLL_S)

    def _settle(self, manifest: ShardManifest, in_order: InOrder) -> None:
        """The run stopped early: take in every hand-off of this shard's mini-batches that
        another shard job finished (its failures must reach the error report), so that none
        is left only in the claims folder. A mini-batch not yet placed is claimed (nobody
        starts it now) or, while a live holder still has it, waited for until it hands off or
        its claim goes void (a holder that sees the early stop ends at once; at most
        ``stale_after_s``). Then the waiting results are written past the gaps."""
        deadline = time.monotonic() + self.balance.stale_after_s
        for mini_batch in manifest.mini_batches:
            delay = 0.01
            while not in_order.placed(mini_batch.index):
                adopted = self.balance.claim_or_adopt(mini_batch)
                if adopted is not None:
                    self._adopt(adopted, in_order)
                elif self.balance.holding is not None or time.monotonic() > deadline:
                    break  # claimed here (it never ran) or its holder gave no sign: not run
                else:
                    time.sleep(delay)
                    delay = min(delay * 2, self.AWAIT_POLL_S)
            self.balance.holding = None
        in_order.flush()
