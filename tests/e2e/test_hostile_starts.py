"""Hostile starts and reruns (issue 21): an init() that fails in two runs in a row, each run
reporting its own failure and leaving no file dated in the future; a results folder that cannot
be used at start (a file in its way, a read-only or full disk), reported as one snakebatch line
naming the path and the OS cause."""

import os
import subprocess
import sys
import time

import pytest

from helpers import write
from squares import expected, setup

pytestmark = pytest.mark.slow

FAILING_INIT = "def init():\n    raise RuntimeError('model gone')\n\n\ndef run(mini_batch):\n    return []\n"


def _future_files(root):
    now = time.time() + 5
    return [os.path.join(d, n) for d, _, names in os.walk(root) for n in names
            if os.stat(os.path.join(d, n), follow_symlinks=False).st_mtime > now]


def test_an_init_that_fails_in_two_runs_in_a_row_is_reported_by_each_and_no_file_is_dated_ahead(workflow):
    setup(workflow, n=6, mini_batch_size=2)
    write(workflow.path("scripts", "square.py"), FAILING_INIT)
    for attempt in range(2):
        proc = workflow.run(check=False)
        console = proc.stdout + proc.stderr
        assert proc.returncode != 0
        assert "clock skew" not in console and "older modification time" not in console, console[-3000:]
        assert "No snakebatch stage reported an error" not in console
        tail = proc.stderr.split("snakebatch: run 'sq' failed.")[-1]
        assert "The run failed: the entry script failed to start in 2 of 2 shard(s)." in tail, tail
        assert "failed 3 times in a row: RuntimeError: model gone" in tail
        assert "infer_shard" in proc.stdout + proc.stderr.split("Job stats:")[-1].split("Select jobs")[0]
        assert _future_files(workflow.path("results")) == []
        status = subprocess.run([sys.executable, "-m", "snakebatch", "status", "results/sq"], cwd=workflow.root,
                                env={**os.environ, "PYTHONPATH": workflow.path("workflow")},
                                capture_output=True, text=True, timeout=60)
        assert "init() of entry_script" in status.stdout and "RuntimeError: model gone" in status.stdout, status.stdout
    write(workflow.path("scripts", "square.py"), "def init():\n    pass\n\n\n" + "def run(mini_batch):\n"
          "    import os\n    return [os.path.basename(p) + ': ' + open(p).read().strip() for p in mini_batch]\n")
    workflow.run()
    assert workflow.read("results", "sq", "out.txt") == expected(6)
