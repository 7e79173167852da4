"""Mini-batches into shards: the input kind (``kinds``) cuts a listing into mini-batches,
``assign_shards`` deals them to shards, ``build_manifests`` makes each shard's manifest.

``assign_shards`` is pure (no I/O); so is the file kind's cut. The tabular kind reads the files
to find record boundaries. Writing the manifests is the partition job's (``partition.job``).
"""

from __future__ import annotations

from snakebatch.kinds import get_kind
from snakebatch.partition.manifest import MiniBatch, ShardManifest
from snakebatch.settings.config import PartitionSpec


def make_mini_batches(listing, spec: PartitionSpec, log=print) -> list[MiniBatch]:
    """The mini-batches of ``listing`` (Items of the dataset, in input order) as the input kind
    of ``spec`` cuts them (``kinds``: files in runs of ``mini_batch_size``; tables by bytes or
    partition keys). Raises ValueError for a ``mini_batch_size`` < 1, DatasetError naming a file
    that cannot be cut."""
    return get_kind(spec.input_type).mini_batches(listing, spec, log)


def assign_shards(mini_batches: list[MiniBatch], shard_count: int) -> list[list[MiniBatch]]:
    """Split mini-batches into ``shard_count`` contiguous runs whose lengths differ by at most one
    (earlier shards get the extra ones). Shards beyond the mini-batch count are empty. Contiguity
    keeps input order: concatenating the shards in order gives the mini-batches in order."""
    if shard_count < 1:
        raise ValueError(f"shard_count must be >= 1, got {shard_count}")
    base, extra = divmod(len(mini_batches), shard_count)
    shards, start = [], 0
    for shard in range(shard_count):
        size = base + (1 if shard < extra else 0)
        shards.append(mini_batches[start:start + size])
        start += size
    return shards


def build_manifests(spec: PartitionSpec, listing) -> list[ShardManifest]:
    """The shard manifests of ``listing`` (Items, in input order) under ``spec`` (pure for file
    input; tabular input reads the files to find record boundaries)."""
    mini_batches = make_mini_batches(listing, spec)
    total = sum(mb.count for mb in mini_batches)
    return [
        ShardManifest(run_name=spec.run_name, shard=shard, shard_count=spec.shard_count,
                      total_mini_batches=len(mini_batches), total_items=total,
                      mini_batches=tuple(batches))
        for shard, batches in enumerate(assign_shards(mini_batches, spec.shard_count))
    ]
