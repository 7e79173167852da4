"""Threads and GPUs per worker, seen from the entry script (threads_per_process, gpus_per_process)."""

import json
import os

import pytest

from helpers import write

pytestmark = pytest.mark.slow

# Each mini-batch of one file writes what its worker sees to outputs/{file}.json: the environment,
# the time the run() started and ended. run() sleeps so the shards of a run overlap.
SCRIPT = """
    import json
    import os
    import time

    from snakebatch import EntryScript

    def init():
        pass

    def run(mini_batch):
        start = time.time()
        time.sleep(0.5)
        for path in mini_batch:
            record = {"env": dict(os.environ), "start": start, "end": time.time(), "pid": os.getpid()}
            name = os.path.basename(path) + ".json"
            with open(os.path.join(EntryScript().output_dir, name), "w") as handle:
                json.dump(record, handle)
        return [os.path.basename(p) for p in mini_batch]
"""

THREAD_VARIABLES = ["OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"]


def setup(workflow, n, **config):
    for i in range(n):
        write(workflow.path("data", f"item{i:03d}.txt"), f"{i}\n")
    write(workflow.path("scripts", "env_probe.py"), SCRIPT)
    workflow.write_config({"run_name": "env", "input": {"path": "data"}, "entry_script": "env_probe.py",
                           "source_directory": "scripts", "mini_batch_size": 1, **config})


def records(workflow, n):
    out = workflow.path("results", "env", "outputs")
    return [json.loads(workflow.read(out, f"item{i:03d}.txt.json")) for i in range(n)]


def test_threads_per_process_caps_the_numeric_libraries_and_the_user_env_wins(workflow):
    setup(workflow, 2, threads_per_process=3, process_count_per_node=1,
          environment_variables={"MKL_NUM_THREADS": "7"})
    workflow.run(cores=3)
    for record in records(workflow, 2):
        assert {k: record["env"].get(k) for k in THREAD_VARIABLES} == {
            "OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": "7", "OPENBLAS_NUM_THREADS": "3",
            "TF_NUM_INTRAOP_THREADS": "3", "TF_NUM_INTEROP_THREADS": "3"}
    assert workflow.read("results", "env", "parallel_run_step.txt") == "item000.txt\nitem001.txt\n"


def test_default_is_one_thread_per_worker(workflow):
    setup(workflow, 1, process_count_per_node=1)
    workflow.run(cores=1)
    (record,) = records(workflow, 1)
    assert {k: record["env"].get(k) for k in THREAD_VARIABLES} == dict.fromkeys(THREAD_VARIABLES, "1")
    assert "CUDA_VISIBLE_DEVICES" not in record["env"] or record["env"]["CUDA_VISIBLE_DEVICES"] == \
        os.environ.get("CUDA_VISIBLE_DEVICES")


def test_running_workers_never_share_a_gpu(workflow):
    # 4 shards of 2 one-file mini-batches, 1 GPU each out of a pool of 2, 4 cores: the scheduler runs
    # 2 shards at once, each with its own index; a freed index is reused by the next shard.
    setup(workflow, 8, gpus_per_process=1, process_count_per_node=4)
    workflow.run("--resources", "gpu=2", cores=4)
    seen = records(workflow, 8)
    assert sorted({r["env"]["CUDA_VISIBLE_DEVICES"] for r in seen}) == ["0", "1"]
    by_worker = {}
    for record in seen:
        by_worker.setdefault(record["pid"], []).append(record)
    assert len(by_worker) == 4
    spans = [(min(r["start"] for r in rs), max(r["end"] for r in rs), rs[0]["env"]["CUDA_VISIBLE_DEVICES"])
             for rs in by_worker.values()]
    assert all(len({r["env"]["CUDA_VISIBLE_DEVICES"] for r in rs}) == 1 for rs in by_worker.values())
    overlapping = [(a, b) for i, a in enumerate(spans) for b in spans[i + 1:] if a[0] < b[1] and b[0] < a[1]]
    assert overlapping, "two shards should have run at the same time"
    assert all(a[2] != b[2] for a, b in overlapping)
    # at most 2 shards (the pool) at any moment
    assert max(sum(1 for s in spans if s[0] <= t[0] < s[1]) for t in spans) <= 2
    plan = json.loads(workflow.read("results", "env", "plan.json"))
    assert plan["gpu_pool"] == 2


def test_workers_beyond_the_gpus_get_none_with_a_warning(workflow):
    # no --resources gpu: the pool is what nvidia-smi lists (none on a CPU machine)
    if os.path.exists("/dev/nvidia0"):
        pytest.skip("this machine has GPUs")
    setup(workflow, 1, gpus_per_process=1, process_count_per_node=1)
    workflow.run(cores=1)
    (record,) = records(workflow, 1)
    assert record["env"]["CUDA_VISIBLE_DEVICES"] == ""
    node_log = workflow.read("results", "env", "logs", "sys", "node", "shard-00000.log")
    assert ("gpus_per_process is 1 but only 0 of the 0 GPU(s) (nvidia-smi) are free: this worker runs without "
            "a GPU (CUDA_VISIBLE_DEVICES is empty)") in node_log
