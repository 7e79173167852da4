"""The balance policy of a shard job (``balance_shards``): claim each mini-batch before it starts
(``claims.ClaimBoard``), take in the hand-off of one another shard job computed, and when this
shard's own mini-batches are all claimed, pick unstarted ones from the end of the busy shard with
the most left (see docs/architecture.md, Balance across shards). The shard loop (``shard``)
computes what this policy hands it; this module decides only who computes what.
"""

from __future__ import annotations

import logging
import time

from snakebatch.errors import SnakebatchError
from snakebatch.infer.claims import CLAIM_MARGIN_S, Claim, ClaimBoard, remove_other_invocations
from snakebatch.infer.results import MiniBatchResult
from snakebatch.infer.watch import Peers
from snakebatch.partition.manifest import MiniBatch, ShardManifest
from snakebatch.storage.layout import RunLayout

log = logging.getLogger("snakebatch.infer.job")


class Balance:
    """Claims, hand-offs and stealing of shard ``shard``'s job in run folder ``run_dir``.
    ``holding`` is the claim of the mini-batch being computed (None: none, or it was not
    claimed here). ``peers`` gives the invocation's
    progress records (which shard jobs still run)."""

    BEAT_EVERY_S = 5.0  # how often a claim's heartbeat is refreshed while run() works on its mini-batch

    def __init__(self, run_dir: str, invocation: str, shard: int, run_invocation_timeout: float,
                 peers: Peers) -> None:
        remove_other_invocations(run_dir, invocation)
        self.run_dir = run_dir
        self.shard = shard
        self.peers = peers
        self.claims = ClaimBoard(run_dir, invocation, shard, run_invocation_timeout + CLAIM_MARGIN_S)
        self.holding: Claim | None = None
        self._beat_at = 0.0
        self._victims: dict[int, tuple] = {}  # shard -> its manifest's mini-batches (stealing)
        self._tails: dict[int, int] = {}  # shard -> position of its last mini-batch maybe unclaimed

    @property
    def stale_after_s(self) -> float:
        """Seconds without a heartbeat after which a claim is void."""
        return self.claims.stale_after_s

    # ------------------------------------------------------------------------------ heartbeat
    def beat(self, force: bool = False) -> None:
        """Refresh the heartbeat of the claim held when the last one is BEAT_EVERY_S seconds old:
        before each try (after a worker start) and while run() works, so a live holder's claim is
        never older than BEAT_EVERY_S + one call."""
        if self.holding is None:
            return
        now = time.monotonic()
        if force or now - self._beat_at >= self.BEAT_EVERY_S:
            self._beat_at = now
            self.claims.heartbeat(self.holding)

    def release(self) -> Claim | None:
        """Stop holding the current claim; returns it."""
        claim, self.holding = self.holding, None
        return claim

    # ---------------------------------------------------------------------- this shard's own
    def claim_or_adopt(self, mini_batch: MiniBatch) -> MiniBatchResult | None:
        """Claim this shard's ``mini_batch`` (``holding`` then holds the claim), or return the
        result another shard job handed off for it. Neither (None, ``holding`` None): a live
        holder has it. A claim another job made is judged (and a void one taken over) only
        after looking for its hand-off, so a finished job's claim is not taken over needlessly."""
        self.holding = self.claims.claim(mini_batch.index, take_over=False)
        if self.holding is None:
            adopted = self._adopt(mini_batch)
            if adopted is not None:
                return adopted
            self.holding = self.claims.claim(mini_batch.index)
            if self.holding is not None and self.claims.took_over is not None:
                adopted = self._adopt(mini_batch)  # handed off just before its holder ended
                if adopted is not None:
                    self.holding = None
                    return adopted
                log.warning("mini-batch %d: claimed again, computed here: %s", mini_batch.index,
                            self.claims.took_over)
        self._beat_at = time.monotonic()  # a new claim file's mtime is its first heartbeat
        return None

    def _adopt(self, mini_batch: MiniBatch) -> MiniBatchResult | None:
        """The result another shard job handed off for this shard's ``mini_batch``, or None.
        Not counted again: that job's progress record counts it."""
        text = self.claims.handed_off(mini_batch.index)
        if text is None:
            return None
        try:
            result = MiniBatchResult.from_json(text)
        except (ValueError, KeyError, TypeError) as exc:  # torn by a machine crash
            log.warning("mini-batch %d: its hand-off cannot be read (%s); its claim is judged as usual",
                        mini_batch.index, exc)
            return None
        if (result.index, result.key) != (mini_batch.index, mini_batch.key):
            return None
        log.info("mini-batch %d: computed by another shard job (%s), taken into this shard's results",
                 mini_batch.index, result.agent_name)
        return result

    def hand_off(self, claim: Claim, result: MiniBatchResult, owner: int) -> bool:
        """Publish ``result``, computed under ``claim`` for shard ``owner``; False (and a warning)
        when the claim was taken over while it ran: the result is dropped, the owner computes it."""
        if self.claims.hand_off(claim, result.to_json()):
            return True
        log.warning("mini-batch %d of shard %d: its claim was taken over while it ran (no sign of life for "
                    "over %g s); the result is dropped, shard %d computes it", result.index, owner,
                    self.claims.stale_after_s, owner)
        return False

    # -------------------------------------------------------------------------------- stealing
    def next_steal(self) -> tuple[int, MiniBatch] | None:
        """Claim the last unclaimed mini-batch of the running shard job (this invocation's
        progress records) with the most unclaimed ones: ``(shard, mini_batch)`` with ``holding``
        its claim, or None when no running shard has any. The records are those ``peers`` read
        last (at most one read per interval), read again before saying None."""
        reads, fresh = self.peers.reads, False
        while True:
            best = self._busiest(self.peers.records(fresh=fresh))
            fresh = False
            if best is None:
                if self.peers.reads > reads:  # read by this call: no running shard has any
                    return None
                fresh = True
                continue
            shard, tail = best
            mini_batch = self.victim(shard)[tail]
            self._tails[shard] = tail - 1
            self.holding = self.claims.claim(mini_batch.index, take_over=False)
            if self.holding is not None:
                self._beat_at = time.monotonic()
                return shard, mini_batch

    def _busiest(self, records) -> tuple[int, int] | None:
        """``(shard, position of its last unclaimed mini-batch)`` of the running shard with the
        most unclaimed mini-batches, None when none has any."""
        best = None
        for shard in [r.shard for r in records if r.state == "running" and r.shard != self.shard]:
            count, tail = self._unclaimed(shard)
            if count > 0 and (best is None or count > best[0]):
                best = (count, shard, tail)
        return None if best is None else (best[1], best[2])

    def victim(self, shard: int) -> tuple:
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
        batches = self.victim(shard)
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
