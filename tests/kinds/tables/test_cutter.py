"""The byte cutter (snakebatch.kinds.tables.cutter): CSV/TSV/JSONL files split at record
boundaries (quoted newlines, CRLF, literal quotes, odd headers), gzip whole, Parquet by row groups
and row ranges; every mini-batch read back has the file's header and dtypes."""

import gzip
import math

import numpy as np
import pandas as pd
import pytest

from helpers import read_all, tabular_batches as batches, tabular_spec as spec, write
from snakebatch.errors import DatasetError
from snakebatch.kinds import get_kind
from snakebatch.kinds.tables import cutter, reader
from snakebatch.kinds.tables.kind import TableKind
from snakebatch.partition.shards import make_mini_batches


TRICKY = pd.DataFrame({
    "id": range(40),
    "text": [f'row {i}, "quoted"\nsecond line' if i % 5 == 0 else f"plain {i}" for i in range(40)],
    "value": [math.nan if i % 6 == 0 else i * 0.25 for i in range(40)],
    "count": [i if i < 30 else i * 1000 for i in range(40)],
})


@pytest.mark.parametrize("size", [1, 7, 64, 1024, 10 ** 9])
def test_every_csv_row_lands_in_exactly_one_mini_batch_with_the_files_header_and_dtypes(tmp_path, size):
    path = tmp_path / "data.csv"
    TRICKY.to_csv(path, index=False)
    mbs = batches(path, size)
    assert sum(mb.count for mb in mbs) == 40
    assert [mb.first_item for mb in mbs] == [sum(m.count for m in mbs[:i]) for i in range(len(mbs))]
    frames = [reader.read_chunk(TableKind.chunk(mb), {}) for mb in mbs]
    for frame in frames:
        assert list(frame.columns) == ["id", "text", "value", "count"]
        assert frame.dtypes.map(str).to_dict() == pd.read_csv(path).dtypes.map(str).to_dict()
    pd.testing.assert_frame_equal(pd.concat(frames, ignore_index=True), pd.read_csv(path))
    if size == 1:
        assert len(mbs) == 40                 # one record per mini-batch
    if size == 10 ** 9:
        assert len(mbs) == 1                  # a file smaller than the size is one mini-batch


def test_a_split_point_inside_a_quoted_field_moves_to_the_record_end(tmp_path):
    text = 'a,b\n1,"x,\ny\n\nz"\n2,plain\n'
    path = write(tmp_path / "q.csv", text)
    # a target offset just inside the quoted field (after "1,\"x,\n") must not cut the record
    mbs = batches(path, 5)
    assert [(TableKind.chunk(mb).start, TableKind.chunk(mb).end, TableKind.chunk(mb).records) for mb in mbs] == [(4, 16, 1), (16, 24, 1)]
    assert read_all(mbs).to_dict("list") == {"a": [1, 2], "b": ["x,\ny\n\nz", "plain"]}


def test_crlf_line_endings(tmp_path):
    path = tmp_path / "crlf.csv"
    path.write_bytes(b"a,b\r\n1,x\r\n2,y\r\n3,z\r\n")
    mbs = batches(path, 4)
    assert len(mbs) == 3
    assert read_all(mbs).to_dict("list") == {"a": [1, 2, 3], "b": ["x", "y", "z"]}


def test_a_last_record_without_newline_is_kept(tmp_path):
    path = write(tmp_path / "nonl.csv", "a\n1\n2")
    mbs = batches(path, 1)
    assert [mb.count for mb in mbs] == [1, 1]
    assert read_all(mbs)["a"].tolist() == [1, 2]


@pytest.mark.parametrize("text", ["", "a,b,c\n", "a,b,c"], ids=["empty", "header-only", "header-no-newline"])
def test_files_without_records_give_no_mini_batch(tmp_path, text):
    path = write(tmp_path / "none.csv", text)
    pd.DataFrame({"a": [1]}).to_csv(tmp_path / "some.csv", index=False)
    assert [TableKind.chunk(mb).path for mb in batches(tmp_path, 10)] == [str(tmp_path / "some.csv")]
    with pytest.raises(DatasetError, match=r"the tabular dataset has no records \(1 file\(s\), all empty or header only\)"):
        batches(path, 10)


def test_one_file_or_many_and_mini_batches_never_cross_files(tmp_path):
    for name, rows in (("a.csv", range(0, 5)), ("b.csv", range(5, 12)), ("c.csv", range(12, 13))):
        pd.DataFrame({"n": list(rows)}).to_csv(tmp_path / name, index=False)
    mbs = batches(tmp_path, 10 ** 6)
    assert [(TableKind.chunk(mb).path.rsplit("/", 1)[1], mb.count, mb.first_item) for mb in mbs] == [
        ("a.csv", 5, 0), ("b.csv", 7, 5), ("c.csv", 1, 12)]
    assert read_all(mbs)["n"].tolist() == list(range(13))
    assert len(batches(tmp_path, 1)) == 13


