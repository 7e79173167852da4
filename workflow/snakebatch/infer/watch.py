"""The watch policy of a shard job: its progress record (``monitor.progress.ShardProgress``) for
the other shards, the live view and the status command, and the early stop once the failures of
every shard of this invocation exceed an error threshold.

Reads of the other shards' records go through one ``Peers`` per job: at most one read of the
progress folder per decision interval (``every_s``), shared by the early stop and by work
stealing (``balance``), so reads do not grow with failures x shards.
"""

from __future__ import annotations

import collections
import logging
import os
import socket
import time
from typing import Callable

from snakebatch.gather.thresholds import RunningTally, Tally, threshold_breaches, thresholds_set
from snakebatch.infer.results import MiniBatchResult
from snakebatch.infer.workers import InFlight
from snakebatch.monitor import progress
from snakebatch.partition.manifest import MiniBatch, ShardManifest
from snakebatch.settings.config import RunnerSpec

log = logging.getLogger("snakebatch.infer.job")


class Peers:
    """The progress records of invocation ``invocation`` in ``run_dir``, read at most once every
    ``every_s`` seconds (``records``) unless a caller asks for a fresh read."""

    def __init__(self, run_dir: str, invocation: str, every_s: float) -> None:
        self.run_dir = run_dir
        self.invocation = invocation
        self.every_s = every_s
        self.reads = 0  # how many times the folder was read (tests, benchmarks)
        self._records: list[progress.ShardProgress] | None = None
        self._read_at = 0.0

    def records(self, fresh: bool = False) -> list[progress.ShardProgress]:
        """The records (the last read when it is younger than ``every_s`` and not ``fresh``)."""
        now = time.monotonic()
        if fresh or self._records is None or now - self._read_at >= self.every_s:
            self._records = progress.invocation_progress(self.run_dir, self.invocation)
            self._read_at = now
            self.reads += 1
        return self._records

    def age_s(self) -> float:
        """Seconds since the last read (infinite before the first)."""
        return float("inf") if self._records is None else time.monotonic() - self._read_at


def error_message(error: str, limit: int = 200) -> str:
    """The message a progress record counts an error under: its first line, at most ``limit``
    characters (``"ValueError: bad pixel"``)."""
    first = error.split("\n", 1)[0]
    return first if len(first) <= limit else first[:limit - 3] + "..."


