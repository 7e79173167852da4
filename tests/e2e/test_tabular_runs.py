"""Whole runs over tabular input (issue 4): every output format round-trips through pandas, a
malformed row fails only its mini-batch, a poison row is isolated to the record, partition keys
give each group exactly once with its context, mixed result schemas fail clearly."""

import json
import math
import os

import pandas as pd
import pytest

from helpers import write

pytestmark = pytest.mark.slow

IDENTITY = """
    def init():
        pass
    def run(mini_batch):
        return mini_batch
"""

WEIRD = ["plain", "with space", 'quote " inside', "comma, here", "ünïcödé ✓", "", "new\nline", "tab\there"]


def source_frame(n=24):
    return pd.DataFrame({"id": list(range(n)),
                         "name": [f"item {i}" for i in range(n)],
                         "score": [math.nan if i % 5 == 0 else i / 3 for i in range(n)]})


def setup(workflow, script, files=None, **config):
    files = files if files is not None else {"a.csv": source_frame().iloc[:10], "b.csv": source_frame().iloc[10:]}
    os.makedirs(workflow.path("data"), exist_ok=True)
    for name, frame in files.items():
        path = workflow.path("data", name)
        if name.endswith(".parquet"):
            frame.to_parquet(path, index=False)
        else:
            frame.to_csv(path, index=False)
    write(workflow.path("scripts", "table.py"), script)
    workflow.write_config({"run_name": "tab", "input": {"path": "data", "type": "tabular"},
                           "entry_script": "table.py", "source_directory": "scripts",
                           "mini_batch_size": 64, **config})


# run() returns the input with extra columns of awkward values (no line breaks for txt).
DECORATE = """
    import math
    import pandas as pd

    WEIRD = {weird!r}

    def init():
        pass

    def run(mini_batch):
        out = mini_batch.copy()
        out["weird"] = [WEIRD[i % len(WEIRD)] for i in out["id"]]
        out["maybe"] = [math.nan if i % 4 == 0 else float(i) for i in out["id"]]
        return out
"""


def expected_frame(weird):
    frame = source_frame()
    frame["weird"] = [weird[i % len(weird)] for i in frame["id"]]
    frame["maybe"] = [math.nan if i % 4 == 0 else float(i) for i in frame["id"]]
    return frame


def test_csv_output_round_trips_exactly_with_the_header_once(workflow):
    weird = [w for w in WEIRD if w != ""]   # "" and NaN are the same empty field in CSV
    setup(workflow, DECORATE.format(weird=weird), append_row_format="csv", append_row_file_name="out.csv")
    workflow.run()
    text = workflow.read("results", "tab", "out.csv")
    assert text.startswith("id,name,score,weird,maybe\n")
    assert text.count("id,name,score,weird,maybe") == 1
    summary = json.loads(workflow.read("results", "tab", "summary.json"))
    assert (summary["items"], summary["succeeded"]) == (24, 24)
    assert summary["mini_batches"] > 2
    back = pd.read_csv(workflow.path("results", "tab", "out.csv"))
    pd.testing.assert_frame_equal(back, expected_frame(weird), check_dtype=False)
    assert back["weird"].tolist() == expected_frame(weird)["weird"].tolist()


def test_parquet_output_keeps_the_returned_schema_and_values(workflow):
    setup(workflow, DECORATE.format(weird=WEIRD), append_row_format="parquet", append_row_file_name="out.parquet",
          files={"a.parquet": source_frame().iloc[:10], "b.parquet": source_frame().iloc[10:]})
    workflow.run()
    back = pd.read_parquet(workflow.path("results", "tab", "out.parquet"))
    pd.testing.assert_frame_equal(back, expected_frame(WEIRD), check_dtype=False)
    assert back["weird"].tolist() == expected_frame(WEIRD)["weird"].tolist()   # "" stays "", NaN stays NaN
    assert str(back["id"].dtype) == "int64"


