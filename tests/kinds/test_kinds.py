"""Input kinds (snakebatch.kinds): listing through fsspec with a change identity per item, cutting
mini-batches, materialising them for run(), naming items; on the local disk, through file:// URLs
and on fsspec's in-memory filesystem (memory://), which stands for an object store."""

import gzip
import hashlib
import io
import json
import os
import uuid

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from helpers import partition_spec, write
from snakebatch.kinds.tables import cutter as tabular
from snakebatch.errors import DatasetError
from snakebatch.kinds import Cache, Descriptor, InputKind, Item, MaterialiseError, get_kind, known_kinds
from snakebatch.kinds.files.kind import FileKind, listing_fingerprint
from snakebatch.kinds.tables.kind import TableKind
from snakebatch.storage.locations import change_identity, filesystem, is_local, local_path
from snakebatch.kinds.tables.cutter import TableChunk, TableReadError

FILES = get_kind("file")
TABLES = get_kind("tabular")


def spec(paths, size=3, input_type="file", **overrides):
    return partition_spec(list(paths), size, input_type=input_type, run_name="t", **overrides)


def names(items):
    return [item.path for item in items]


def quiet(message):
    pass


@pytest.fixture
def mem():
    """A fresh root on fsspec's memory filesystem: (fs, 'memory:///<root>'); removed afterwards."""
    fs = fsspec.filesystem("memory")
    root = f"/t{uuid.uuid4().hex[:8]}"
    yield fs, f"memory://{root}"
    if fs.exists(root):
        fs.rm(root, recursive=True)


def put(fs, url, data):
    fs.pipe(url, data.encode() if isinstance(data, str) else data)
    return url


# ------------------------------------------------------------------------------ registry, locations
def test_registry_names_the_kinds_and_refuses_an_unknown_one():
    assert known_kinds() == ("file", "tabular")
    assert isinstance(FILES, FileKind) and isinstance(TABLES, TableKind)
    assert get_kind("file") is FILES
    assert isinstance(FILES, InputKind)
    with pytest.raises(ValueError) as info:
        get_kind("image")
    assert str(info.value) == "unknown input kind 'image'; known kinds: file, tabular"


@pytest.mark.parametrize("location,expected", [
    ("data/x.png", "data/x.png"), ("/abs/x", "/abs/x"), ("file:///abs/x", "/abs/x"), ("file://rel/x", "rel/x"),
    ("file://", "."),
])
def test_local_path_of_plain_paths_and_file_urls(location, expected):
    assert is_local(location)
    assert local_path(location) == expected
    assert filesystem(location) == (None, expected)


def test_other_urls_are_not_local():
    assert not is_local("s3://bucket/x")
    with pytest.raises(ValueError) as info:
        local_path("s3://bucket/x")
    assert str(info.value) == "'s3://bucket/x' is not a local path or file:// URL"


def test_change_identity_prefers_the_stores_version_and_falls_back_to_ukey(mem):
    fs, root = mem
    put(fs, f"{root}/a", "1")
    assert change_identity(fs, "x", {"ETag": '"abc"', "size": 1}) == "etag:abc"
    assert change_identity(fs, "x", {"generation": 7}) == "generation:7"
    path = fs._strip_protocol(f"{root}/a")
    assert change_identity(fs, path) == "ukey:" + fs.ukey(path)


# ------------------------------------------------------------------------------------- listing
@pytest.fixture
def tree(tmp_path):
    """data/ with nested files, a .snakemake folder, a symlink loop and a linked duplicate."""
    data = tmp_path / "data"
    for name in ["b/2.png", "a/1.png", "a/10.png", "c.txt", "b/sub/0.png", ".snakemake/x.png"]:
        write(data / name, name)
    os.symlink(str(data), str(data / "b" / "loop"))
    return data


