"""Fault injection end to end: random (seeded) fault schedules over a small dataset - raise, hang,
``os._exit``, SIGKILL of the worker, a wrong return type, at random items and tries - and random
SIGKILLs of the whole run with resume (twice, then a run to the end). The merged output is the fault-free output minus exactly
the items that failed every try, and errors.jsonl lists exactly those, with their exception."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from faults import EXCEPTION_OF, schedule, setup
from squares import expected


def _failed(workflow):
    with open(workflow.path("results", "sq", "errors.jsonl"), encoding="utf-8") as handle:
        return {os.path.basename(r["item"]): r["exception"] for r in map(json.loads, handle)}


def _check(workflow, plan, n):
    permanent = plan["permanent"]
    skip = {int(name[4:7]) for name in permanent}
    assert workflow.read("results", "sq", "out.txt") == expected(n, skip=skip)
    assert _failed(workflow) == {name: EXCEPTION_OF[action] for name, action in permanent.items()}
    summary = json.loads(workflow.read("results", "sq", "summary.json"))
    assert (summary["items"], summary["succeeded"], summary["failed"]) == (n, n - len(permanent), len(permanent))
    assert os.path.exists(workflow.path("results", "sq", "_SUCCESS"))


@pytest.mark.slow
def test_a_random_fault_schedule_loses_only_the_items_that_fail_every_try(workflow):
    plan = schedule(1, 24)   # one run (each costs seconds): every permanent action once, 8 transient items
    assert sorted(plan["permanent"].values()) == ["exit", "raise", "sigkill", "wrongtype"]
    setup(workflow, plan)
    workflow.run()
    _check(workflow, plan, 24)
    # every transient item was called at least once more than its faults
    for name, actions in plan["transient"].items():
        assert os.path.getsize(workflow.path("attempts", name)) > len(actions)


@pytest.mark.slow
def test_random_kills_of_the_whole_run_resume_to_the_fault_free_output(workflow):
    rng = random.Random(7)
    plan = schedule(7, 16, permanent=2, transient=5, hangs=0)
    setup(workflow, plan, n=16, mini_batch_size=2, environment_variables={"FAULT_DELAY": "0.3"})
    kills = 0
    store = workflow.path("results", "sq", "minibatches")

    def finished():
        return sum(1 for _, _, names in os.walk(store) for n in names if n.endswith(".json") and not n.startswith(".tmp"))

    for _ in range(2):
        proc = subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "2"], cwd=workflow.root,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                                env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
        target, deadline = finished() + rng.randint(1, 2), time.time() + 120
        while proc.poll() is None and finished() < target and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.4))   # somewhere inside the next mini-batch (or a worker restart)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)   # snakemake, its shard runners and their workers
            kills += 1
        proc.wait()
        workflow.run("--unlock")
    workflow.run()
    _check(workflow, plan, 16)
    assert kills == 2