class Watch:
    """Progress and early stop of one shard job of ``manifest`` (see the module doc).
    ``running`` gives the worker's in-flight run() call (or None); ``peers`` the other shards'
    records (None without a run folder: nothing is published, the run never stops early).
    ``publish_every_s``: the longest a running shard's published record lags its tally;
    ``stopped_early`` holds why the run stopped early, once it did."""

    def __init__(self, spec: RunnerSpec, manifest: ShardManifest, peers: Peers | None,
                 running: Callable[[], InFlight | None], publish_every_s: float) -> None:
        self.spec = spec
        self.manifest = manifest
        self.peers = peers
        self.running = running
        self.publish_every_s = publish_every_s
        self.stopped_early: str | None = None
        self.tally = RunningTally()  # this shard job's counts, kept as results arrive
        self.error_counts: collections.Counter = collections.Counter()  # error message -> failed items
        self.shard_items = sum(mb.count for mb in manifest.mini_batches)
        self.done_items = self.stolen_mini_batches = self.stolen_items = self.adopted = 0
        self.start_s = 0.0  # seconds spent starting workers, set by the loop: left out of the rate
        self._start = time.monotonic()
        self._started_at, self._progress_at, self._published_at = time.time(), 0.0, 0.0
        self._last_check = 0.0
        self._mine: progress.ShardProgress | None = None

    # ------------------------------------------------------------------------------- counting
    def count(self, result: MiniBatchResult, mini_batch: MiniBatch, owner: int | None) -> None:
        """Add a result this shard job computed or reused (for itself, or for shard ``owner``)
        to its tally and progress record, log it, and check for an early stop."""
        self.tally.add(result)
        self._progress_at = time.time()
        for failure in result.failures:
            self.error_counts[error_message(failure.error)] += 1
        self.done_items += result.item_count
        if owner is not None:
            self.stolen_mini_batches += 1
            self.stolen_items += result.item_count
        elapsed = time.monotonic() - self._start - self.start_s  # worker starts (init()) excluded
        rate = self.done_items / elapsed if elapsed > 0 else 0.0
        own_left = self.shard_items - (self.done_items - self.stolen_items)
        eta = max(0, own_left) / rate if rate > 0 else 0.0
        where = f" of shard {owner} (taken from a busy shard)" if owner is not None else ""
        log.info("mini-batch %d%s: %d item(s), %d succeeded, %d failed, %s, wall %.3f s, cpu %.3f s "
                 "(%d/%d in shard, %d/%d items, %.1f items/s, ETA %.0f s)",
                 mini_batch.index, where, result.item_count, result.succeeded, result.failed,
                 "reused" if result.reused else f"{result.tries} tr{'y' if result.tries == 1 else 'ies'}",
                 0.0 if result.reused else result.duration_s, 0.0 if result.reused else result.cpu_s,
                 self.tally.mini_batches, len(self.manifest.mini_batches), self.done_items, self.shard_items,
                 rate, eta)
        self.check(new_failure=result.failed > 0)

    # ----------------------------------------------------------------------------- publishing
    def publish(self, state: str = "running", force: bool = False) -> progress.ShardProgress | None:
        """This shard's progress record (see progress.ShardProgress); written (one small file
        renamed into place, not fsynced) when the shard starts, when it ends, with ``force`` (a
        new failure) and otherwise at most every ``publish_every_s`` seconds after a mini-batch
        (a rename per mini-batch would cost fast mini-batches measurably:
        scripts/benchmark_live_view.py) or while run() works (``poll``: the record then names
        the mini-batch in run()). None without a run folder."""
        if self.peers is None:
            return None
        tally, now, manifest = self.tally, time.time(), self.manifest
        in_flight = self.running() if state == "running" else None
        mine = progress.ShardProgress(
            invocation=self.peers.invocation, shard=manifest.shard, done_mini_batches=tally.mini_batches,
            shard_mini_batches=len(manifest.mini_batches), failed_items=tally.failed,
            failed_mini_batches=tally.failed_mini_batches, first_failure=tally.first_failure_text,
            done_items=tally.items, shard_items=self.shard_items, succeeded_items=tally.succeeded,
            reused_mini_batches=tally.reused_mini_batches, total_items=manifest.total_items,
            total_mini_batches=manifest.total_mini_batches, state=state, started_at=self._started_at,
            progress_at=self._progress_at or self._started_at, updated_at=now, host=socket.gethostname(),
            pid=os.getpid(), run_invocation_timeout=self.spec.run_invocation_timeout,
            top_errors=tuple(self.error_counts.most_common(progress.TOP_ERRORS)),
            reused_items=tally.reused_items, running_mini_batch=in_flight.mini_batch if in_flight else -1,
            running_items=in_flight.items if in_flight else 0, running_since=in_flight.since if in_flight else 0.0,
            stolen_mini_batches=self.stolen_mini_batches, stolen_items=self.stolen_items,
            adopted_mini_batches=self.adopted)
        self._mine = mine
        if state == "running" and not force and now - self._published_at < self.publish_every_s:
            return mine
        self._published_at = now
        try:
            progress.write_progress(self.peers.run_dir, mine)
        except OSError as exc:  # advisory: a full disk must not fail the shard here
            log.warning("shard %d's progress record not written: %s", manifest.shard, exc)
        return mine

    # ----------------------------------------------------------------------------- early stop
    def check(self, new_failure: bool) -> str | None:
        """Publish this shard's progress (``publish``); set and return ``stopped_early`` when
        the failures of every shard of this invocation already exceed a threshold (the final
        count can only be higher). This shard's own counts are always current; the other shards'
        records are those ``peers`` read, at most one read per ``peers.every_s``."""
        mine = self.publish(force=new_failure)
        if mine is None:
            return None
        if not new_failure and time.monotonic() - self._last_check < self.peers.every_s:
            return self.stopped_early
        self._last_check = time.monotonic()
        self.stopped_early = self.breach(mine)
        return self.stopped_early

    def poll(self) -> bool:
        """Asked every second while run() works: publish the record (at most once a second,
        naming the mini-batch in run()), and say whether the failures of all shards have exceeded
        a threshold meanwhile (other shards read at most every ``peers.every_s``)."""
        if self.peers is None:
            return False
        self.publish()
        if self._mine is None or time.monotonic() - self._last_check < self.peers.every_s:
            return False
        self._last_check = time.monotonic()
        self.stopped_early = self.breach(self._mine)
        return self.stopped_early is not None

    def breach(self, mine: progress.ShardProgress) -> str | None:
        """Why to stop, from this shard's record ``mine`` and the other shards' published ones;
        None while no threshold is exceeded (or none is set)."""
        if not thresholds_set(self.spec) or self.peers is None:
            return None
        records = {r.shard: r for r in self.peers.records()}
        records[mine.shard] = mine
        tally = Tally(items=self.manifest.total_items, succeeded=0,
                      failed=sum(r.failed_items for r in records.values()),
                      mini_batches=self.manifest.total_mini_batches,
                      failed_mini_batches=sum(r.failed_mini_batches for r in records.values()),
                      reused_mini_batches=0)
        breaches = threshold_breaches(tally, self.spec)
        if not breaches:
            return None
        causes = [f"  shard {r.shard}: {r.first_failure}" for r in sorted(records.values(), key=lambda r: r.shard)
                  if r.first_failure]
        return ("stopped early: " + "; ".join(breaches) + " in this run so far (all shards).\n"
                "First failures:\n" + "\n".join(causes[:5]))

