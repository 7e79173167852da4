"""Datasets given as file:// URLs run exactly as the same data given as plain paths."""

import pandas as pd
import pytest

from helpers import write

pytestmark = pytest.mark.slow

NAMES = """
    def init():
        pass

    def run(mini_batch):
        return [p + ": " + open(p).read().strip() for p in mini_batch]
"""

IDENTITY = """
    def init():
        pass

    def run(mini_batch):
        return mini_batch.assign(double=mini_batch["x"] * 2)
"""


def test_a_file_dataset_as_file_url_gives_the_same_bytes_as_plain_paths(workflow):
    for i in range(7):
        write(workflow.path("data", "sub", f"f{i}.txt"), f"{i * 3}\n")
    write(workflow.path("scripts", "names.py"), NAMES)
    base = {"input": {"path": "data"}, "entry_script": "names.py", "source_directory": "scripts",
            "mini_batch_size": 3, "append_row_file_name": "out.txt"}
    workflow.write_config({**base, "run_name": "plain"})
    workflow.run()
    workflow.write_config({**base, "run_name": "url", "input": {"path": "file://data"}})
    workflow.run()
    plain = workflow.read("results", "plain", "out.txt")
    assert plain == "".join(f"data/sub/f{i}.txt: {i * 3}\n" for i in range(7))
    assert workflow.read("results", "url", "out.txt") == plain


def test_a_tabular_dataset_as_absolute_file_url_gives_the_same_bytes_as_plain_paths(workflow):
    pd.DataFrame({"x": range(40), "name": [f"n{i}" for i in range(40)]}).to_csv(workflow.path("t.csv"), index=False)
    write(workflow.path("scripts", "double.py"), IDENTITY)
    base = {"input": {"type": "tabular", "path": "t.csv"}, "entry_script": "double.py",
            "source_directory": "scripts", "mini_batch_size": 100, "append_row_format": "csv",
            "append_row_file_name": "out.csv"}
    workflow.write_config({**base, "run_name": "plain"})
    workflow.run()
    workflow.write_config({**base, "run_name": "url", "input": {"type": "tabular", "path": "file://" + workflow.path("t.csv")}})
    workflow.run()
    plain = workflow.read("results", "plain", "out.csv")
    assert plain.splitlines()[:3] == ["x,name,double", "0,n0,0", "1,n1,2"]
    assert len(plain.splitlines()) == 41
    assert workflow.read("results", "url", "out.csv") == plain
