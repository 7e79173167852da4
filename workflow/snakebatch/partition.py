"""Partition a dataset listing into mini-batches and mini-batches into shards.

``make_mini_batches`` and ``assign_shards`` are pure (no I/O). The dataset is listed once per
run, by the main snakemake process while it parses the workflow (``listed-{fingerprint}.jsonl``);
``python -m snakebatch.partition --spec JSON --listing results/{run}/partition/listing-{fingerprint}.jsonl``
makes that listing its own output and cuts it into one manifest per shard, next to it.
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
from .gather import invalidate_result
from . import tabular
from .layout import RunLayout
from .manifest import MiniBatch, ShardManifest
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
    """Where the manifest of ``shard`` lives under ``out_dir`` (a run's ``partition_dir``)."""
    return RunLayout(os.path.dirname(os.path.normpath(out_dir))).manifest(shard)


def write_listing(path: str, listing: list[FileItem]) -> None:
    """Write ``listing`` to ``path`` atomically, one FileItem as JSON per line."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    write_text_atomic(path, "".join(json.dumps(dataclasses.asdict(item)) + "\n" for item in listing))


def read_listing(path: str) -> list[FileItem]:
    """The listing ``write_listing`` wrote. Raises DatasetError when it cannot be read."""
    try:
        with open(path, encoding="utf-8") as handle:
            return [FileItem(**json.loads(line)) for line in handle if line.strip()]
    except (OSError, ValueError, TypeError) as exc:
        raise DatasetError(f"cannot read the dataset listing {path!r}: {exc}") from None


# Records of earlier versions (a fingerprint file and the stamp the Snakefile rewrote): removed.
_OLD_RECORDS = ("dataset.json", "dataset.stamp")


def write_manifests(spec: PartitionSpec, out_dir: str, listing: list[FileItem] | None = None,
                    keep: tuple[str, ...] = ()) -> list[ShardManifest]:
    """Write one manifest per shard of ``listing`` (None: list the dataset now) atomically,
    remove stale manifests of an earlier, larger shard count, and keep one listing file,
    ``listing-{fingerprint}.jsonl`` (and the files in ``keep``), older than the manifests: when
    the main snakemake process finds it, the dataset is unchanged. Other listings are removed
    first, so an interrupted partition never leaves an old listing that looks current. Raises
    DatasetError when the dataset is missing or empty."""
    if listing is None:
        listing = list_files(spec.paths, spec.pattern)
    layout = RunLayout(os.path.dirname(os.path.normpath(out_dir)))
    current = layout.listing(listing_fingerprint(listing))
    kept = {os.path.abspath(p) for p in (current, *keep)}
    stale = glob.glob(layout.listing_glob) + glob.glob(layout.listed("*")) + [layout.partition_file(n) for n in _OLD_RECORDS]
    for path in stale:
        if os.path.abspath(path) not in kept and os.path.exists(path):
            os.unlink(path)
    manifests = build_manifests(spec, listing)
    if not os.path.exists(current):
        write_listing(current, listing)
    written = set()
    for manifest in manifests:
        path = layout.manifest(manifest.shard)
        manifest.write(path)
        written.add(os.path.abspath(path))
    for path in glob.glob(layout.manifest("*")):
        if os.path.abspath(path) not in written:
            os.unlink(path)
    return manifests


def partition(spec: PartitionSpec, listing_path: str, log=print) -> list[ShardManifest]:
    """The partition job: make the listing ``listing_path`` (``listing-{name}.jsonl``, the job's
    output) and the manifests next to it. The listing the main snakemake process wrote while it
    parsed the workflow (``listed-{name}.jsonl``) becomes it; without one (the data did not exist
    yet then, or a dry run planned this job) the dataset is listed now."""
    layout = RunLayout.of_partition_file(listing_path)
    name = os.path.basename(listing_path)[len("listing-"):-len(".jsonl")]
    listed = layout.listed(name)
    if os.path.exists(listed):
        listing = read_listing(listed)
        os.replace(listed, listing_path)
    else:
        log("snakebatch partition: listing the dataset (not listed when the workflow was parsed)")
        listing = list_files(spec.paths, spec.pattern)
        write_listing(listing_path, listing)
    return write_manifests(spec, layout.partition_dir, listing, keep=(listing_path,))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m snakebatch.partition", description=__doc__)
    parser.add_argument("--spec", required=True, help="PartitionSpec as JSON")
    parser.add_argument("--listing", required=True,
                        help="the listing file to make (results/{run}/partition/listing-NAME.jsonl); "
                             "the manifests go next to it")
    args = parser.parse_args(argv)
    spec = PartitionSpec.from_json(args.spec)
    invalidate_result(RunLayout.of_partition_file(args.listing).root)
    try:
        manifests = partition(spec, args.listing)
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
