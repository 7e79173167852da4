import os

import pytest

from snakebatch.settings.config import PartitionSpec
from snakebatch.kinds import Item
from snakebatch.storage.layout import RunLayout
from snakebatch.partition.manifest import ShardManifest
from snakebatch.partition.job import assign_shards, build_manifests, make_mini_batches, manifest_path, write_manifests


def listing(n):
    return [Item(path=f"d/{i}.png", size=i, ukey=f"{i}:{1000 + i}", mtime_ns=1000 + i) for i in range(n)]


def cut(size):
    return PartitionSpec(run_name="r", paths=("d",), pattern=None, mini_batch_size=size, shard_count=1)


def test_mini_batches_cut_the_listing_in_order():
    batches = make_mini_batches(listing(12), cut(5))
    assert [tuple(b.payload["items"]) for b in batches] == [
        ("d/0.png", "d/1.png", "d/2.png", "d/3.png", "d/4.png"),
        ("d/5.png", "d/6.png", "d/7.png", "d/8.png", "d/9.png"),
        ("d/10.png", "d/11.png"),
    ]
    assert [b.index for b in batches] == [0, 1, 2]
    assert [b.first_item for b in batches] == [0, 5, 10]


def test_mini_batch_key_changes_with_size_or_mtime_only_for_its_batch():
    before = make_mini_batches(listing(10), cut(5))
    changed = listing(10)
    changed[7] = Item(path="d/7.png", size=7, ukey="7:99", mtime_ns=99)
    after = make_mini_batches(changed, cut(5))
    assert before[0].key == after[0].key
    assert before[1].key != after[1].key


@pytest.mark.parametrize("count,shards,sizes", [(10, 3, [4, 3, 3]), (2, 4, [1, 1, 0, 0]), (6, 1, [6]), (0, 2, [0, 0])])
def test_shards_are_contiguous_and_balanced(count, shards, sizes):
    batches = make_mini_batches(listing(count), cut(1))
    assigned = assign_shards(batches, shards)
    assert [len(s) for s in assigned] == sizes
    assert [b for s in assigned for b in s] == batches


def test_invalid_sizes_raise():
    with pytest.raises(ValueError, match="mini_batch_size must be >= 1, got 0"):
        make_mini_batches(listing(3), cut(0))
    with pytest.raises(ValueError, match="shard_count must be >= 1, got 0"):
        assign_shards([], 0)


def test_manifests_describe_the_whole_input():
    spec = PartitionSpec(run_name="r", paths=("d",), pattern=None, mini_batch_size=2, shard_count=2)
    manifests = build_manifests(spec, listing(5))
    assert [(m.shard, m.shard_count, m.total_items, m.total_mini_batches) for m in manifests] == [(0, 2, 5, 3), (1, 2, 5, 3)]
    assert [[b.index for b in m.mini_batches] for m in manifests] == [[0, 1], [2]]


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
    from snakebatch.kinds.files.kind import listing_fingerprint

    return os.path.basename(RunLayout("r").listing(listing_fingerprint(list_items(spec))))


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


def test_a_manifest_is_compact_json_with_one_mini_batch_per_line(tmp_path):
    (manifest,) = build_manifests(cut(2), listing(3))
    path = str(tmp_path / "shard-00000.json")
    manifest.write(path)
    lines = open(path, encoding="utf-8").read().split("\n")
    assert lines[0] == ('{"version": 3, "run_name": "r", "shard": 0, "shard_count": 1, "total_mini_batches": 2, '
                        '"total_items": 3, "mini_batches": [')
    assert [line[:49] for line in lines[1:3]] == ['{"kind": "file", "index": 0, "first_item": 0, "ke',
                                                 '{"kind": "file", "index": 1, "first_item": 2, "ke']
    assert lines[1].endswith('"count": 2, "payload": {"items": ["d/0.png", "d/1.png"]}},')
    assert lines[3:] == ["]}", ""]
    assert ShardManifest.read(path) == manifest
    (empty,) = build_manifests(PartitionSpec(**{**cut(2).__dict__, "shard_count": 3}), listing(1))[2:]
    empty.write(path)
    assert open(path, encoding="utf-8").read().endswith('"total_items": 1, "mini_batches": []}\n')
    assert ShardManifest.read(path) == empty


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
