"""User code in its box, in a whole run (issue 21): an entry script named logging.py whose run()
changes the working directory on every call and, on one item, starts a child in a session of its
own and hangs past run_invocation_timeout. Every other item is merged as listed, the hung one is
the one failure, and no process the script started outlives the run (checked by a tag in their
environment)."""

import json
import os
import uuid

import pytest

from helpers import tagged_processes, write
from squares import expected, setup

pytestmark = pytest.mark.slow

SCRIPT = """
    import logging, os, subprocess, sys, time

    log = logging.getLogger(__name__)

    def run(mini_batch):
        out = []
        for path in mini_batch:
            text = open(path).read().strip()          # a relative path, from the run's folder
            if os.path.basename(path) == "item005.txt":
                subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
                time.sleep(120)
            out.append(os.path.basename(path) + ": " + text)
        os.chdir("/")
        log.info("done with %d item(s)", len(out))
        return out
"""


def _tagged(tag):
    """PIDs of live processes whose environment holds USER_CODE_TAG=tag."""
    return tagged_processes("USER_CODE_TAG", tag)


def test_a_script_named_logging_py_that_wanders_and_detaches_a_child_leaves_nothing_behind(workflow, monkeypatch):
    tag = uuid.uuid4().hex
    monkeypatch.setenv("USER_CODE_TAG", tag)
    setup(workflow, n=8, mini_batch_size=1, run_max_try=1, run_invocation_timeout=3, entry_script="logging.py")
    os.rename(workflow.path("scripts", "square.py"), workflow.path("scripts", "logging.py"))
    write(workflow.path("scripts", "logging.py"), SCRIPT)
    proc = workflow.run()
    assert workflow.read("results", "sq", "out.txt") == expected(8, skip={5})
    [error] = [json.loads(line) for line in workflow.read("results", "sq", "errors.jsonl").splitlines()]
    assert (error["item"], error["error"].split(":", 1)[0]) == ("data/item005.txt", "MiniBatchTimeout")
    assert "snakebatch: run 'sq' succeeded: 7 of 8 items succeeded, 1 failed -> results/sq/out.txt\n" in proc.stderr
    assert _tagged(tag) == set()