def test_local_listing_is_sorted_deduplicated_and_skips_snakemake_entries(tree):
    root = str(tree)
    items = list(FILES.list(spec([root, str(tree / "a" / "1.png")])))
    expected = [os.path.join(root, p) for p in ["a/1.png", "a/10.png", "b/2.png", "b/sub/0.png", "c.txt"]]
    assert names(items) == expected
    assert [(i.path, i.size, i.mtime_ns) for i in items] == [
        (p, os.stat(p).st_size, os.stat(p).st_mtime_ns) for p in expected]
    st = os.stat(expected[0])
    assert items[0] == Item(path=expected[0], size=7, ukey=f"7:{st.st_mtime_ns}", mtime_ns=st.st_mtime_ns)
    assert items[0].local


def test_a_symlinked_file_is_listed_once_and_a_hard_link_twice(tmp_path):
    data = tmp_path / "data"
    write(data / "a.png", "a")
    os.symlink(str(data / "a.png"), str(data / "b.png"))
    os.link(str(data / "a.png"), str(data / "c.png"))
    os.symlink(str(data / "c.png"), str(data / "d.png"))
    assert names(FILES.list(spec([str(data)]))) == [str(data / "a.png"), str(data / "c.png")]


def test_local_pattern_glob_and_relative_roots(tree, monkeypatch):
    monkeypatch.chdir(tree.parent)
    assert names(FILES.list(spec(["data"], pattern="*.png"))) == [
        "data/a/1.png", "data/a/10.png", "data/b/2.png", "data/b/sub/0.png"]
    assert names(FILES.list(spec(["data/a/1*.png", "data/c.txt"]))) == ["data/a/1.png", "data/a/10.png", "data/c.txt"]


def test_file_urls_give_the_plain_local_paths(tree, monkeypatch):
    root = str(tree)
    assert names(FILES.list(spec([f"file://{root}/a"]))) == [f"{root}/a/1.png", f"{root}/a/10.png"]
    monkeypatch.chdir(tree.parent)
    assert names(FILES.list(spec(["file://data/a"]))) == ["data/a/1.png", "data/a/10.png"]
    assert names(FILES.list(spec(["file://data/a/1*.png"]))) == ["data/a/1.png", "data/a/10.png"]
    plain = FILES.mini_batches(FILES.list(spec(["data/a"])), spec(["data/a"]))
    url = FILES.mini_batches(FILES.list(spec(["file://data/a"])), spec(["file://data/a"]))
    assert plain == url  # same items, same names, same keys


def test_memory_listing_is_sorted_deduplicated_and_named_by_url(mem):
    fs, root = mem
    for name in ["b/2.png", "a/1.png", "a/10.png", "c.txt"]:
        put(fs, f"{root}/data/{name}", name)
    base = root
    items = list(FILES.list(spec([f"{root}/data", f"{root}/data/a/1.png"])))
    assert names(items) == [f"{base}/data/a/1.png", f"{base}/data/a/10.png", f"{base}/data/b/2.png",
                            f"{base}/data/c.txt"]
    assert names(items)[0].startswith("memory:///t")
    assert [i.size for i in items] == [7, 8, 7, 5]
    assert not items[0].local and items[0].mtime_ns is None
    path = fs._strip_protocol(items[0].path)
    assert items[0].ukey == "ukey:" + fs.ukey(path)
    assert names(FILES.list(spec([f"{root}/data"], pattern="*.png"))) == names(items)[:3]
    assert names(FILES.list(spec([f"{root}/data/*/1*.png", f"{root}/data/c.txt"]))) == [
        f"{base}/data/a/1.png", f"{base}/data/a/10.png", f"{base}/data/c.txt"]
    assert names(FILES.list(spec([f"{root}/data/*"]))) == names(items)  # a glob matching folders lists them


def test_listing_streams(mem):
    fs, root = mem
    for i in range(3):
        put(fs, f"{root}/d/{i}.txt", "x")
    stream = FILES.list(spec([f"{root}/d"]))
    assert iter(stream) is stream  # a generator, not a list
    assert next(stream).path.endswith("/d/0.txt")


