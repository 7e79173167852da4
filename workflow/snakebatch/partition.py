"""Partition a dataset listing into mini-batches and mini-batches into shards.

``assign_shards`` is pure (no I/O); the input kind (``kinds``) lists the dataset and cuts it into
mini-batches; ``main`` lists the dataset and
writes one manifest per shard: ``python -m snakebatch.partition --spec JSON --out-dir DIR``.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys

from .config import PartitionSpec
from .errors import SnakebatchError
from .lifecycle import invalidate_result
from .kinds import get_kind
from .kinds.files import listing_fingerprint
from .manifest import MiniBatch, ShardManifest, shard_id
from .storage import write_text_atomic


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


def manifest_path(out_dir: str, shard: int) -> str:
    """Where the manifest of ``shard`` lives under ``out_dir``."""
    return os.path.join(out_dir, f"shard-{shard_id(shard)}.json")


DATASET_RECORD = "dataset.json"
DATASET_STAMP = "dataset.stamp"


def recorded_fingerprint(out_dir: str) -> str | None:
    """The listing fingerprint the last partition saw, None when there is none."""
    try:
        with open(os.path.join(out_dir, DATASET_RECORD), encoding="utf-8") as handle:
            return str(json.load(handle)["fingerprint"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def mark_dataset_changes(out_dir: str, current: str | None) -> str:
    """Keep the dataset stamp, an input of the partition rule, in step with the dataset; return
    its path. The one write snakebatch makes while Snakemake parses the workflow.

    File times alone miss a file rewritten in place inside a folder, or replaced by an older
    copy (``cp -p``, ``rsync -a``). So when the listing's fingerprint ``current`` (None: the
    dataset cannot be listed yet because a rule makes it) differs from the one the last partition
    recorded, the stamp is rewritten: being newer than the manifests, it makes Snakemake re-run
    the partition, with or without its metadata in ``.snakemake/``. A missing stamp is created
    with a time of 0, so it never triggers a rerun by itself."""
    path = os.path.join(out_dir, DATASET_STAMP)
    if current is not None and current != recorded_fingerprint(out_dir):
        write_text_atomic(path, current + "\n")
    elif not os.path.exists(path):
        write_text_atomic(path, "\n")
        os.utime(path, (0, 0))
    return path


def write_manifests(spec: PartitionSpec, out_dir: str) -> list[ShardManifest]:
    """List the dataset, write one manifest per shard atomically, remove stale manifests of an
    earlier, larger shard count, and record the listing's fingerprint (see
    ``mark_dataset_changes``). Raises DatasetError when the dataset is missing or empty."""
    listing = list(get_kind(spec.input_type).list(spec))
    manifests = build_manifests(spec, listing)
    keep = set()
    for manifest in manifests:
        path = manifest_path(out_dir, manifest.shard)
        manifest.write(path)
        keep.add(os.path.abspath(path))
    for stale in glob.glob(os.path.join(out_dir, "shard-*.json")):
        if os.path.abspath(stale) not in keep:
            os.unlink(stale)
    write_text_atomic(os.path.join(out_dir, DATASET_RECORD),
                      json.dumps({"fingerprint": listing_fingerprint(listing)}) + "\n")
    return manifests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m snakebatch.partition", description=__doc__)
    parser.add_argument("--spec", required=True, help="PartitionSpec as JSON")
    parser.add_argument("--out-dir", required=True, help="folder for shard-NNNNN.json manifests")
    args = parser.parse_args(argv)
    spec = PartitionSpec.from_json(args.spec)
    invalidate_result(os.path.dirname(os.path.normpath(args.out_dir)))
    try:
        manifests = write_manifests(spec, args.out_dir)
    except SnakebatchError as exc:
        print(f"snakebatch partition: error: {exc}", file=sys.stderr)
        return 1
    total = manifests[0].total_items
    batches = manifests[0].total_mini_batches
    kind = get_kind(spec.input_type)
    print(f"snakebatch partition: {total} {kind.item_unit} -> {batches} mini-batches "
          f"({kind.cut_description(spec)}) -> {spec.shard_count} shard(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
