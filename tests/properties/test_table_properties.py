"""Tabular splitting as properties: for random CSV text (quoted fields holding newlines, the
delimiter and quotes, unicode, CRLF line ends, a BOM, no trailing newline, blank lines) and random
``mini_batch_size`` bytes, reading every mini-batch and concatenating them gives exactly what
pandas reads from the whole file; the same for Parquet files of random row-group layouts.

The mini-batches are cut and read as a run does: ``TableKind.mini_batches`` (file dtypes
included) then ``TableKind.materialise`` per mini-batch."""

import csv
import io

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import example, given, settings, strategies as st
from pandas.testing import assert_frame_equal

from helpers import partition_spec
from snakebatch.errors import DatasetError
from snakebatch.kinds import Cache, Item, get_kind

FIELD_CHARS = st.sampled_from(list("ab Z09,;\"'\n\r\t-.") + ["é", "ü", "数", "😀"])
FIELDS = st.one_of(st.text(FIELD_CHARS, max_size=8), st.integers(-10 ** 6, 10 ** 6).map(str),
                   st.floats(allow_nan=False, allow_infinity=False, width=32).map(repr))
COLUMNS = st.lists(st.text(st.sampled_from(list("abcxyz_")), min_size=1, max_size=4), min_size=1, max_size=4,
                   unique=True)


@st.composite
def csv_files(draw):
    """(bytes of a CSV file, its header) of random rows, quoting and line ends, with blank lines
    (empty, or spaces and tabs: rows pandas skips) between some rows."""
    columns = draw(COLUMNS)
    rows = draw(st.lists(st.lists(FIELDS, min_size=len(columns), max_size=len(columns)), min_size=1, max_size=40))
    terminator = draw(st.sampled_from(["\n", "\r\n"]))
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]))
    blanks = draw(st.dictionaries(st.integers(0, len(rows) - 1), st.sampled_from(["", " ", "\t", " \t "]), max_size=3))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=terminator, quoting=quoting if quoting != csv.QUOTE_NONNUMERIC else csv.QUOTE_ALL)
    writer.writerow(columns)
    for number, row in enumerate(rows):
        writer.writerow(row)
        if number in blanks:
            buffer.write(blanks[number] + terminator)
    text = buffer.getvalue()
    if draw(st.booleans()):
        text = text[:-len(terminator)]     # no trailing newline
    data = text.encode("utf-8")
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data      # a UTF-8 byte order mark
    return data


def _read_as_a_run(path, size, fmt=None):
    item = Item(path=path, size=0, ukey="", mtime_ns=None)
    kind = get_kind("tabular")
    spec = partition_spec(path, size, input_type="tabular", format=fmt)
    import os

    st_ = os.stat(path)
    item = Item(path=path, size=st_.st_size, ukey=f"{st_.st_size}:{st_.st_mtime_ns}", mtime_ns=st_.st_mtime_ns)
    batches = kind.mini_batches([item], spec)
    frames = [kind.materialise(b, {}, Cache()) for b in batches]
    return batches, frames


@settings(max_examples=300)
@given(data=csv_files(), size=st.integers(1, 400))
@example(data=b'_\n""\n \n', size=4)   # a line of a space (pandas skips it) was counted as a record,
@example(data=b"_\n1\n \n2\n", size=1)  # and was a mini-batch of its own, which reads no row
@example(data=b"_\n \n", size=1)        # no row but a blank one: no records
def test_csv_mini_batches_concatenated_equal_pandas_reading_the_whole_file(tmp_path_factory, data, size):
    path = str(tmp_path_factory.mktemp("csv") / "t.csv")
    with open(path, "wb") as handle:
        handle.write(data)
    whole = pd.read_csv(path)
    if whole.empty:  # every row blank: pandas reads none, and the dataset has no records
        with pytest.raises(DatasetError, match="the tabular dataset has no records"):
            _read_as_a_run(path, size)
        return
    batches, frames = _read_as_a_run(path, size)
    assert all(len(f) >= 1 for f in frames)
    assert_frame_equal(pd.concat(frames, ignore_index=True), whole)
    if b"\r" not in data.replace(b"\r\n", b""):
        # records are counted by line feeds when cut (an estimate, TableKind.count_is_exact is
        # False): exact unless an unquoted lone CR, which pandas also reads as a line end, splits one
        assert [b.first_item for b in batches] == [sum(len(f) for f in frames[:i]) for i in range(len(frames))]
        assert sum(b.count for b in batches) == len(whole)


@st.composite
def parquet_layouts(draw):
    """A list of row-group lengths and the rows' values."""
    groups = draw(st.lists(st.integers(1, 30), min_size=1, max_size=8))
    rows = sum(groups)
    ints = draw(st.lists(st.integers(-2 ** 40, 2 ** 40), min_size=rows, max_size=rows))
    texts = draw(st.lists(st.one_of(st.none(), st.text(FIELD_CHARS, max_size=10)), min_size=rows, max_size=rows))
    return groups, ints, texts


@settings(max_examples=200)
@given(layout=parquet_layouts(), size=st.integers(1, 3000))
def test_parquet_mini_batches_concatenated_equal_the_whole_file_for_any_row_groups(tmp_path_factory, layout, size):
    groups, ints, texts = layout
    path = str(tmp_path_factory.mktemp("pq") / "t.parquet")
    table = pa.table({"n": pa.array(ints, pa.int64()), "s": pa.array(texts, pa.string())})
    with pq.ParquetWriter(path, table.schema) as writer:
        start = 0
        for length in groups:
            writer.write_table(table.slice(start, length), row_group_size=length)
            start += length
    assert pq.ParquetFile(path).metadata.num_row_groups == len(groups)
    batches, frames = _read_as_a_run(path, size)
    assert all(len(f) >= 1 for f in frames)
    assert [b.count for b in batches] == [len(f) for f in frames]
    assert_frame_equal(pd.concat(frames, ignore_index=True), pq.read_table(path).to_pandas())
