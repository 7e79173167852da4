"""Mini-batches into shards (snakebatch.partition.shards): the cut in listing order, keys that
follow each file, contiguous balanced shards, manifests that describe the whole input."""

import pytest

from snakebatch.kinds import Item
from snakebatch.partition.shards import assign_shards, build_manifests, make_mini_batches
from snakebatch.settings.config import PartitionSpec


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
