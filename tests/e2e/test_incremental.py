"""End to end: the daily "score the new files" rerun recomputes the new files only (SPEC §5)."""

import json

import pytest

from helpers import write
from squares import expected

pytestmark = pytest.mark.slow

# squares.SCRIPT, logging each run() call's file names to $RUN_LOG
LOGGED = """
    import os

    def run(mini_batch):
        with open(os.environ["RUN_LOG"], "a") as f:
            f.write(",".join(os.path.basename(p) for p in mini_batch) + "\\n")
        return [os.path.basename(p) + ": " + open(p).read().strip() for p in mini_batch]
"""


def test_one_percent_new_files_spread_over_the_order_recompute_exactly_those(workflow, tmp_path):
    n, new = 300, (4, 151, 298)  # 1% of the files, near the front, in the middle and at the end
    run_log = tmp_path / "run.log"
    for i in range(n):
        if i not in new:
            write(workflow.path("data", f"item{i:03d}.txt"), f"{i * i}\n")
    write(workflow.path("scripts", "logged.py"), LOGGED)
    config = {"run_name": "sq", "input": {"path": "data", "pattern": "*.txt"}, "entry_script": "logged.py",
              "source_directory": "scripts", "mini_batch_size": 10, "append_row_file_name": "out.txt",
              "environment_variables": {"RUN_LOG": str(run_log)}}
    workflow.write_config(config)
    workflow.run()
    first = run_log.read_text().splitlines()
    assert sum(len(call.split(",")) for call in first) == n - len(new)
    run_log.write_text("")

    for i in new:
        write(workflow.path("data", f"item{i:03d}.txt"), f"{i * i}\n")
    workflow.run()
    calls = run_log.read_text().splitlines()
    assert sorted(calls) == ["item004.txt", "item151.txt", "item298.txt"]  # 3 of 300 items: 1%
    out = workflow.read("results", "sq", "out.txt")
    assert out == expected(n)
    summary = json.loads(workflow.read("results", "sq", "summary.json"))
    assert (summary["items"], summary["succeeded"], summary["mini_batches"]) == (300, 300, 30)

    run_log.write_text("")
    workflow.write_config({**config, "run_name": "fresh", "allow_reuse": False})
    workflow.run()
    assert sum(len(call.split(",")) for call in run_log.read_text().splitlines()) == n
    assert workflow.read("results", "fresh", "out.txt") == out  # byte-identical to a fresh run
