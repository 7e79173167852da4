"""The partition job (snakebatch.partition.job): manifests written and stale ones removed, the
listing named by its fingerprint and older than the manifests, the main process's listing streamed."""

import os

import pytest

from snakebatch.partition.job import manifest_path, write_manifests
from snakebatch.partition.listing import fingerprint
from snakebatch.partition.manifest import ShardManifest
from snakebatch.settings.config import PartitionSpec
from snakebatch.storage.layout import RunLayout


def test_write_manifests_round_trips_and_removes_stale_ones(dataset, tmp_path):
    out = str(tmp_path / "partition")
    spec = PartitionSpec(run_name="r", paths=(str(dataset),), pattern=None, mini_batch_size=3, shard_count=3)
    write_manifests(spec, out)
    listing_file = listing_of(spec)
    assert sorted(os.listdir(out)) == [listing_file, "shard-00000.json", "shard-00001.json", "shard-00002.json"]
    write_manifests(PartitionSpec(**{**spec.__dict__, "shard_count": 2}), out)
    assert sorted(os.listdir(out)) == [listing_file, "shard-00000.json", "shard-00001.json"]
    manifest = ShardManifest.read(manifest_path(out, 1))
    assert [tuple(b.payload["items"]) for b in manifest.mini_batches] == [(str(dataset / "f06.txt"), str(dataset / "f07.txt"),
                                                         str(dataset / "f08.txt")),
                                                        (str(dataset / "f09.txt"),)]


def list_items(spec):
    from snakebatch.kinds import get_kind

    return list(get_kind(spec.input_type).list(spec))


def listing_of(spec):
    """The file name of the listing of the dataset of ``spec`` as it is now."""
    return os.path.basename(RunLayout("r").listing(fingerprint(list_items(spec))))


def test_the_listing_is_named_by_its_fingerprint_and_older_than_the_manifests(dataset, tmp_path):
    from snakebatch.partition.listing import read_listing, write_listing
    from snakebatch.partition.job import partition

    layout = RunLayout(str(tmp_path))
    out = layout.partition_dir
    spec = PartitionSpec(run_name="r", paths=(str(dataset),), pattern=None, mini_batch_size=3, shard_count=1)
    first = listing_of(spec)
    # the main snakemake process lists once and hands the listing over; the partition job makes it its own
    listed = layout.listed(RunLayout.listing_name(first))
    write_listing(listed, list_items(spec))
    os.utime(listed, ns=(1_000_000_000, 1_000_000_000))   # so its time shows it was not listed again
    partition(spec, os.path.join(out, first))
    assert sorted(os.listdir(out)) == [first, "shard-00000.json"]
    assert os.stat(os.path.join(out, first)).st_mtime_ns == 1_000_000_000 < os.stat(manifest_path(out, 0)).st_mtime_ns
    assert listing_of(spec) == first                                                   # unchanged
    # a file replaced by an older copy with other content: another listing name
    path = dataset / "f03.txt"
    path.write_text("changed content\n")
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    changed = listing_of(spec)
    assert changed != first
    # the data did not exist when the workflow was parsed: the job lists it and keeps both the
    # listing it was asked for and the one named by the fingerprint; the old one is removed
    partition(spec, layout.listing("unlisted"))
    assert sorted(os.listdir(out)) == [changed, "listing-unlisted.list", "shard-00000.json"]
    assert os.stat(os.path.join(out, changed)).st_mtime_ns <= os.stat(manifest_path(out, 0)).st_mtime_ns
    assert read_listing(os.path.join(out, changed)) == list_items(spec) == read_listing(layout.listing("unlisted"))


def test_the_partition_job_streams_the_listing_the_main_process_wrote(dataset, tmp_path, monkeypatch):
    """The job renames the handed-over listing and reads it once, through iter_listing, without
    listing the dataset or encoding the listing again."""
    from snakebatch.partition import job as module
    from snakebatch.partition.listing import write_listing

    layout = RunLayout(str(tmp_path))
    spec = PartitionSpec(run_name="r", paths=(str(dataset),), pattern=None, mini_batch_size=4, shard_count=2)
    name = write_listing(layout.listed("x"), list_items(spec))
    os.replace(layout.listed("x"), layout.listed(name))
    streamed = []

    def iter_listing(path):
        streamed.append(path)
        for item in real_iter_listing(path):
            streamed.append(item.path)
            yield item

    real_iter_listing = module.iter_listing
    monkeypatch.setattr(module, "iter_listing", iter_listing)
    monkeypatch.setattr(module, "encode_listing", None)  # the job does not encode it again
    manifests = module.partition(spec, layout.listing(name), log=pytest.fail)   # nor list the dataset
    assert streamed == [layout.listing(name)] + [str(dataset / f"f{i:02d}.txt") for i in range(10)]
    assert [m.total_items for m in manifests] == [10, 10]
    assert [[b.count for b in m.mini_batches] for m in manifests] == [[4, 4], [2]]
    assert sorted(os.listdir(layout.partition_dir)) == [os.path.basename(layout.listing(name)), "shard-00000.json",
                                                        "shard-00001.json"]
