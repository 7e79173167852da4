"""Partition keys of a tabular dataset (snakebatch.kinds.tables.groups): one mini-batch per key
combination across files and formats, missing keys as one group, unsupported key types refused."""

import gzip

import pandas as pd
import pytest

from helpers import put, quiet, tabular_batches as batches, tabular_spec as spec, write
from snakebatch.errors import DatasetError
from snakebatch.kinds import Cache, get_kind
from snakebatch.kinds.tables import reader
from snakebatch.kinds.tables.kind import TableKind

TABLES = get_kind("tabular")


def _table_batches(paths, size, **overrides):
    s = spec(paths, size, **overrides)
    return TABLES.mini_batches(TABLES.list(s), s, log=quiet)


def test_partition_keys_give_one_mini_batch_per_key_across_files(tmp_path):
    files = {
        "1.csv": pd.DataFrame({"k": ["b", "a", "b"], "n": [1, 2, 3]}),
        "2.csv": pd.DataFrame({"k": ["a", "c"], "n": [4, 5]}),
        "3.csv": pd.DataFrame({"k": ["c", "b", "a"], "n": [6, 7, 8]}),
    }
    for name, frame in files.items():
        frame.to_csv(tmp_path / name, index=False)
    mbs = batches(tmp_path, 1, partition_keys=("k",))
    assert [(TableKind.chunk(mb).key_value, mb.count) for mb in mbs] == [({"k": "b"}, 3), ({"k": "a"}, 3), ({"k": "c"}, 2)]
    cache = {}
    groups = [reader.read_chunk(TableKind.chunk(mb), {}, cache)["n"].tolist() for mb in mbs]
    assert groups == [[1, 3, 7], [2, 4, 8], [5, 6]]


def test_partition_keys_with_two_columns_and_a_missing_key(tmp_path):
    pd.DataFrame({"a": [1, 1, 2], "b": ["x", "y", "x"], "n": [1, 2, 3]}).to_csv(tmp_path / "f.csv", index=False)
    mbs = batches(tmp_path / "f.csv", 1, partition_keys=("a", "b"))
    assert [TableKind.chunk(mb).key_value for mb in mbs] == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 2, "b": "x"}]
    with pytest.raises(DatasetError, match=r"has no column 'c' named in partition_keys \(columns: a, b, n\)"):
        batches(tmp_path / "f.csv", 1, partition_keys=("c",))


def test_partition_keys_over_csv_gzip_and_parquet_files_read_each_in_its_format(tmp_path):
    pd.DataFrame({"k": ["a", "b"], "n": [1, 2]}).to_csv(tmp_path / "1.csv", index=False)
    with gzip.open(tmp_path / "2.csv.gz", "wt") as handle:
        pd.DataFrame({"k": ["b", "a"], "n": [3, 4]}).to_csv(handle, index=False)
    pd.DataFrame({"k": ["a"], "n": [5]}).to_parquet(tmp_path / "3.parquet", index=False)
    mbs = batches(tmp_path, 1, partition_keys=("k",))
    assert [reader.read_chunk(TableKind.chunk(mb), {})["n"].tolist() for mb in mbs] == [[1, 4, 5], [2, 3]]


def test_nan_partition_keys_form_one_group_across_files_and_datetimes_are_refused(tmp_path):
    write(tmp_path / "n1.csv", "k,v\n1,a\n,b\n2,c\n")
    write(tmp_path / "n2.csv", "k,v\n1,d\n,e\n")
    mbs = batches(tmp_path, 1, partition_keys=("k",))
    assert [(TableKind.chunk(mb).key_value, mb.count) for mb in mbs] == [({"k": 1.0}, 2), ({"k": None}, 2), ({"k": 2.0}, 1)]
    assert [reader.read_chunk(TableKind.chunk(mb), {})["v"].tolist() for mb in mbs] == [["a", "d"], ["b", "e"], ["c"]]
    pd.DataFrame({"d": pd.to_datetime(["2024-01-01", "2024-01-02"]), "v": [1, 2]}).to_parquet(tmp_path / "t.parquet")
    with pytest.raises(DatasetError, match=r"partition key column 'd' holds Timestamp values; partition_keys support text"):
        batches(tmp_path / "t.parquet", 1, partition_keys=("d",))


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
