"""The tabular kind (snakebatch.kinds.tables.kind): local and memory:// tables cut and read alike,
keys as before the kinds, gzip with a warning, items described by file and record, errors naming
the roots, and run()'s edits kept from the materialised table."""

import gzip
import hashlib
import io
import json
import os

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from helpers import partition_spec, put, quiet, write
from snakebatch.errors import DatasetError
from snakebatch.kinds import Cache, get_kind

TABLES = get_kind("tabular")


def spec(paths, size=3, input_type="file", **overrides):
    return partition_spec(list(paths), size, input_type=input_type, run_name="t", **overrides)


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