def test_txt_output_is_parallelrunsteps_space_separated_rows(workflow):
    weird = [w for w in WEIRD if "\n" not in w and "\t" not in w]   # txt writes one line per row
    setup(workflow, DECORATE.format(weird=weird), append_row_file_name="out.txt")
    workflow.run()
    lines = workflow.read("results", "tab", "out.txt").splitlines()
    assert len(lines) == 24
    assert lines[1] == '1 "item 1" 0.3333333333333333 "with space" 1.0'
    back = pd.read_csv(workflow.path("results", "tab", "out.txt"), sep=" ", header=None,
                       names=["id", "name", "score", "weird", "maybe"], keep_default_na=False, na_values=[""])
    expected = expected_frame(weird)
    assert back["id"].tolist() == list(range(24))
    assert back["weird"].fillna("").tolist() == expected["weird"].tolist()


def test_a_malformed_row_fails_only_its_mini_batch_naming_file_and_line(workflow):
    rows = "id,name\n" + "".join(f"{i},n{i}\n" for i in range(6)) + "6,n6,EXTRA\n" + "".join(f"{i},n{i}\n" for i in range(7, 12))
    os.makedirs(workflow.path("data"), exist_ok=True)
    write(workflow.path("data", "bad.csv"), rows)
    setup(workflow, IDENTITY, files={}, mini_batch_size=16, append_row_format="csv", append_row_file_name="out.csv")
    workflow.run()
    # mini-batches of >= 16 bytes: records 0-3 | 4, 5, 6 (the bad one) | 7-10 | 11
    back = pd.read_csv(workflow.path("results", "tab", "out.csv"))
    assert back["id"].tolist() == [0, 1, 2, 3, 7, 8, 9, 10, 11]
    [error] = [json.loads(line) for line in workflow.read("results", "tab", "errors.jsonl").splitlines()]
    assert error["item"] == "data/bad.csv, lines 6-8"
    assert error["exception"] == "TableReadError"
    assert error["message"].startswith("ParserError reading data/bad.csv, lines 6-8: Error tokenizing data. "
                                       "C error: Expected 2 fields in line 8, saw 3")
    assert error["tries"] == 1
    summary = json.loads(workflow.read("results", "tab", "summary.json"))
    assert (summary["items"], summary["succeeded"], summary["failed"], summary["failed_mini_batches"]) == (12, 9, 3, 1)


def test_a_poison_row_is_isolated_to_its_record(workflow):
    setup(workflow, """
        def init():
            pass
        def run(mini_batch):
            if (mini_batch["id"] == 13).any():
                raise ValueError("cannot score id 13")
            return mini_batch[["id"]]
    """, mini_batch_size=10 ** 6, error_threshold=1, run_max_try=1, append_row_format="csv",
        append_row_file_name="out.csv")
    workflow.run()
    assert pd.read_csv(workflow.path("results", "tab", "out.csv"))["id"].tolist() == [i for i in range(24) if i != 13]
    [error] = [json.loads(line) for line in workflow.read("results", "tab", "errors.jsonl").splitlines()]
    assert (error["item"], error["message"]) == ("data/b.csv, record 3", "cannot score id 13")
    summary = json.loads(workflow.read("results", "tab", "summary.json"))
    assert (summary["items"], summary["failed"], summary["mini_batches"]) == (24, 1, 2)


def test_partition_keys_give_each_group_once_with_its_context(workflow):
    files = {f"{n}.csv": pd.DataFrame({"k": keys, "n": values})
             for n, keys, values in ((1, ["x", "y", "x"], [1, 2, 3]), (2, ["z", "x"], [4, 5]), (3, ["y", "z", "y"], [6, 7, 8]))}
    setup(workflow, """
        def init():
            pass
        def run(mini_batch, mini_batch_context):
            out = mini_batch.copy()
            out["group"] = mini_batch_context.partition_key_value["k"]
            out["mini_batch"] = mini_batch_context.minibatch_index
            return out
    """, files=files, partition_keys=["k"], mini_batch_size="1KB", append_row_format="csv",
        append_row_file_name="out.csv")
    proc = workflow.run()
    back = pd.read_csv(workflow.path("results", "tab", "out.csv"))
    assert back.to_dict("list") == {"k": ["x", "x", "x", "y", "y", "y", "z", "z"],
                                    "n": [1, 3, 5, 2, 6, 8, 4, 7],
                                    "group": ["x", "x", "x", "y", "y", "y", "z", "z"],
                                    "mini_batch": [0, 0, 0, 1, 1, 1, 2, 2]}
    assert "partition_keys and mini_batch_size are both set; the keys win" in proc.stderr