def test_tsv_and_jsonl_split_and_read_back(tmp_path):
    TRICKY.to_csv(tmp_path / "d.tsv", sep="\t", index=False)
    TRICKY.to_json(tmp_path / "d.jsonl", orient="records", lines=True)
    for name in ("d.tsv", "d.jsonl"):
        mbs = batches(tmp_path / name, 200)
        assert len(mbs) > 3
        frame = read_all(mbs)
        assert frame["text"].tolist() == TRICKY["text"].tolist()
        assert frame["id"].tolist() == list(range(40))
        assert frame["value"].isna().tolist() == TRICKY["value"].isna().tolist()


def test_gzip_csv_is_read_whole(tmp_path):
    path = tmp_path / "d.csv.gz"
    with gzip.open(path, "wt") as handle:
        TRICKY.to_csv(handle, index=False)
    logged = []
    s = spec(path, 10)
    mbs = make_mini_batches(get_kind("tabular").list(s), s, log=logged.append)
    assert len(mbs) == 1 and mbs[0].count == 40
    assert "is gzip-compressed and cannot be split" in logged[0]
    pd.testing.assert_frame_equal(read_all(mbs), TRICKY)


def test_dtypes_of_a_split_file_match_the_whole_file(tmp_path):
    # 'late' is int in the first half and float (NaN) in the second; 'mixed' turns to text late
    n = 100
    frame = pd.DataFrame({"late": [i if i < 90 else math.nan for i in range(n)],
                          "mixed": [str(i) if i < 95 else f"x{i}" for i in range(n)]})
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    whole = pd.read_csv(path)
    mbs = batches(path, 50)
    assert len(mbs) > 5
    first = reader.read_chunk(TableKind.chunk(mbs[0]), {})
    assert first.dtypes.map(str).to_dict() == whole.dtypes.map(str).to_dict() == {"late": "float64", "mixed": "str"}
    pd.testing.assert_frame_equal(read_all(mbs), whole)


def test_a_parquet_file_splits_by_row_groups_and_a_large_row_group_by_rows(tmp_path):
    frame = pd.DataFrame({"n": np.arange(10_000), "s": [f"value {i}" for i in range(10_000)]})
    many = tmp_path / "many" / "groups.parquet"
    many.parent.mkdir()
    frame.to_parquet(many, row_group_size=1000)
    one = tmp_path / "one" / "single.parquet"
    one.parent.mkdir()
    frame.to_parquet(one, row_group_size=10_000)

    import pyarrow.parquet as pq

    meta = pq.ParquetFile(many).metadata
    largest = max(cutter.row_group_bytes(meta, i) for i in range(meta.num_row_groups))
    grouped = batches(many, largest)          # each row group fits; two do not
    assert [TableKind.chunk(mb).row_groups for mb in grouped] == [(i,) for i in range(10)]
    assert [mb.count for mb in batches(many, 2 * largest + 1)] == [2000] * 5
    pd.testing.assert_frame_equal(read_all(grouped), frame)
    assert len(batches(many, 10 ** 9)) == 1

    split = batches(one, 8 * 1024)
    assert len(split) > 3
    assert all(TableKind.chunk(mb).row_groups == (0,) and TableKind.chunk(mb).row_start is not None for mb in split)
    assert sum(mb.count for mb in split) == 10_000
    pd.testing.assert_frame_equal(read_all(split), frame)
    assert read_all(split).dtypes.map(str).to_dict() == frame.dtypes.map(str).to_dict()


def test_every_split_position_keeps_quoted_newlines_and_commas_in_their_record(tmp_path):
    text = 'a,b,c\n1,"x,\n""y""\n\nz",2\n3,"p\r\nq",4\n5,plain,6\n7,",",8\n'
    path = write(tmp_path / "q.csv", text)
    whole = pd.read_csv(path)
    for size in range(1, len(text) + 1):   # a split target on every byte, inside quotes too
        mbs = batches(path, size)
        assert sum(mb.count for mb in mbs) == 4, size
        pd.testing.assert_frame_equal(read_all(mbs), whole)


ODD_CSVS = {
    "literal-quote": 'name,text\nA,5" screen\nB,"multi\nline"\nC,after\nD,x\nE,y\n',
    "literal-quote-at-field-end": 'name,text\nA,5"\nB,"multi\nline"\nC,"a ""b"" c"\nD,x""y\n',
    "escaped-quotes": 'a,b\n1,"he said ""hi,\nthere"""\n2,""\n3,"""q"""\n',
    "quote-after-closing": 'a,b\n1,"x"y\n2,"multi\nz"\n3,w\n',
    "crlf-quoted": 'a,b\r\n1,"x\r\ny"\r\n2,z\r\n',
    "blank-lines": 'a,b\n1,x\n\n\n2,y\n3,z\n',
    "bom": '\ufeffa,b\n1,x\n2,y\n',
}


