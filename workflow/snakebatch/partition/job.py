"""The partition job: a dataset listing in, one shard manifest per shard out.

The dataset is listed once per run, by the main snakemake process while it parses the workflow
(``listed-{fingerprint}.list``, ``partition.listing``'s format); ``python -m snakebatch.partition.job
--spec JSON --listing results/{run}/partition/listing-{fingerprint}.list`` makes that listing its
own output (a rename) and cuts it, read once as a stream, into one manifest per shard
(``partition.shards``: the kind's mini-batches, dealt to shards), written next to it.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys

from snakebatch.errors import SnakebatchError
from snakebatch.gather.lifecycle import invalidate_result
from snakebatch.kinds import get_kind
from snakebatch.partition.listing import encode as encode_listing
from snakebatch.partition.listing import gc_paused, iter_listing, write_chunks, write_listing
from snakebatch.partition.manifest import ShardManifest
from snakebatch.partition.shards import build_manifests
from snakebatch.settings.config import PartitionSpec
from snakebatch.storage.layout import RunLayout


def manifest_path(out_dir: str, shard: int) -> str:
    """Where the manifest of ``shard`` lives under ``out_dir`` (a run's ``partition_dir``)."""
    return RunLayout(os.path.dirname(os.path.normpath(out_dir))).manifest(shard)


# Records of earlier versions (a fingerprint file and the stamp the Snakefile rewrote): removed.
_OLD_RECORDS = ("dataset.json", "dataset.stamp")
# Listings of earlier versions (one JSON document per file): removed.
_OLD_LISTINGS = "list*-*.jsonl"


def write_manifests(spec: PartitionSpec, out_dir: str, listing=None, keep: tuple[str, ...] = (),
                    fingerprint: str | None = None) -> list[ShardManifest]:
    """Write one manifest per shard of ``listing`` (Items in input order; None: list the dataset
    now) atomically, remove stale manifests of an earlier, larger shard count, and keep one
    listing file, ``listing-{fingerprint}`` (and the files in ``keep``), older than the manifests:
    when the main snakemake process finds it, the dataset is unchanged. Other listings are removed
    first, so an interrupted partition never leaves an old listing that looks current.
    ``fingerprint``: the listing's, when its listing file is already in place (then ``listing``
    may be an iterator: it is read once, and never held whole). Raises DatasetError when the
    dataset is missing or empty."""
    layout = RunLayout(os.path.dirname(os.path.normpath(out_dir)))
    chunks = None
    if fingerprint is None:
        listing = list(get_kind(spec.input_type).list(spec) if listing is None else listing)
        fingerprint, chunks = encode_listing(listing)
    current = layout.listing(fingerprint)
    kept = {os.path.abspath(p) for p in (current, *keep)}
    stale = (glob.glob(layout.listing_glob) + glob.glob(layout.listed("*"))
             + [layout.partition_file(n) for n in _OLD_RECORDS] + glob.glob(layout.partition_file(_OLD_LISTINGS)))
    for path in stale:
        if os.path.abspath(path) not in kept and os.path.exists(path):
            os.unlink(path)
    manifests = build_manifests(spec, listing)
    if chunks is not None and not os.path.exists(current):
        write_chunks(current, chunks)
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
    """The partition job: make the listing ``listing_path`` (``listing-{name}``, the job's
    output) and the manifests next to it. The listing the main snakemake process wrote while it
    parsed the workflow (``listed-{name}``, named by its fingerprint) becomes it by a rename and
    is read once, as a stream; without one (the data did not exist yet then, or a dry run planned
    this job) the dataset is listed now."""
    layout = RunLayout.of_partition_file(listing_path)
    name = layout.listing_name(listing_path)
    listed = layout.listed(name)
    if os.path.exists(listed):
        os.replace(listed, listing_path)
        return write_manifests(spec, layout.partition_dir, iter_listing(listing_path), keep=(listing_path,),
                               fingerprint=name)
    log("snakebatch partition: listing the dataset (not listed when the workflow was parsed)")
    listing = list(get_kind(spec.input_type).list(spec))
    write_listing(listing_path, listing)
    return write_manifests(spec, layout.partition_dir, listing, keep=(listing_path,))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m snakebatch.partition.job", description=__doc__)
    specs = parser.add_mutually_exclusive_group(required=True)
    specs.add_argument("--spec", help="PartitionSpec as JSON")
    specs.add_argument("--spec-file", help="a file holding --spec")
    parser.add_argument("--listing", required=True,
                        help="the listing file to make (results/{run}/partition/listing-NAME.list); "
                             "the manifests go next to it")
    args = parser.parse_args(argv)
    if args.spec is None:
        with open(args.spec_file, encoding="utf-8") as handle:
            args.spec = handle.read()
    spec = PartitionSpec.from_json(args.spec)
    invalidate_result(RunLayout.of_partition_file(args.listing).root)
    try:
        with gc_paused():
            manifests = partition(spec, args.listing)
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
