"""Partition invariants as properties: the file kind's mini-batches, the shard assignment and the
local listing, for random listings, names, sizes and shard counts.

What holds for every example (written so content-defined cut points, which may make a mini-batch
shorter than ``mini_batch_size``, still pass):
- every item is in exactly one mini-batch, and concatenating them gives the listing's order;
- no mini-batch is empty or holds more than ``mini_batch_size`` files;
- ``index`` counts 0.., ``first_item`` is the count of items before, ``count`` the items held;
- shards are contiguous runs of mini-batches whose lengths differ by at most one;
- a folder tree is listed sorted by path, each file once, whatever its name;
- a listing file reads back the Items it was written from, whatever the names and block sizes;
- a mini-batch's key text is its items' key lines.
"""

import os

from hypothesis import given, settings, strategies as st

from helpers import partition_spec
from snakebatch.kinds import Item, get_kind
from snakebatch.kinds.base import key_text
from snakebatch.kinds.listing import list_items
from snakebatch.partition.shards import assign_shards

# Characters a file name may hold on Linux, hostile ones on purpose: spaces, quotes, shell
# metacharacters, a newline, unicode; '/' and NUL are the only bytes a name cannot hold.
NAME_CHARS = st.sampled_from(list("abcXYZ019 -_.'\"$`;&|*?[]{}()!#~=,\n\t\\") + ["é", "数", "😀", "\u200b"])
NAMES = st.text(NAME_CHARS, min_size=1, max_size=12).filter(lambda n: n not in (".", "..") and "/" not in n)


def _items(paths, sizes):
    return [Item(path=p, size=s, ukey=f"{s}:1", mtime_ns=1) for p, s in zip(paths, sizes)]


LISTINGS = st.lists(st.tuples(NAMES, st.integers(0, 2 ** 40)), min_size=0, max_size=120, unique_by=lambda t: t[0])


@given(listing=LISTINGS, size=st.integers(1, 40), shards=st.integers(1, 17))
def test_file_mini_batches_hold_every_item_once_in_order_and_shards_are_balanced(listing, size, shards):
    paths = [f"data/{name}" for name, _ in listing]
    items = _items(paths, [s for _, s in listing])
    spec = partition_spec("data", size, shard_count=shards)
    batches = get_kind("file").mini_batches(items, spec)

    assert [p for b in batches for p in b.payload["items"]] == paths
    assert all(1 <= b.count <= size and b.count == len(b.payload["items"]) for b in batches)
    assert [b.index for b in batches] == list(range(len(batches)))
    firsts = [b.first_item for b in batches]
    assert firsts == [sum(b.count for b in batches[:i]) for i in range(len(batches))]
    assert len({b.key for b in batches}) == len(batches)   # distinct input, distinct key

    assigned = assign_shards(batches, shards)
    assert len(assigned) == shards
    assert [b for shard in assigned for b in shard] == batches
    lengths = [len(shard) for shard in assigned]
    assert max(lengths) - min(lengths) <= 1


@given(listing=LISTINGS, size=st.integers(1, 40))
def test_a_mini_batch_key_depends_on_its_items_only(listing, size):
    """The same files cut again give the same keys; a changed size (mtime) changes only the key of
    the mini-batch holding the file."""
    paths = [f"d/{name}" for name, _ in listing]
    items = _items(paths, [s for _, s in listing])
    spec = partition_spec("d", size)
    kind = get_kind("file")
    first = kind.mini_batches(items, spec)
    assert [b.key for b in kind.mini_batches(list(items), spec)] == [b.key for b in first]
    if items:
        changed = list(items)
        changed[len(items) // 2] = Item(path=paths[len(items) // 2], size=items[len(items) // 2].size + 1,
                                        ukey="x", mtime_ns=1)
        second = kind.mini_batches(changed, spec)
        differing = [b.index for b, c in zip(first, second) if b.key != c.key]
        assert differing == [(len(items) // 2) // size]


TREES = st.lists(st.tuples(st.lists(NAMES, min_size=0, max_size=3), NAMES, st.binary(max_size=20)),
                 min_size=1, max_size=25)


@settings(max_examples=150)
@given(tree=TREES, size=st.integers(1, 7), shards=st.integers(1, 5))
def test_a_folder_tree_with_hostile_names_is_listed_sorted_each_file_once(tmp_path_factory, tree, size, shards):
    root = str(tmp_path_factory.mktemp("tree"))
    made = {}
    for folders, name, content in tree:
        folder = os.path.join(root, *folders)
        path = os.path.join(folder, name)
        if any(os.path.isfile(os.path.join(root, *folders[:i])) for i in range(1, len(folders) + 1)) or os.path.isdir(path):
            continue   # a name already taken by a file (or folder) of another kind
        os.makedirs(folder, exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(content)
        made[path] = len(content)
    listing = list(list_items([root]))
    assert [i.path for i in listing] == sorted(made)
    assert [i.size for i in listing] == [made[p] for p in sorted(made)]
    batches = get_kind("file").mini_batches(listing, partition_spec(root, size, shard_count=shards))
    assert [p for b in batches for p in b.payload["items"]] == sorted(made)
    assert all(1 <= b.count <= size for b in batches)


SEGMENTS = st.sampled_from(["a", "b.png", ".", "..", "", ".h", "x\ny", "caf\udce9"])
PATHS = st.builds(lambda lead, parts, tail: lead + "/".join(parts) + tail,
                  st.sampled_from(["/", "//", "", "./"]), st.lists(SEGMENTS, min_size=1, max_size=4),
                  st.sampled_from(["", "/"]))


@given(paths=st.lists(PATHS, min_size=0, max_size=6), remote=st.booleans())
def test_the_key_text_of_a_mini_batch_is_its_items_key_lines(paths, remote):
    """``key_text`` (no call per item for absolute, normal local paths) is the key lines joined."""
    items = [Item(path=p, size=i, ukey=f"{i}:7", mtime_ns=7) for i, p in enumerate(paths)]
    if remote and items:
        items[-1] = Item(path="s3://b/k", size=1, ukey="etag:e")
    assert key_text(items) == "".join(item.key_line() + "\n" for item in items)


@settings(max_examples=60)
@given(listing=st.lists(st.tuples(st.text(NAME_CHARS, min_size=1, max_size=12), st.integers(0, 2 ** 40),
                                  st.one_of(st.none(), st.integers(0, 2 ** 62))), max_size=30),
       block=st.integers(1, 64))
def test_a_listing_file_reads_back_the_same_items_whatever_the_names(tmp_path_factory, listing, block):
    from snakebatch.partition.listing import fingerprint, iter_listing, write_listing

    items = [Item(path=f"/d/{name}\udcff", size=size, ukey=f"{size}:{mtime}", mtime_ns=mtime)
             for name, size, mtime in listing]
    path = str(tmp_path_factory.mktemp("listing") / "listing.list")
    assert write_listing(path, items) == fingerprint(items)
    assert list(iter_listing(path, block)) == items
