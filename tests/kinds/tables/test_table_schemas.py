"""Parquet inputs whose schemas disagree are refused by the partition, naming the two files and
the columns (issue 21 point 9); what the merge accepts stays accepted."""

import io
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from helpers import partition_spec, put, quiet
from snakebatch.errors import DatasetError
from snakebatch.kinds import get_kind

TABLES = get_kind("tabular")


def _parquet(path, **columns):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pq.write_table(pa.table(columns), path)
    return str(path)


def _cut(paths, **overrides):
    spec = partition_spec([os.path.dirname(paths[0])], 1000, input_type="tabular", run_name="t", **overrides)
    return TABLES.mini_batches(TABLES.list(spec), spec, log=quiet)


@pytest.mark.parametrize("keys", [(), ("id",)])
def test_a_missing_column_and_string_versus_int_are_refused_naming_both_files_and_the_columns(tmp_path, keys):
    a = _parquet(tmp_path / "t" / "a.parquet", id=[1, 2], name=["x", "y"], score=[0.5, 1.5])
    b = _parquet(tmp_path / "t" / "b.parquet", id=[3], name=[7])
    with pytest.raises(DatasetError) as caught:
        _cut([a, b], partition_keys=keys)
    assert str(caught.value) == (
        f"input files {a!r} and {b!r} have different Parquet schemas: column 'score' is not in {b!r}; "
        f"column 'name' is string in {a!r} and int64 in {b!r}. Every Parquet file of a tabular dataset needs "
        "the same columns, of the same types")


def test_what_the_merge_accepts_stays_accepted(tmp_path):
    import pandas as pd

    a = _parquet(tmp_path / "t" / "a.parquet", id=pa.array([1, 2], pa.int32()), v=[0.5, 1.5], n=pa.array([None, None]))
    _parquet(tmp_path / "t" / "b.parquet", v=pa.array([3, 4], pa.int64()), id=pa.array([3, 4], pa.int64()),
             n=["s", None])
    pq.write_table(pa.Table.from_pandas(pd.DataFrame({"id": [5], "v": [1.0], "n": ["t"]}, index=[9])),
                   tmp_path / "t" / "c.parquet")   # pandas' index column, schema metadata
    assert [b.count for b in _cut([a])] == [2, 2, 1]


def test_with_read_options_columns_only_those_are_compared_and_each_file_must_have_them(tmp_path):
    a = _parquet(tmp_path / "t" / "a.parquet", id=[1, 2], name=["x", "y"])
    b = _parquet(tmp_path / "t" / "b.parquet", id=[3], name=[7], extra=[True])
    assert [m.count for m in _cut([a], read_options={"columns": ["id"]})] == [2, 1]
    with pytest.raises(DatasetError) as caught:
        _cut([a], read_options={"columns": ["id", "name"]})
    assert str(caught.value) == (f"input files {a!r} and {b!r} have different Parquet schemas: column 'name' is "
                                 f"string in {a!r} and int64 in {b!r}. Every Parquet file of a tabular dataset "
                                 "needs the same columns, of the same types (of input.read_options.columns)")
    with pytest.raises(DatasetError) as caught:
        _cut([a], read_options={"columns": ["id", "extra"]})
    assert str(caught.value) == f"input file {a!r} has no column 'extra' of input.read_options.columns"


def test_remote_parquet_files_are_checked_from_their_footers(mem):
    fs, root = mem
    urls = []
    for name, columns in (("a.parquet", {"id": [1]}), ("b.parquet", {"id": ["1"]})):
        buffer = io.BytesIO()
        pq.write_table(pa.table(columns), buffer)
        urls.append(put(fs, f"{root}/{name}", buffer.getvalue()))
    spec = partition_spec([root], 1000, input_type="tabular", run_name="t")
    with pytest.raises(DatasetError) as caught:
        TABLES.mini_batches(TABLES.list(spec), spec, log=quiet)
    assert str(caught.value).startswith(f"input files {urls[0]!r} and {urls[1]!r} have different Parquet schemas: "
                                        f"column 'id' is int64 in {urls[0]!r} and string in {urls[1]!r}.")
