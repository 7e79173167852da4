"""The reuse policy of a shard job: results an earlier run finished, looked up in the mini-batch
store (``store.MiniBatchStore``, whole mini-batches) and the item index (``store.ItemIndex``,
the line each file produced: incremental reruns, file input, append_row txt); what this job
computes is saved to both. It also decides the prefetch: the next mini-batch is read ahead
unless the store holds it or it is larger than ``prefetch_bytes``.
"""

from __future__ import annotations

import logging

from snakebatch.formats import get_format
from snakebatch.errors import WorkerDied
from snakebatch.infer.results import MiniBatchResult
from snakebatch.infer.store import ItemIndex, MiniBatchStore
from snakebatch.infer.workers import Worker
from snakebatch.kinds import get_kind
from snakebatch.partition.manifest import MiniBatch
from snakebatch.settings.config import RunnerSpec

log = logging.getLogger("snakebatch.infer.job")


class Reuse:
    """Store and item-index look-ups for one shard job; ``store`` None: nothing is reused or
    saved. ``shard`` (set by the loop) names this job's item-index file."""

    def __init__(self, spec: RunnerSpec, store: MiniBatchStore | None) -> None:
        self.spec = spec
        self.store = store
        self.item_index = ItemIndex(store.root) if store is not None else None
        self._looked_up: tuple[str, MiniBatchResult | None] | None = None  # (key, store.load of it)
        self._prefetched: str | None = None  # key of the mini-batch whose load was sent ahead
        self._wanted: dict[int, list[str]] = {}  # shard -> identities of its mini-batches not stored
        self._shards: dict[int, tuple] = {}  # shard -> its mini-batches (this one's and busy ones')

    def begin(self, shard: int, mini_batches: tuple) -> None:
        """A shard job of ``shard`` with the manifest's ``mini_batches`` starts."""
        if self.item_index is not None:
            self.item_index.shard = shard
        self._wanted, self._shards = {}, {shard: mini_batches}
        self._prefetched = None

    def add_shard(self, shard: int, mini_batches: tuple) -> None:
        """Mini-batches of busy ``shard`` may be computed here (taken from it): their items may be
        looked up too."""
        self._shards.setdefault(shard, mini_batches)

    def stored(self, mini_batch: MiniBatch) -> MiniBatchResult | None:
        """The store's result for ``mini_batch`` (None: compute it), looked up once."""
        if self.store is None or not self.spec.allow_reuse:
            return None
        if self._looked_up is None or self._looked_up[0] != mini_batch.key:
            self._looked_up = (mini_batch.key, self.store.load(mini_batch))
        return self._looked_up[1]

    def prefetch(self, worker: Worker, upcoming: MiniBatch | None) -> None:
        """Ask ``worker`` to materialise ``upcoming`` while run() works on this one (its loader
        thread reads it meanwhile), unless the store already holds its result or it is larger
        than ``prefetch_bytes`` (read when its turn comes, not held on disk meanwhile)."""
        if upcoming is None or self._prefetched == upcoming.key or not hasattr(worker, "send_load"):
            return
        self._prefetched = upcoming.key
        if self.stored(upcoming) is not None:
            return
        size = get_kind(upcoming.kind).prefetch_bytes(upcoming)
        if size > self.spec.prefetch_bytes:
            log.debug("mini-batch %d not prefetched: %d bytes > prefetch_bytes %d", upcoming.index, size,
                      self.spec.prefetch_bytes)
            return
        try:
            worker.send_load(upcoming.key, upcoming.to_dict())
        except WorkerDied as exc:  # the call that follows notices and restarts it
            log.info("mini-batch %d not prefetched: %s", upcoming.index, exc)

    def identities(self, mini_batch: MiniBatch, count: int, takes_context: bool) -> list | None:
        """Per item of ``mini_batch`` its identity for item-level reuse (``store.ItemIndex``), or
        None when the lines of this mini-batch are not reused or indexed item by item: reuse off
        (``allow_reuse``, ``reuse_items``), no store, output other than append_row txt, a kind
        without item identities (tables), run() taking mini_batch_context (``takes_context``),
        or a ``count`` (items read) that differs from the manifest's."""
        spec = self.spec
        if (self.store is None or not spec.allow_reuse or not spec.reuse_items or spec.output_action != "append_row"
                or not get_format(spec.append_row_format).item_reuse or takes_context):
            return None
        identities = get_kind(mini_batch.kind).item_identities(mini_batch)
        return identities if identities is not None and len(identities) == count else None

    def known(self, identities: list, unread) -> dict[int, str]:
        """``{position: line}`` of the items whose line an earlier run indexed (items in
        ``unread``, which could not be read now, left out)."""
        found = self.item_index.lookup(self.store.fingerprint, identities, self._wanted_identities)
        return {position: line for position, line in found.items() if position not in unread}

    def _wanted_identities(self) -> list:
        """The item identities of every mini-batch the store does not hold of this shard and of
        the busy shards it took mini-batches from (asked on the first item-index lookup and when
        a mini-batch of a new busy shard asks, so the index keeps only what this job may ask for).
        Each shard's mini-batches are looked at (one stat each) once per job."""
        out = []
        for shard, mini_batches in self._shards.items():
            if shard not in self._wanted:
                self._wanted[shard] = [i for mb in mini_batches if not self.store.holds(mb)
                                       for i in (get_kind(mb.kind).item_identities(mb) or ()) if i]
            out.extend(self._wanted[shard])
        return out

    def save_table(self, mini_batch: MiniBatch, ipcs: list) -> str | None:
        """Store the result table of ``mini_batch`` (``ipcs``: Arrow IPC tables of its calls,
        append_row_format parquet); its file's name, None when there is none or no store."""
        if not ipcs or self.store is None:
            return None
        return self.store.save_table(mini_batch, ipcs)

    def save(self, result: MiniBatchResult, mini_batch: MiniBatch, identities: list | None, known: dict) -> None:
        """Save ``result`` of ``mini_batch`` to the store and index its lines item by item when
        it is whole (no failure, one line per item, txt, no context): the items in ``known`` are
        indexed already."""
        if self.store is None:
            return
        self.store.save(result, mini_batch)
        if (identities is not None and result.failed == 0 and len(result.lines) == result.item_count
                and result.header is None and not result.positional):
            self.item_index.add(self.store.fingerprint, [None if p in known else i for p, i in enumerate(identities)],
                                result.lines)

    def note_modules(self, modules: list[str]) -> None:
        """The entry script's worker reported the helper ``modules`` it imported (they are part
        of the store's fingerprint)."""
        if self.store is not None and modules:
            self.store.note_modules(modules)

    def close(self) -> None:
        """Commit the store's last group (its results reach the disk) and close the item index.
        Raises OSError when the commit fails."""
        try:
            if self.store is not None:
                self.store.commit()
        finally:
            if self.item_index is not None:
                self.item_index.close()

