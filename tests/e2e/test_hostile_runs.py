"""Hostile runs: two snakemake runs on one run_name at once, the disk filling up during a shard
and during gather (ENOSPC injected at fsync by tests/e2e/enospc/sitecustomize.py; a real small
tmpfs as well where this machine lets root mount one), and SIGTERM / SIGINT sent to snakemake
alone during a run: no worker outlives it (checked by PID) and a rerun resumes to the exact
output."""

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from helpers import tagged_processes, write
from squares import expected, setup

pytestmark = pytest.mark.slow

ENOSPC_HOOK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "enospc")
SLOW_SCRIPT = """
    import os, time

    def run(mini_batch):
        time.sleep(float(os.environ.get("DELAY", "0.3")))
        flag, after = os.environ.get("FULL_FLAG"), os.environ.get("FULL_AFTER")
        if flag and after and os.path.basename(mini_batch[0]) >= after and not os.path.exists(flag + ".done"):
            open(flag + ".done", "w").close()
            ballast = os.environ.get("FULL_BALLAST")
            if ballast:                        # a real small disk: fill it
                try:
                    with open(ballast, "wb") as handle:
                        while True:
                            handle.write(b"x" * 65536)
                            handle.flush()
                except OSError:
                    pass
            else:
                open(flag, "w").close()        # the injected one: full from here on
        return [os.path.basename(p) + ": " + open(p).read().strip() for p in mini_batch]
"""


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONUNBUFFERED="1", **extra)
    return env


def _start(workflow, env, *args):
    return subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "2", *args], cwd=workflow.root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _finished(workflow, run="sq"):
    store = workflow.path("results", run, "minibatches")
    return sum(1 for _, _, names in os.walk(store) for n in names if n.endswith(".json") and not n.startswith(".tmp"))


def _wait_for(condition, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def _tagged(tag):
    """PIDs of live processes whose environment holds HOSTILE_TAG=tag."""
    return tagged_processes("HOSTILE_TAG", tag)


def test_two_runs_on_one_run_name_at_once_one_fails_clearly_and_outputs_never_interleave(workflow):
    setup(workflow, n=16, mini_batch_size=1, environment_variables={"DELAY": "1.0"})
    write(workflow.path("scripts", "square.py"), SLOW_SCRIPT)
    first = _start(workflow, _env())
    assert _wait_for(lambda: _finished(workflow) >= 1)
    second = _start(workflow, _env())
    out, err = second.communicate(timeout=120)
    assert second.returncode != 0
    assert "Error: Directory cannot be locked." in out + err
    first.communicate(timeout=300)
    assert first.returncode == 0
    assert workflow.read("results", "sq", "out.txt") == expected(16)
    assert json.loads(workflow.read("results", "sq", "summary.json"))["status"] == "succeeded"


def _full_disk_env(workflow, pattern):
    return _env(PYTHONPATH=ENOSPC_HOOK, HOSTILE_ENOSPC_PATTERN=pattern, HOSTILE_ENOSPC_FLAG=workflow.path("disk-full"))


def _nothing_complete(workflow):
    results = workflow.path("results", "sq")
    assert not os.path.exists(os.path.join(results, "_SUCCESS"))
    assert not os.path.exists(os.path.join(results, "out.txt"))
    assert json.loads(workflow.read("results", "sq", "summary.json"))["status"] in ("failed", "stale")
    leftovers = [os.path.join(d, n) for d, _, names in os.walk(results) for n in names if n.startswith(".tmp-")]
    assert leftovers == []


@pytest.fixture
def small_disk(workflow):
    """A 2 MB tmpfs mounted on the run folder results/sq/ when this machine lets root mount one
    (unmounted at the end); None elsewhere, where the test injects ENOSPC instead (also with
    SNAKEBATCH_TEST_NO_MOUNT=1, to try that path here)."""
    folder = workflow.path("results", "sq")
    os.makedirs(folder)
    mounted = os.geteuid() == 0 and not os.environ.get("SNAKEBATCH_TEST_NO_MOUNT") and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", folder],
                                                   capture_output=True).returncode == 0
    yield folder if mounted else None
    if mounted:
        subprocess.run(["umount", "-l", folder], check=True)