def test_the_change_identity_changes_with_the_content(tmp_path, mem):
    path = write(tmp_path / "a.txt", "one")
    [before] = FILES.list(spec([path]))
    write(path, "two")
    os.utime(path, ns=(before.mtime_ns + 1000, before.mtime_ns + 1000))
    [after] = FILES.list(spec([path]))
    assert (before.size, after.size) == (3, 3)
    assert before.ukey != after.ukey and after.ukey == f"3:{before.mtime_ns + 1000}"
    fs, root = mem
    put(fs, f"{root}/a.txt", "one")
    [before] = FILES.list(spec([f"{root}/a.txt"]))
    assert list(FILES.list(spec([f"{root}/a.txt"])))[0].ukey == before.ukey  # stable while unchanged
    put(fs, f"{root}/a.txt", "two")
    [after] = FILES.list(spec([f"{root}/a.txt"]))
    assert before.ukey != after.ukey


@pytest.mark.parametrize("where", ["local", "file_url", "memory"])
def test_missing_root_empty_dataset_and_unmatched_glob_name_the_root(where, tmp_path, mem):
    fs, mroot = mem
    if where == "memory":
        base = mroot
        put(fs, f"{base}/empty/.keep", "")  # a folder with one file the pattern below drops
        fs.mkdir(f"{base}/none")
    else:
        os.makedirs(tmp_path / "none")
        write(tmp_path / "empty" / ".keep")
        base = ("file://" if where == "file_url" else "") + str(tmp_path)

    def error(paths, pattern=None):
        with pytest.raises(DatasetError) as info:
            list(FILES.list(spec(paths, pattern=pattern)))
        return str(info.value)

    assert error([f"{base}/missing"]) == f"input.path: '{base}/missing' does not exist"
    assert error([f"{base}/*.csv"]) == f"input.path: glob '{base}/*.csv' matched no files"
    assert error([f"{base}/empty"], "*.png") == (
        f"input.path: no files matching pattern '*.png' under '{base}/empty': the dataset is empty")
    assert error([f"{base}/none"]) == f"input.path: no files under '{base}/none': the dataset is empty"


