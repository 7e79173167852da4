"""Partition a dataset listing into mini-batches and mini-batches into shards.

``make_mini_batches`` and ``assign_shards`` are pure (no I/O); ``main`` lists the dataset and
writes one manifest per shard: ``python -m snakebatch.partition --spec JSON --out-dir DIR``.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import hashlib
import json
import os
import sys

from .config import PartitionSpec
from .datasets import FileItem, list_files, listing_fingerprint
from .errors import DatasetError, SnakebatchError
from .lifecycle import invalidate_result
from . import tabular
from .manifest import MiniBatch, ShardManifest, shard_id
from .tabular import TableChunk
from .storage import write_text_atomic


def mini_batch_key(items: list[FileItem]) -> str:
    """Hex SHA-256 of the items' paths (as run() receives them, and absolute), sizes and mtimes:
    the identity of a mini-batch's input."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(f"{item.path}\0{os.path.abspath(item.path)}\0{item.size}\0{item.mtime_ns}\n".encode())
    return digest.hexdigest()


def make_mini_batches(listing: list[FileItem], mini_batch_size: int) -> list[MiniBatch]:
    """Cut ``listing`` into consecutive mini-batches of ``mini_batch_size`` files (the last may be
    shorter), in listing order. Raises ValueError when ``mini_batch_size`` < 1."""
    if mini_batch_size < 1:
        raise ValueError(f"mini_batch_size must be >= 1, got {mini_batch_size}")
    batches = []
    for index, start in enumerate(range(0, len(listing), mini_batch_size)):
        chunk = listing[start:start + mini_batch_size]
        batches.append(MiniBatch(index=index, first_item=start, items=tuple(i.path for i in chunk),
                                 key=mini_batch_key(chunk)))
    return batches


def table_mini_batch_key(item: FileItem, chunk: TableChunk) -> str:
    """Hex SHA-256 of a tabular mini-batch's input: the file (path, size, mtime) and the range
    it reads (bytes, row groups/rows, or partition-key value)."""
    digest = hashlib.sha256()
    digest.update(f"{item.path}\0{os.path.abspath(item.path)}\0{item.size}\0{item.mtime_ns}\n".encode())
    digest.update(json.dumps(chunk.to_json(), sort_keys=True, default=str).encode())
    return digest.hexdigest()


def make_table_mini_batches(listing: list[FileItem], spec: PartitionSpec, log=print) -> list[MiniBatch]:
    """The mini-batches of a tabular dataset (see ``tabular``): per file, record ranges of about
    ``spec.mini_batch_size`` bytes that never cross the file's end; or, with partition_keys, one
    per distinct key combination across all files. Raises DatasetError naming a file that cannot
    be read or split."""
    files = [(item, *tabular.detect_format(item.path, spec.format)) for item in listing]
    chunks: list[tuple[TableChunk, list[FileItem]]] = []
    if spec.partition_keys:
        by_path = {item.path: item for item, _, _ in files}
        for chunk in tabular.key_groups([(i.path, f, g) for i, f, g in files], list(spec.partition_keys),
                                        spec.read_options):
            items = [by_path[p] for p in chunk.files]
            chunks.append((dataclasses.replace(chunk, file_stats=tuple((i.size, i.mtime_ns) for i in items)), items))
    else:
        for item, fmt, gzipped in files:
            if fmt == "parquet":
                parts = tabular.split_parquet_file(item.path, spec.mini_batch_size)
            else:
                parts = tabular.split_text_file(item.path, fmt, gzipped, spec.mini_batch_size, spec.read_options)
                if gzipped and item.size > spec.mini_batch_size:
                    log(f"snakebatch partition: warning: {item.path!r} is gzip-compressed and cannot be split; "
                        f"it is one mini-batch of {item.size} bytes (mini_batch_size {spec.mini_batch_size})")
                if len(parts) > 1:
                    dtypes = tabular.file_dtypes(item.path, fmt, gzipped, spec.read_options)
                    parts = [dataclasses.replace(part, dtypes=dtypes) for part in parts]
            chunks.extend((dataclasses.replace(part, size=item.size, mtime_ns=item.mtime_ns), [item])
                          for part in parts)
    if not chunks:
        raise DatasetError(f"input.path: {', '.join(map(repr, spec.paths))}: the tabular dataset has no records "
                           f"({len(files)} file(s), all empty or header only)")
    batches, first = [], 0
    for index, (chunk, items) in enumerate(chunks):
        digest = hashlib.sha256()
        for item in items:
            digest.update(table_mini_batch_key(item, chunk).encode())
        batches.append(MiniBatch(index=index, first_item=first, items=(), key=digest.hexdigest(), table=chunk))
        first += chunk.records
    return batches


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


def build_manifests(spec: PartitionSpec, listing: list[FileItem]) -> list[ShardManifest]:
    """The shard manifests of ``listing`` under ``spec`` (pure for file input; tabular input
    reads the files to find record boundaries)."""
    if spec.input_type == "tabular":
        mini_batches = make_table_mini_batches(listing, spec)
    else:
        mini_batches = make_mini_batches(listing, spec.mini_batch_size)
    total = sum(mb.item_count for mb in mini_batches)
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
    listing = list_files(spec.paths, spec.pattern)
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
    if spec.input_type == "tabular":
        how = (f"one per value of {', '.join(spec.partition_keys)}" if spec.partition_keys
               else f"of about {spec.mini_batch_size} bytes")
        print(f"snakebatch partition: {total} records -> {batches} mini-batches {how} -> {spec.shard_count} shard(s)")
    else:
        print(f"snakebatch partition: {total} files -> {batches} mini-batches of up to "
              f"{spec.mini_batch_size} -> {spec.shard_count} shard(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