def test_the_disk_filling_up_during_a_shard_fails_clearly_and_a_rerun_after_freeing_it_finishes_exactly(
        workflow, small_disk):
    ballast = os.path.join(small_disk, "ballast") if small_disk else ""
    setup(workflow, n=12, mini_batch_size=2, process_count_per_node=1,
          environment_variables={"FULL_FLAG": workflow.path("disk-full"), "FULL_AFTER": "item006.txt", "DELAY": "0",
                                 "FULL_BALLAST": ballast})
    write(workflow.path("scripts", "square.py"), SLOW_SCRIPT)
    env = _full_disk_env(workflow, r"/results/sq/(minibatches|shards)/") if not small_disk else _env()
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1"], cwd=workflow.root, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    tail = proc.stderr.split("snakebatch: run 'sq' failed.")[-1]
    if small_disk:   # the shard's own error could not be written to its log on the full disk
        assert tail.strip().startswith(f"The disk holding results/sq/ is full ("), proc.stderr[-3000:]
    else:
        assert "No space left on device (errno 28); free space and run the same command again: finished " \
               "mini-batches are kept" in tail, proc.stderr[-3000:]
    assert "Traceback" not in tail
    assert not os.path.exists(workflow.path("results", "sq", "_SUCCESS"))
    assert not os.path.exists(workflow.path("results", "sq", "out.txt"))
    results = workflow.path("results", "sq")
    assert [n for _, _, names in os.walk(results) for n in names if n.startswith(".tmp-")] == []
    assert _finished(workflow) == 3   # items 0-5: stored before the disk filled

    os.unlink(ballast or workflow.path("disk-full"))   # space freed
    again = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1"], cwd=workflow.root, env=env,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert workflow.read("results", "sq", "out.txt") == expected(12)
    assert json.loads(workflow.read("results", "sq", "summary.json"))["reused_mini_batches"] == 3


def test_the_disk_filling_up_during_gather_fails_clearly_and_a_rerun_after_freeing_it_finishes_exactly(workflow):
    setup(workflow, n=12, mini_batch_size=2)
    write(workflow.path("disk-full"), "")
    env = _full_disk_env(workflow, r"/results/sq/\.tmp-out\.txt-")
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2"], cwd=workflow.root, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    tail = proc.stderr.split("snakebatch: run 'sq' failed.")[-1]
    assert "No space left on device (errno 28); free space and run the same command again: finished mini-batches " \
           "are kept" in tail, proc.stderr[-3000:]
    assert "Traceback" not in tail
    _nothing_complete(workflow)

    os.unlink(workflow.path("disk-full"))
    again = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2"], cwd=workflow.root, env=env,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert workflow.read("results", "sq", "out.txt") == expected(12)
    assert "infer_shard" not in again.stdout + again.stderr.split("Job stats:")[-1].split("Select jobs")[0]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_snakemake_alone_leaves_no_worker_behind_and_a_rerun_resumes(workflow, signum):
    setup(workflow, n=20, mini_batch_size=1)
    write(workflow.path("scripts", "square.py"), SLOW_SCRIPT)
    tag = uuid.uuid4().hex
    proc = _start(workflow, _env(HOSTILE_TAG=tag))
    seen = set()

    def some_done():
        seen.update(_tagged(tag))
        return _finished(workflow) >= 3
    assert _wait_for(some_done)
    seen.update(_tagged(tag))
    os.kill(proc.pid, signum)   # snakemake only, as `kill PID` or a scheduler would
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert len(seen) >= 5   # snakemake, 2 shard runners, their workers (and job shells)
    assert _wait_for(lambda: not _tagged(tag), timeout=5), f"left running: {_tagged(tag)}"
    assert _finished(workflow) < 20   # stopped, not run to the end
    how = "stopped by SIGTERM; its shard jobs were stopped too" if signum == signal.SIGTERM else \
        "interrupted by the user (Ctrl-C, SIGINT)"
    assert f"snakebatch: run 'sq' interrupted.\nThe run was {how}." in stderr
    workflow.run()
    assert workflow.read("results", "sq", "out.txt") == expected(20)
    assert json.loads(workflow.read("results", "sq", "summary.json"))["reused_mini_batches"] >= 3