# --------------------------------------------------------------------------------- file batches
def test_file_mini_batches_have_sizes_first_items_and_the_keys_partition_gives(dataset, files):
    s = spec([str(dataset)], size=3)
    batches = FILES.mini_batches(FILES.list(s), s)
    assert [b.count for b in batches] == [3, 3, 3, 1]
    assert [b.first_item for b in batches] == [0, 3, 6, 9]
    assert [b.index for b in batches] == [0, 1, 2, 3]
    assert [b.payload for b in batches] == [{"items": files[i:i + 3]} for i in range(0, 10, 3)]
    assert {b.kind for b in batches} == {"file"}
    def old_key(paths):  # the digest partition.mini_batch_key gave before the kinds: stored results stay valid
        digest = hashlib.sha256()
        for path in paths:
            st = os.stat(path)
            digest.update(f"{path}\0{os.path.abspath(path)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return digest.hexdigest()
    assert [b.key for b in batches] == [old_key(files[i:i + 3]) for i in range(0, 10, 3)]
    with pytest.raises(ValueError) as info:
        FILES.mini_batches([], spec([str(dataset)], size=0))
    assert str(info.value) == "mini_batch_size must be >= 1, got 0"


def test_memory_mini_batch_keys_hash_urls_and_ukeys(mem):
    fs, root = mem
    for i in range(5):
        put(fs, f"{root}/d/{i}.txt", str(i))
    s = spec([f"{root}/d"], size=2)
    items = list(FILES.list(s))
    batches = FILES.mini_batches(iter(items), s)
    assert [b.count for b in batches] == [2, 2, 1]
    expected = hashlib.sha256("".join(f"{i.path}\0{i.ukey}\n" for i in items[:2]).encode()).hexdigest()
    assert batches[0].key == expected
    assert batches[0].payload == {"items": names(items[:2]), "ukeys": [i.ukey for i in items[:2]],
                                 "sizes": [1, 1]}
    put(fs, f"{root}/d/3.txt", "changed")
    again = FILES.mini_batches(FILES.list(s), s)
    assert [a.key == b.key for a, b in zip(again, batches)] == [True, False, True]


def test_materialise_a_local_file_mini_batch_gives_its_paths(dataset, files, tmp_path):
    s = spec([str(dataset)], size=4)
    batch = FILES.mini_batches(FILES.list(s), s)[1]
    cache = Cache(folder=str(tmp_path / "cache"))
    assert FILES.materialise(batch, {}, cache) == files[4:8]
    assert not os.path.exists(tmp_path / "cache")  # nothing downloaded
    assert FILES.select(files[4:8], 1, 3) == files[5:7]


def test_materialise_a_memory_file_mini_batch_downloads_each_file_once(mem, tmp_path):
    fs, root = mem
    put(fs, f"{root}/d/a.png", "AAA")
    put(fs, f"{root}/d/b.png", "BB")
    s = spec([f"{root}/d"], size=5)
    [batch] = FILES.mini_batches(FILES.list(s), s)
    cache = Cache(folder=str(tmp_path / "cache"))
    paths = FILES.materialise(batch, {}, cache)
    ukeys = batch.payload["ukeys"]
    expected = [str(tmp_path / "cache" / hashlib.sha256(f"{url}\0{ukey}".encode()).hexdigest()[:20] / name)
                for url, ukey, name in zip(batch.payload["items"], ukeys, ["a.png", "b.png"])]
    assert paths == expected
    assert [open(p).read() for p in paths] == ["AAA", "BB"]
    fs.rm(fs._strip_protocol(f"{root}/d/a.png"))
    assert FILES.materialise(batch, {}, cache) == expected  # already there: not read again
    fs.rm(fs._strip_protocol(f"{root}/d"), recursive=True)
    with pytest.raises(MaterialiseError) as info:
        FILES.materialise(batch, {}, Cache(folder=str(tmp_path / "other")))
    assert str(info.value).startswith(f"input file '{batch.payload['items'][0]}' cannot be downloaded: ")


def test_file_items_are_named_and_described(dataset, files):
    s = spec([str(dataset)], size=3)
    batch = FILES.mini_batches(FILES.list(s), s)[1]
    assert FILES.item_names(batch) == tuple(files[3:6])
    assert FILES.describe_item(batch, 2) == files[5]
    assert FILES.describe(batch) == f"{files[3]} and 2 more file(s)"
    assert FILES.item_count(batch) == 3
    assert FILES.partition_key_value(batch) == {}
    assert FILES.count_is_exact


def test_descriptors_round_trip_through_json(dataset, tmp_path, mem):
    s = spec([str(dataset)], size=4)
    path = write(tmp_path / "t.csv", "a,b\n1,x\n2,y\n3,z\n")
    fs, root = mem
    put(fs, f"{root}/t.csv", "a,b\n1,x\n2,y\n")
    descriptors = (FILES.mini_batches(FILES.list(s), s)
                   + TABLES.mini_batches(TABLES.list(spec([path], 8, "tabular")), spec([path], 8, "tabular"))
                   + TABLES.mini_batches(TABLES.list(spec([f"{root}/t.csv"], 8, "tabular")),
                                         spec([f"{root}/t.csv"], 8, "tabular"))
                   + TABLES.mini_batches(TABLES.list(spec([path], 8, "tabular", partition_keys=("b",))),
                                         spec([path], 8, "tabular", partition_keys=("b",))))
    for descriptor in descriptors:
        text = json.dumps(descriptor.to_json())
        assert Descriptor.from_json(json.loads(text)) == descriptor
        assert json.loads(descriptor.dumps()) == json.loads(text)
        assert get_kind(json.loads(text)["kind"]).item_count(descriptor) == descriptor.count
    assert descriptors[0].to_json() == {"kind": "file", "index": 0, "first_item": 0, "key": descriptors[0].key,
                                        "count": 4, "payload": {"items": [str(dataset / f"f0{i}.txt")
                                                                          for i in range(4)]}}
    remote = TableChunk.from_json(descriptors[-4].payload)
    assert remote.ukey and remote.size is None and remote.mtime_ns is None
    assert "ukey" not in descriptors[4].payload and "file_ukeys" not in descriptors[4].payload  # local: as before


# -------------------------------------------------------------------------------- table batches
CSV = "id,text,value\n" + "".join(f'{i},"row {i}, ""q""\nline",{i * 0.5}\n' for i in range(12))


def _table_batches(paths, size, **overrides):
    s = spec(paths, size, "tabular", **overrides)
    return TABLES.mini_batches(TABLES.list(s), s, log=quiet)


def _shape(descriptor):
    """The chunk JSON without what names or identifies the file."""
    return {k: v for k, v in descriptor.payload.items() if k not in ("path", "files", "size", "mtime_ns", "ukey")}


def test_a_memory_csv_splits_and_reads_like_the_local_one(tmp_path, mem):
    local = write(tmp_path / "data.csv", CSV)
    fs, root = mem
    url = put(fs, f"{root}/data.csv", CSV)
    here = _table_batches([local], 60)
    there = _table_batches([url], 60)
    assert [b.count for b in here] == [3, 3, 3, 3]
    assert [b.first_item for b in here] == [0, 3, 6, 9]
    assert [_shape(b) for b in there] == [_shape(b) for b in here]
    assert TABLES.item_names(there[1]) == (fs.unstrip_protocol(fs._strip_protocol(url)),)
    st = os.stat(local)
    assert (here[0].payload["size"], here[0].payload["mtime_ns"]) == (st.st_size, st.st_mtime_ns)
    expected = pd.read_csv(io.StringIO(CSV))
    for batches in (here, there):
        cache = Cache()
        frames = [TABLES.materialise(b, {}, cache) for b in batches]
        pd.testing.assert_frame_equal(pd.concat(frames, ignore_index=True), expected)
    frame = TABLES.materialise(there[1], {}, Cache())
    pd.testing.assert_frame_equal(frame, expected.iloc[3:6].reset_index(drop=True))
    part = TABLES.select(frame, 1, 3)
    pd.testing.assert_frame_equal(part, expected.iloc[4:6].reset_index(drop=True).set_axis([1, 2]))


def test_local_table_keys_are_the_digests_partition_gave_before_the_kinds(tmp_path):
    path = write(tmp_path / "data.csv", CSV)
    write(tmp_path / "more.csv", "id,text,value\n1,a,2\n")
    batches = _table_batches([str(tmp_path)], 60)
    st = os.stat(path)

    def old_key(chunk_json):  # partition.table_mini_batch_key, hashed once more per mini-batch
        inner = hashlib.sha256()
        inner.update(f"{path}\0{os.path.abspath(path)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        inner.update(json.dumps(chunk_json, sort_keys=True, default=str).encode())
        return hashlib.sha256(inner.hexdigest().encode()).hexdigest()
    first = [b for b in batches if b.payload["path"] == path]
    assert len(first) > 1
    assert [b.key for b in first] == [old_key(b.payload) for b in first]
    keyed = _table_batches([str(tmp_path)], 60, partition_keys=("value",))
    assert path in TABLES.item_names(keyed[0])


def test_a_memory_parquet_file_splits_by_row_groups_and_reads_back_exactly(tmp_path, mem):
    frame = pd.DataFrame({"a": list(range(10)), "b": [f"v{i}" for i in range(10)]})
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer, row_group_size=3)
    local = str(tmp_path / "t.parquet")
    with open(local, "wb") as handle:
        handle.write(buffer.getvalue())
    fs, root = mem
    url = put(fs, f"{root}/t.parquet", buffer.getvalue())
    here, there = _table_batches([local], 200), _table_batches([url], 200)  # row groups: 188, 189, 189, 162 bytes
    assert [b.count for b in there] == [3, 3, 3, 1]
    assert [b.payload["row_groups"] for b in there] == [[0], [1], [2], [3]]
    assert [_shape(b) for b in there] == [_shape(b) for b in here]
    read = [TABLES.materialise(b, {}, Cache()) for b in there]
    pd.testing.assert_frame_equal(pd.concat(read, ignore_index=True), frame)
    pd.testing.assert_frame_equal(read[1], frame.iloc[3:6].reset_index(drop=True))
    assert TABLES.describe_item(there[1], 2) == f"{there[1].payload['path']}, row group(s) [1], row 2"


def test_memory_partition_keys_over_csv_gzip_and_jsonl(mem):
    fs, root = mem
    a = put(fs, f"{root}/a.csv", "k,v\nx,1\ny,2\nx,3\n")
    b = put(fs, f"{root}/b.csv.gz", gzip.compress(b"k,v\ny,4\nx,5\n"))
    batches = _table_batches([a, b], 100, partition_keys=("k",))
    assert [(b.count, TABLES.partition_key_value(b)) for b in batches] == [(3, {"k": "x"}), (2, {"k": "y"})]
    cache = Cache()
    frame = TABLES.materialise(batches[0], {}, cache)
    pd.testing.assert_frame_equal(frame, pd.DataFrame({"k": ["x", "x", "x"], "v": [1, 3, 5]}))
    assert len(cache.frames) == 2
    assert TABLES.describe_item(batches[1], 1) == 'partition key {"k": "y"}, row 1'
    assert TABLES.describe(batches[1]) == 'partition key {"k": "y"}'
    assert len(batches[0].payload["file_ukeys"]) == 2


def test_a_gzip_memory_csv_is_one_mini_batch_with_a_warning(mem):
    fs, root = mem
    data = gzip.compress(CSV.encode())
    url = put(fs, f"{root}/t.csv.gz", data)
    messages = []
    s = spec([url], 10, "tabular")
    [batch] = TABLES.mini_batches(TABLES.list(s), s, log=messages.append)
    name = TABLES.item_names(batch)[0]
    assert messages == [f"snakebatch partition: warning: {name!r} is gzip-compressed and cannot be split; "
                        f"it is one mini-batch of {len(data)} bytes (mini_batch_size 10)"]
    pd.testing.assert_frame_equal(TABLES.materialise(batch, {}, Cache()), pd.read_csv(io.StringIO(CSV)))


def test_table_items_are_described_by_file_and_record(tmp_path):
    path = write(tmp_path / "data.csv", "a\n1\n2\n3\n4\n5\n")
    batches = _table_batches([path], 4)
    assert [b.count for b in batches] == [2, 2, 1]
    assert TABLES.describe_item(batches[1], 1) == f"{path}, record 3"
    assert TABLES.describe(batches[1]) == f"{path}, lines 4-5"
    assert TABLES.item_names(batches[1]) == (path,)
    assert not TABLES.count_is_exact


def test_a_memory_table_changed_after_partition_is_refused(mem):
    fs, root = mem
    url = put(fs, f"{root}/t.csv", "a\n1\n2\n")
    [batch] = _table_batches([url], 100)
    put(fs, url, "a\n1\n9\n")
    with pytest.raises(MaterialiseError) as info:
        TABLES.materialise(batch, {}, Cache())
    assert isinstance(info.value, TableReadError)
    name = TABLES.item_names(batch)[0]
    assert str(info.value) == (f"input file {name!r} changed after it was partitioned (its change identity "
                               "differs); the next run partitions it again")


def test_a_malformed_memory_row_names_the_file_and_line(mem):
    fs, root = mem
    url = put(fs, f"{root}/t.csv", "a,b\n1,2\n3,4\n5,6,7\n8,9\n")
    batches = _table_batches([url], 8)
    name = TABLES.item_names(batches[0])[0]
    with pytest.raises(TableReadError) as info:
        TABLES.materialise(batches[1], {}, Cache())
    assert str(info.value) == (f"ParserWarning reading {name}, lines 4-5: Length of header or names does not "
                               "match length of data. This leads to a loss of data with index_col=False.")
    pd.testing.assert_frame_equal(TABLES.materialise(batches[0], {}, Cache()), pd.DataFrame({"a": [1, 3], "b": [2, 4]}))


def test_tabular_errors_name_the_roots_and_files(tmp_path, mem):
    fs, root = mem
    empty = put(fs, f"{root}/e.csv", "a,b\n")
    with pytest.raises(DatasetError) as info:
        _table_batches([empty], 10)
    assert str(info.value) == (f"input.path: {empty!r}: the tabular dataset has no records "
                               "(1 file(s), all empty or header only)")
    odd = put(fs, f"{root}/x.dat", "1\n")
    with pytest.raises(DatasetError) as info:
        _table_batches([odd], 10)
    assert str(info.value) == (f"input file {fs.unstrip_protocol(fs._strip_protocol(odd))!r}: cannot tell its "
                               "tabular format from the extension; set input.format to one of csv, tsv, parquet, jsonl")
    with pytest.raises(DatasetError) as info:
        _table_batches([str(tmp_path / "nope.csv")], 10)
    assert str(info.value) == f"input.path: {str(tmp_path / 'nope.csv')!r} does not exist"


def test_local_tabular_reading_is_unchanged_by_the_filesystem_argument(tmp_path):
    path = write(tmp_path / "data.csv", CSV)
    chunks = tabular.split_text_file(path, "csv", False, 60, {})
    local_fs = fsspec.filesystem("file")
    assert tabular.split_text_file(path, "csv", False, 60, {}, local_fs) == chunks
    frames = [tabular.read_chunk(c, {}, fs_of=lambda p: local_fs) for c in chunks]
    pd.testing.assert_frame_equal(pd.concat(frames, ignore_index=True), pd.read_csv(path))


def test_a_listing_fingerprint_is_the_digest_of_its_listing_file_and_follows_ukeys(dataset, mem, tmp_path):
    from snakebatch.partition.listing import write_listing

    local = list(FILES.list(spec([str(dataset)])))
    fingerprint = write_listing(str(tmp_path / "listing.list"), local)
    assert listing_fingerprint(local) == fingerprint == hashlib.sha256((tmp_path / "listing.list").read_bytes()).hexdigest()
    assert (tmp_path / "listing.list").read_bytes() == b"".join(
        f"{i.path}\0{os.stat(i.path).st_size}\0{os.stat(i.path).st_mtime_ns}\0{i.ukey}\0".encode() for i in local)
    fs, root = mem
    put(fs, f"{root}/a", "1")
    items = list(FILES.list(spec([root])))
    assert listing_fingerprint(items) == hashlib.sha256(f"{items[0].path}\0{1}\0\0{items[0].ukey}\0".encode()).hexdigest()
    put(fs, f"{root}/a", "2")
    assert listing_fingerprint(FILES.list(spec([root]))) != listing_fingerprint(items)


@pytest.mark.parametrize("path", ["/a/b.png", "/a//b.png", "/a/./b.png", "/a/../b.png", "/a/.h.png", "rel/x.png",
                                  "//x.png", "/a/b..c"])
def test_a_local_key_line_holds_the_absolute_path_as_abspath_gives_it(path):
    item = Item(path=path, size=3, ukey="3:5", mtime_ns=5)
    assert item.key_line() == f"{path}\0{os.path.abspath(path)}\0{3}\0{5}"


def test_edits_run_makes_to_a_selected_part_never_reach_the_materialised_table():
    frame = pd.DataFrame({"id": [0, 1, 2, 3], "text": ["a", "b", "c", "d"], "value": [0.5, 1.5, 2.5, 3.5]})
    part = TABLES.select(frame, 1, 3)
    part.loc[1, "value"] = -1.0
    part["text"] = part["text"].str.upper()
    part["extra"] = 7
    try:
        part["id"].to_numpy()[0] = 99  # pandas >= 3: a view's arrays are read-only; before: a copy's
    except ValueError as exc:
        assert "read-only" in str(exc)
    assert frame.to_dict("list") == {"id": [0, 1, 2, 3], "text": ["a", "b", "c", "d"], "value": [0.5, 1.5, 2.5, 3.5]}
    assert TABLES.select(frame, 1, 3).to_dict("list") == {"id": [1, 2], "text": ["b", "c"], "value": [1.5, 2.5]}
