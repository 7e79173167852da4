"""Reading a tabular mini-batch back (snakebatch.kinds.tables.reader): read_options reach pandas,
a malformed row is named by file and line, a file changed since the partition is refused."""

import math

import fsspec
import pandas as pd
import pytest

from helpers import put, quiet, read_all, tabular_batches as batches, tabular_spec as spec, write
from snakebatch.kinds import Cache, MaterialiseError, get_kind
from snakebatch.kinds.tables import cutter, reader
from snakebatch.kinds.tables.kind import TableKind
from snakebatch.kinds.tables.reader import TableReadError

TABLES = get_kind("tabular")
TRICKY = pd.DataFrame({
    "id": range(40),
    "text": [f'row {i}, "quoted"\nsecond line' if i % 5 == 0 else f"plain {i}" for i in range(40)],
    "value": [math.nan if i % 6 == 0 else i * 0.25 for i in range(40)],
    "count": [i if i < 30 else i * 1000 for i in range(40)],
})
CSV = "id,text,value\n" + "".join(f'{i},"row {i}, ""q""\nline",{i * 0.5}\n' for i in range(12))


def _table_batches(paths, size, **overrides):
    s = spec(paths, size, **overrides)
    return TABLES.mini_batches(TABLES.list(s), s, log=quiet)


def test_read_options_reach_the_reader(tmp_path):
    path = write(tmp_path / "semi.csv", "a;b\n1;-\n2;x\n")
    mbs = batches(path, 1, read_options={"sep": ";", "na_values": ["-"]})
    frame = read_all(mbs, {"sep": ";", "na_values": ["-"]})
    assert frame["a"].tolist() == [1, 2]
    assert frame["b"].isna().tolist() == [True, False]


def test_a_malformed_row_names_the_file_and_line(tmp_path):
    path = write(tmp_path / "bad.csv", "a,b\n1,2\n3,4\n5,6,7\n8,9\n")
    [first, second, third, fourth] = batches(path, 1)
    assert reader.read_chunk(TableKind.chunk(first), {})["a"].tolist() == [1]
    with pytest.raises(TableReadError) as info:
        reader.read_chunk(TableKind.chunk(third), {})
    assert str(info.value).startswith(f"ParserWarning reading {path}, line 4: Length of header or names does not "
                                      "match length of data")
    [whole] = batches(path, 10 ** 6)
    with pytest.raises(TableReadError) as info:
        reader.read_chunk(TableKind.chunk(whole), {})
    assert str(info.value) == (f"ParserError reading {path}, lines 2-5: Error tokenizing data. C error: "
                               "Expected 2 fields in line 4, saw 3")


def test_a_malformed_row_after_blank_lines_is_named_by_its_line_in_the_file(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"a,b\n1,2\n\n \n3,4\n5,6,7\n8,9\n")   # as it is: helpers.write would drop the space
    [first, second, third, fourth] = batches(path, 1)
    assert [mb.count for mb in (first, second, third, fourth)] == [1, 1, 1, 1]
    with pytest.raises(TableReadError) as info:
        reader.read_chunk(TableKind.chunk(third), {})
    assert str(info.value).startswith(f"ParserWarning reading {path}, line 6: Length of header or names does not "
                                      "match length of data")


def test_a_file_changed_after_partition_is_not_read_by_stale_offsets(tmp_path):
    import os
    import time

    path = tmp_path / "d.csv"
    TRICKY.to_csv(path, index=False)
    mbs = batches(path, 64)
    time.sleep(0.01)
    TRICKY.assign(text="rewritten").to_csv(path, index=False)
    os.utime(path, ns=(time.time_ns(), time.time_ns()))
    with pytest.raises(TableReadError, match=r"d\.csv' changed after it was partitioned"):
        reader.read_chunk(TableKind.chunk(mbs[1]), {})


def test_a_file_of_a_partition_key_group_changed_after_partition_is_refused(tmp_path):
    import time

    write(tmp_path / "p1.csv", "k,v\na,1\nb,2\n")
    write(tmp_path / "p2.csv", "k,v\nb,3\na,4\n")
    mbs = batches(tmp_path, 1, partition_keys=("k",))
    time.sleep(0.01)
    with open(tmp_path / "p2.csv", "a") as handle:
        handle.write("a,999\n")
    with pytest.raises(TableReadError, match=r"p2\.csv' changed after it was partitioned \(size 12 -> 18 bytes\)"):
        reader.read_chunk(TableKind.chunk(mbs[0]), {})


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


def test_local_tabular_reading_is_unchanged_by_the_filesystem_argument(tmp_path):
    path = write(tmp_path / "data.csv", CSV)
    chunks = cutter.split_text_file(path, "csv", False, 60, {})
    local_fs = fsspec.filesystem("file")
    assert cutter.split_text_file(path, "csv", False, 60, {}, local_fs) == chunks
    frames = [reader.read_chunk(c, {}, fs_of=lambda p: local_fs) for c in chunks]
    pd.testing.assert_frame_equal(pd.concat(frames, ignore_index=True), pd.read_csv(path))
