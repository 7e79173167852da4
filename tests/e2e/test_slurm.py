"""The workflow on a real one-node SLURM cluster (scripts/slurm_single_node.sh) with profiles/slurm:
one SLURM job per shard, the same merged output as a local run."""

import json
import os

import pytest

from helpers import write

pytestmark = pytest.mark.slow

# Each item: its line, plus a record of the SLURM job that ran it (for the overlap check).
SCRIPT = """
    import json
    import os
    import time

    from snakebatch import EntryScript

    def init():
        pass

    def run(mini_batch):
        start = time.time()
        time.sleep(1.0)
        out = []
        for path in mini_batch:
            name = os.path.basename(path)
            record = {"job": os.environ.get("SLURM_JOB_ID"), "task": os.environ.get("SLURM_ARRAY_TASK_ID"),
                      "start": start, "end": time.time()}
            with open(os.path.join(EntryScript().output_dir, name + ".json"), "w") as handle:
                json.dump(record, handle)
            out.append(name + ": " + open(path).read().strip())
        return out
"""


def slurm_args(cluster):
    """profiles/slurm with what the test cluster needs: its partition, no accounting (squeue), a
    short wait before the first status check, small requests."""
    return ["--profile", "profiles/slurm", "--slurm-status-command", "squeue",
            "--slurm-init-seconds-before-status-checks", "2",
            "--default-resources", f"slurm_partition={cluster['partition']}", "runtime=10", "mem_mb=500"]


def setup(workflow, n=9, **config):
    for i in range(n):
        write(workflow.path("data", f"item{i:03d}.txt"), f"{i * i}\n")
    write(workflow.path("scripts", "where.py"), SCRIPT)
    workflow.write_config({"run_name": "sq", "input": {"path": "data"}, "entry_script": "where.py",
                           "source_directory": "scripts", "mini_batch_size": 1, "append_row_file_name": "out.txt",
                           "process_count_per_node": 3, **config})


def test_slurm_run_matches_the_local_run(slurm_cluster, workflow, tmp_path):
    from conftest import copy_workflow

    local = copy_workflow(tmp_path / "local")
    setup(local)
    local.run(cores=3)
    setup(workflow)
    proc = workflow.run(*slurm_args(slurm_cluster), timeout=300)
    assert workflow.read("results", "sq", "out.txt") == local.read("results", "sq", "out.txt") == "".join(
        f"item{i:03d}.txt: {i * i}\n" for i in range(9))
    summary = json.loads(workflow.read("results", "sq", "summary.json"))
    assert (summary["status"], summary["items"], summary["succeeded"]) == ("succeeded", 9, 9)
    log = proc.stdout + proc.stderr
    assert log.count("has been submitted with SLURM jobid") == 3  # the profile's default: one sbatch per shard
    assert "localrule partition" in log and "localrule gather" in log
    records = [json.loads(workflow.read("results", "sq", "outputs", f"item{i:03d}.txt.json")) for i in range(9)]
    assert all(r["job"] for r in records)
    jobs = {}
    for r in records:
        span = jobs.setdefault((r["job"], r["task"]), [r["start"], r["end"]])
        span[0], span[1] = min(span[0], r["start"]), max(span[1], r["end"])
    assert len(jobs) == 3  # one SLURM job (array task) per shard
    spans = list(jobs.values())
    overlapping = [(a, b) for i, a in enumerate(spans) for b in spans[i + 1:] if a[0] < b[1] and b[0] < a[1]]
    assert overlapping, f"no two shard jobs ran at the same time: {spans}"


@pytest.mark.parametrize("interrupt", [["scancel"], ["scontrol", "requeue"]], ids=["scancel", "requeue"])
def test_a_shard_job_cancelled_mid_run_is_resubmitted_and_reuses_its_mini_batches(slurm_cluster, workflow, interrupt):
    """scancel: Snakemake sees the job fail and submits it again (profile retries); scontrol
    requeue: SLURM runs the same job again. Either way each item is merged exactly once and what
    the shard finished before is reused."""
    import subprocess
    import sys
    import time

    setup(workflow, n=12)
    write(workflow.path("scripts", "where.py"), SCRIPT.replace("time.sleep(1.0)", "time.sleep(1.5)"))
    args = [sys.executable, "-m", "snakemake", *slurm_args(slurm_cluster)]
    proc = subprocess.Popen(args, cwd=workflow.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    node_log = workflow.path("results", "sq", "logs", "sys", "node", "shard-00000.log")
    record = workflow.path("results", "sq", "outputs", "item000.txt.json")
    deadline = time.time() + 180
    while time.time() < deadline:  # shard 0 has finished two of its four mini-batches
        if os.path.exists(node_log) and "mini-batch 1:" in workflow.read(node_log) and os.path.exists(record):
            break
        time.sleep(0.2)
    else:
        proc.kill()
        raise AssertionError("shard 0 did not get going:\n" + proc.communicate()[0])
    first_job = json.loads(workflow.read(record))["job"]
    subprocess.run([*interrupt, first_job], check=True)
    try:
        out, _ = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:  # no snakemake left behind to hold the cluster
        proc.kill()
        raise AssertionError("the run did not end within 300 s:\n" + proc.communicate()[0]) from None
    assert proc.returncode == 0, out
    assert workflow.read("results", "sq", "out.txt") == "".join(f"item{i:03d}.txt: {i * i}\n" for i in range(12))
    summary = json.loads(workflow.read("results", "sq", "summary.json"))
    assert (summary["status"], summary["items"], summary["succeeded"], summary["mini_batches"]) == (
        "succeeded", 12, 12, 12)
    assert summary["reused_mini_batches"] >= 2  # what shard 0 finished before it was cancelled
    shard0 = [json.loads(workflow.read("results", "sq", "outputs", f"item{i:03d}.txt.json")) for i in range(4)]
    assert shard0[0]["job"] == first_job
    if interrupt == ["scancel"]:
        assert shard0[-1]["job"] != first_job  # the last mini-batch ran in the resubmitted job
    # the shard's runner started twice: once before the interruption, once after (a resubmitted
    # job, or the requeued one's second start under the same job id)
    assert workflow.read(node_log).count("shard 0/3: 4 mini-batch(es)") == 2
    assert "reused" in workflow.read(node_log)