@pytest.mark.parametrize("name", sorted(ODD_CSVS))
def test_odd_csvs_split_anywhere_read_back_like_pandas_reads_the_whole_file(tmp_path, name):
    path = write(tmp_path / f"{name}.csv", ODD_CSVS[name])
    whole = pd.read_csv(path)
    for size in range(1, len(ODD_CSVS[name]) + 2):
        pd.testing.assert_frame_equal(read_all(batches(path, size)), whole, obj=f"size {size}")


def test_tsv_with_literal_quotes(tmp_path):
    path = write(tmp_path / "t.tsv", 'a\tb\n1\tHe said "hi"\n2\t"multi\nline"\n3\tok\n')
    whole = pd.read_csv(path, sep="\t")
    for size in range(1, 40):
        pd.testing.assert_frame_equal(read_all(batches(path, size)), whole)


@pytest.mark.parametrize("read_options", [{"header": 0}, {"header": None}, {"header": 1}, {"sep": r"\s*,\s*", "engine": "python"}])
def test_header_options_never_lose_rows(tmp_path, read_options):
    path = write(tmp_path / "h.csv", "a,b\n1,2\n3,4\n5,6\n7,8\n")
    whole = pd.read_csv(path, **read_options)
    pd.testing.assert_frame_equal(read_all(batches(path, 8, read_options=read_options), read_options), whole)


def test_old_mac_line_ends_are_read_whole(tmp_path):
    path = tmp_path / "cr.csv"
    path.write_bytes(b"a,b\r1,2\r3,4\r")
    mbs = batches(path, 1)
    assert [mb.count for mb in mbs] == [2]
    assert read_all(mbs).to_dict("list") == {"a": [1, 3], "b": [2, 4]}


def raw(path, text):
    """Write ``text`` as it is (``helpers.write`` dedents: a line of spaces would lose them)."""
    path.write_bytes(text.encode())
    return str(path)


# Blank lines (spaces, tabs, CRs only) are rows pandas skips. Found by the property test
# (tests/properties/test_table_properties.py): '_\n""\n \n' at 4 bytes counted two records where
# pandas reads one row, and '_\n \n' at 1 byte gave a mini-batch that reads no row.
@pytest.mark.parametrize("text,size,counts", [
    ('_\n""\n \n', 4, [1]),
    ('_\n""\n \n', 1, [1]),
    ("a\n1\n\n\n\n2\n", 1, [1, 1]),
    ("a,b\n1,2\n\n \t\n\r\n3,4\n", 1, [1, 1]),
    ("a\n1\n \t \n2\n", 4, [2]),
    ("a\n\n1\n\n", 1, [1]),
], ids=["quoted-empty-then-space", "one-byte", "blank-lines", "spaces-tabs-crlf", "in-one-chunk", "around"])
def test_blank_lines_are_no_records_and_never_a_mini_batch_of_their_own(tmp_path, text, size, counts):
    path = raw(tmp_path / "blank.csv", text)
    mbs = batches(path, size)
    frames = [reader.read_chunk(TableKind.chunk(mb), {}) for mb in mbs]
    assert [mb.count for mb in mbs] == [len(frame) for frame in frames] == counts
    assert [mb.first_item for mb in mbs] == [sum(counts[:i]) for i in range(len(counts))]
    pd.testing.assert_frame_equal(pd.concat(frames, ignore_index=True), pd.read_csv(path))


def test_a_file_of_blank_lines_only_has_no_records(tmp_path):
    path = raw(tmp_path / "blank.csv", "_\n \n\n\t\n")
    assert len(pd.read_csv(path)) == 0
    with pytest.raises(DatasetError, match=r"the tabular dataset has no records"):
        batches(path, 1)


def test_blank_lines_are_rows_when_skip_blank_lines_is_false_and_a_tab_is_data_in_a_tsv(tmp_path):
    path = write(tmp_path / "blank.csv", "a\n1\n\n2\n")
    options = {"skip_blank_lines": False}
    mbs = batches(path, 1, read_options=options)
    assert [mb.count for mb in mbs] == [1, 1, 1]
    pd.testing.assert_frame_equal(read_all(mbs, options), pd.read_csv(path, **options))
    tsv = raw(tmp_path / "t.tsv", "a\tb\n1\t2\n\t\n3\t4\n")
    mbs = batches(tsv, 1)
    assert [mb.count for mb in mbs] == [1, 1, 1]
    pd.testing.assert_frame_equal(read_all(mbs), pd.read_csv(tsv, sep="\t"))