def test_parquet_results_whose_types_widen_merge_into_one_schema(workflow):
    setup(workflow, """
        def init():
            pass
        def run(mini_batch):
            out = mini_batch[["id"]].copy()
            first = (mini_batch["id"] < 10).all()
            out["v"] = [None if first else i for i in out["id"]]     # all-null, then int
            out["w"] = [i for i in out["id"]] if first else [i / 2 for i in out["id"]]   # int, then float
            return out
    """, mini_batch_size=10 ** 6, append_row_format="parquet", append_row_file_name="out.parquet")
    workflow.run()
    back = pd.read_parquet(workflow.path("results", "tab", "out.parquet"))
    assert back["id"].tolist() == list(range(24))
    assert back["v"].isna().tolist() == [True] * 10 + [False] * 14
    assert back["w"].tolist() == list(range(10)) + [i / 2 for i in range(10, 24)]


def test_results_with_different_columns_fail_naming_two_mini_batches(workflow):
    setup(workflow, """
        def init():
            pass
        def run(mini_batch):
            out = mini_batch[["id"]].copy()
            if (mini_batch["id"] >= 10).any():
                out["extra"] = 1
            return out
    """, mini_batch_size=10 ** 6, append_row_format="parquet", append_row_file_name="out.parquet")
    proc = workflow.run(check=False)
    assert proc.returncode != 0
    assert ("append_row_format parquet: mini-batch 1 returned schema (id: int64, extra: int64) but mini-batch 0 "
            "returned schema (id: int64); every run() must return the same columns, with compatible types") in proc.stderr
    assert not os.path.exists(workflow.path("results", "tab", "out.parquet"))


def test_empty_and_header_only_files_give_zero_rows_without_a_crash(workflow):
    os.makedirs(workflow.path("data"), exist_ok=True)
    write(workflow.path("data", "a_empty.csv"), "")
    write(workflow.path("data", "b_header.csv"), "id,name,score\n")
    setup(workflow, IDENTITY, files={"c.csv": source_frame().iloc[:3]}, append_row_format="csv", append_row_file_name="out.csv")
    workflow.run()
    assert workflow.read("results", "tab", "out.csv") == "id,name,score\n0,item 0,\n1,item 1,0.3333333333333333\n2,item 2,0.6666666666666666\n"
    os.unlink(workflow.path("data", "c.csv"))   # nothing but empty files: a clear error, as for an empty folder
    proc = workflow.run(check=False)
    assert proc.returncode != 0
    assert ("snakebatch partition: error: input.path: 'data': the tabular dataset has no records (2 file(s), "
            "all empty or header only)") in proc.stderr
    assert not os.path.exists(workflow.path("results", "tab", "out.csv"))


def test_parquet_inputs_whose_schemas_disagree_fail_at_the_partition_naming_the_files(workflow):
    """issue 21 point 9: they failed only at gather, after every shard ran, naming mini-batches."""
    other = source_frame().iloc[10:].assign(name=range(10, 24)).drop(columns=["score"])
    setup(workflow, IDENTITY, files={"a.parquet": source_frame().iloc[:10], "b.parquet": other},
          append_row_format="parquet", append_row_file_name="out.parquet")
    import pyarrow as pa

    text = pa.Table.from_pandas(source_frame()).schema.field("name").type   # string or large_string (pandas 3)
    proc = workflow.run(check=False)
    assert proc.returncode != 0
    assert ("snakebatch partition: error: input files 'data/a.parquet' and 'data/b.parquet' have different Parquet "
            f"schemas: column 'score' is not in 'data/b.parquet'; column 'name' is {text} in 'data/a.parquet' and "
            "int64 in 'data/b.parquet'. Every Parquet file of a tabular dataset needs the same columns, of the "
            "same types") in proc.stderr, proc.stderr[-3000:]
    shards = workflow.path("results", "tab", "shards")
    assert not os.path.exists(shards) or os.listdir(shards) == []
