"""The dataset listing file (snakebatch.partition.listing): its bytes, its fingerprint, reading it back in
blocks, and the errors for a listing that cannot be written or read."""

import gc
import hashlib
import os

import pytest

from helpers import partition_spec, put
from snakebatch.errors import DatasetError
from snakebatch.kinds import Item, get_kind
from snakebatch.partition.listing import encode, fingerprint, gc_paused, iter_listing, read_listing, write_chunks, write_listing

LOCAL = Item(path="/data/a\nb.png", size=12, ukey="12:1700000000123456789", mtime_ns=1700000000123456789)
ODD = Item(path="/data/caf\udce9.png", size=0, ukey="0:5", mtime_ns=5)   # a Latin-1 name, as os decodes it
REMOTE = Item(path="s3://bucket/x y.csv", size=7, ukey="etag:abc")
FILES = get_kind("file")


def spec(paths, size=3):
    return partition_spec(list(paths), size, run_name="t")


def test_each_item_is_four_nul_terminated_fields_and_the_fingerprint_is_their_digest(tmp_path):
    path = str(tmp_path / "listing.list")
    digest = write_listing(path, [LOCAL, ODD, REMOTE])
    data = open(path, "rb").read()
    assert data == (b"/data/a\nb.png\x0012\x001700000000123456789\x0012:1700000000123456789\x00"
                    b"/data/caf\xe9.png\x000\x005\x000:5\x00"
                    b"s3://bucket/x y.csv\x007\x00\x00etag:abc\x00")
    assert digest == hashlib.sha256(data).hexdigest() == fingerprint([LOCAL, ODD, REMOTE])
    assert encode([LOCAL, ODD, REMOTE]) == (digest, [data])
    assert read_listing(path) == [LOCAL, ODD, REMOTE]


def test_encoded_chunks_written_later_are_the_same_file(tmp_path, monkeypatch):
    monkeypatch.setattr("snakebatch.partition.listing.CHUNK_ITEMS", 2)
    items = [Item(path=f"/d/{i}", size=i, ukey=f"{i}:9", mtime_ns=9) for i in range(5)]
    digest, chunks = encode(items)
    assert [len(c.split(b"\0")) - 1 for c in chunks] == [8, 8, 4]   # 2, 2 and 1 items of 4 fields
    write_chunks(str(tmp_path / "a.list"), chunks)
    assert write_listing(str(tmp_path / "b.list"), items) == digest
    assert (tmp_path / "a.list").read_bytes() == (tmp_path / "b.list").read_bytes()
    assert read_listing(str(tmp_path / "a.list")) == items


@pytest.mark.parametrize("block", [1, 2, 3, 5, 7, 64, 1 << 22])
def test_blocks_of_any_size_read_back_the_same_items(tmp_path, block):
    # blocks end inside fields, inside records and inside a name's multi-byte UTF-8 characters
    items = [LOCAL, Item(path="/d/数😀\u200b", size=3, ukey="3:4", mtime_ns=4), ODD, REMOTE]
    path = str(tmp_path / "listing.list")
    write_listing(path, items)
    assert list(iter_listing(path, block)) == items


def test_an_empty_listing_is_an_empty_file(tmp_path):
    path = str(tmp_path / "listing.list")
    assert write_listing(path, []) == hashlib.sha256(b"").hexdigest()
    assert read_listing(path) == []


def test_a_nul_in_a_change_identity_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "listing.list"
    with pytest.raises(DatasetError) as caught:
        write_listing(str(path), [LOCAL, Item(path="memory:///x", size=1, ukey="etag:a\0b")])
    assert str(caught.value) == ("input file 'memory:///x': a NUL character in its name or change identity "
                                 "('etag:a\\x00b') cannot be listed")
    assert list(tmp_path.iterdir()) == []   # nothing written, no temporary file left


@pytest.mark.parametrize("data, reason", [
    (b"/a\x001\x002\x00", "it ends inside a record (3 field(s) and 0 byte(s) left)"),
    (b"/a\x001\x002\x001:2\x00/b", "it ends inside a record (0 field(s) and 2 byte(s) left)"),
    (b"/a\x00one\x002\x001:2\x00", "invalid literal for int() with base 10: 'one'"),
])
def test_a_truncated_or_corrupt_listing_fails_naming_it(tmp_path, data, reason):
    path = tmp_path / "listing.list"
    path.write_bytes(data)
    with pytest.raises(DatasetError) as caught:
        read_listing(str(path))
    assert str(caught.value) == f"cannot read the dataset listing {str(path)!r}: {reason}"


def test_a_missing_listing_fails_naming_it(tmp_path):
    path = str(tmp_path / "nope.list")
    with pytest.raises(DatasetError) as caught:
        read_listing(path)
    assert str(caught.value) == f"cannot read the dataset listing {path!r}: [Errno 2] No such file or directory: {path!r}"


def test_the_collector_is_paused_in_the_block_and_restored_after_an_error():
    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        with gc_paused():
            assert not gc.isenabled()
            raise RuntimeError("boom")
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()   # left as it was found
    finally:
        gc.enable()

def test_a_listing_fingerprint_is_the_digest_of_its_listing_file_and_follows_ukeys(dataset, mem, tmp_path):
    local = list(FILES.list(spec([str(dataset)])))
    written = write_listing(str(tmp_path / "listing.list"), local)
    assert fingerprint(local) == written == hashlib.sha256((tmp_path / "listing.list").read_bytes()).hexdigest()
    assert (tmp_path / "listing.list").read_bytes() == b"".join(
        f"{i.path}\0{os.stat(i.path).st_size}\0{os.stat(i.path).st_mtime_ns}\0{i.ukey}\0".encode() for i in local)
    fs, root = mem
    put(fs, f"{root}/a", "1")
    items = list(FILES.list(spec([root])))
    assert fingerprint(items) == hashlib.sha256(f"{items[0].path}\0{1}\0\0{items[0].ukey}\0".encode()).hexdigest()
    put(fs, f"{root}/a", "2")
    assert fingerprint(FILES.list(spec([root]))) != fingerprint(items)
