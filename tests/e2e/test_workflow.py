"""End to end with a tiny pure-Python entry script: partition -> infer_shard -> gather."""

import json
import os
import re
import shutil
import time

import pytest
import yaml

from helpers import write
from squares import SCRIPT, expected, setup
from snakebatch.infer.job import mark_unfinished

pytestmark = pytest.mark.slow

def partition_files(workflow, run):
    """The files of results/{run}/partition/, the dataset listing's fingerprint as ``{fp}``."""
    names = sorted(os.listdir(workflow.path("results", run, "partition")))
    return [re.sub(r"^listing-[0-9a-f]{16}\.list$", "listing-{fp}.list", name) for name in names]




def test_run_merges_in_order_and_a_second_run_does_nothing(workflow):
    setup(workflow)
    proc = workflow.run()
    assert workflow.read("results", "sq", "out.txt") == expected(23)
    summary = json.loads(workflow.read("results", "sq", "summary.json"))
    assert {k: summary[k] for k in ("status", "items", "succeeded", "failed", "mini_batches")} == {
        "status": "succeeded", "items": 23, "succeeded": 23, "failed": 0, "mini_batches": 6}
    assert partition_files(workflow, "sq") == ["listing-{fp}.list", "shard-00000.json", "shard-00001.json"]
    assert "snakebatch: run 'sq' succeeded: 23 of 23 items succeeded, 0 failed -> results/sq/out.txt" in proc.stderr
    assert workflow.read("results", "sq", "logs", "job_result.txt").startswith("status: succeeded\nitems: 23")

    again = workflow.run()
    assert "Nothing to be done" in again.stdout + again.stderr

    time.sleep(0.01)
    write(workflow.path("data", "item021.txt"), "7\n")
    changed = workflow.run()
    assert "rule partition" in changed.stdout + changed.stderr
    assert workflow.read("results", "sq", "out.txt") == expected(23).replace("item021.txt: 441", "item021.txt: 7")
    summary = json.loads(workflow.read("results", "sq", "summary.json"))
    assert (summary["mini_batches"], summary["reused_mini_batches"]) == (6, 5)


def test_added_file_is_picked_up(workflow):
    setup(workflow, n=5)
    workflow.run()
    write(workflow.path("data", "item005.txt"), "25\n")
    workflow.run()
    assert workflow.read("results", "sq", "out.txt") == expected(6)


def test_seed_resubmission_overrides_with_snakemake_config_syntax(workflow):
    setup(workflow)
    workflow.run("--config", "input={'path': 'data/item003.txt'}", "mini_batch_size=1",
                 "process_count_per_node=1", "run_name=one")
    assert workflow.read("results", "one", "out.txt") == "item003.txt: 9\n"
    assert partition_files(workflow, "one") == ["listing-{fp}.list", "shard-00000.json"]


def test_tolerated_failures_are_isolated_and_reported(workflow):
    setup(workflow, error_threshold=2)
    write(workflow.path("data", "item005.txt"), "bad\n")
    write(workflow.path("data", "item017.txt"), "bad\n")
    workflow.run()
    assert workflow.read("results", "sq", "out.txt") == expected(23, skip=(5, 17))
    errors = [json.loads(line) for line in workflow.read("results", "sq", "errors.jsonl").splitlines()]
    assert [(os.path.basename(e["item"]), e["error"], e["tries"]) for e in errors] == [
        ("item005.txt", "ValueError: unreadable item005.txt", 3), ("item017.txt", "ValueError: unreadable item017.txt", 3)]


def test_exceeded_error_threshold_fails_with_the_root_cause(workflow):
    setup(workflow, error_threshold=1, run_max_try=1)
    for i in (2, 3, 9):
        write(workflow.path("data", f"item{i:03d}.txt"), "bad\n")
    proc = workflow.run(check=False)
    assert proc.returncode != 0
    tail = proc.stderr.strip().splitlines()
    text = "\n".join(tail[-30:])
    assert "snakebatch: run 'sq' failed." in text
    # the shards stop early once 2 failures are counted; 2 or 3 failed depending on timing (and with
    # balanced shards every mini-batch may have run before a shard saw the breach: none stopped early)
    assert re.search(r"The run failed: ([23] failed item\(s\) > error_threshold 1\. \d shard\(s\) stopped early;|"
                     r"3 failed item\(s\) > error_threshold 1\.\n)", text), text
    assert "item002.txt: ValueError: unreadable item002.txt (after 1 try)" in text
    assert not os.path.exists(workflow.path("results", "sq", "out.txt"))
    assert json.loads(workflow.read("results", "sq", "summary.json"))["status"] == "failed"


@pytest.mark.parametrize("config,message", [
    ({"mini_batch_size": "1MB"}, "snakebatch: invalid config: config key 'mini_batch_size': '1MB' is not a file count"),
    ({"run_max_try": 0}, "snakebatch: invalid config: config key 'run_max_try': 0 is less than the minimum of 1"),
    ({"process_count_per_node": 0}, "snakebatch: invalid config: config key 'process_count_per_node': 0 is less than the minimum of 1"),
    ({"mini_batchsize": 3}, "snakebatch: invalid config: config: Additional properties are not allowed ('mini_batchsize' was unexpected)"),
    ({"input": {"path": "missing_folder"}}, "snakebatch: invalid config: input.path: 'missing_folder' does not exist"),
    ({"entry_script": "nope.py"}, "snakebatch: invalid config: entry_script: 'scripts/nope.py' does not exist"),
    ({"input": {"path": "data", "type": "tabular"}, "mini_batch_size": "lots"},
     "snakebatch: invalid config: config key 'mini_batch_size': 'lots' is not a byte size such as 1024, '64KB', '1MB' or '1GB'"),
    ({"input": {"path": "data", "type": "tabular"}, "arguments": ["--run_max_try", "5"]},
     "config key 'arguments': '--run_max_try' is reserved by ParallelRunStep for its own setting; set the config key 'run_max_try' instead"),
])
def test_bad_config_fails_the_dry_run_naming_the_key(workflow, config, message):
    setup(workflow, **config)
    proc = workflow.run("-n", check=False)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr


def test_empty_dataset_fails_the_dry_run_with_a_clear_error(workflow):
    setup(workflow)
    workflow.write_config({"input": {"path": "data", "pattern": "*.png"}, "entry_script": "scripts/square.py"})
    proc = workflow.run("-n", check=False)
    assert proc.returncode != 0
    assert ("snakebatch: invalid input: input.path: no files matching pattern '*.png' under 'data': "
            "the dataset is empty") in proc.stdout + proc.stderr


def test_a_config_of_just_input_and_entry_script_is_complete(workflow):
    setup(workflow)
    write(workflow.path("mine.yaml"), "input:\n  path: data\nentry_script: scripts/square.py\n")
    workflow.run("--configfile", "mine.yaml", "--replace-workflow-config")
    assert workflow.read("results", "mnist", "parallel_run_step.txt") == expected(23)


def test_a_failed_rerun_leaves_no_earlier_result_looking_complete(workflow):
    setup(workflow)
    workflow.run()
    write(workflow.path("scripts", "square.py"), "def init():\n    raise RuntimeError('model gone')\n"
                                                 "def run(mini_batch):\n    return mini_batch\n")
    proc = workflow.run(check=False)
    assert proc.returncode != 0
    assert not os.path.exists(workflow.path("results", "sq", "_SUCCESS"))
    assert not os.path.exists(workflow.path("results", "sq", "out.txt"))
    summary = json.loads(workflow.read("results", "sq", "summary.json"))   # this run's verdict, not the last one's
    assert (summary["status"], summary["output"]) == ("failed", None) and "RuntimeError: model gone" in summary["error"]
    tail = "\n".join(proc.stderr.strip().splitlines()[-20:])
    assert "snakebatch: run 'sq' failed." in tail
    assert "RuntimeError: model gone" in tail


def test_braces_in_file_names_are_not_wildcards(workflow):
    setup(workflow, n=2)
    write(workflow.path("data", "x{y}.txt"), "5\n")
    workflow.run()
    assert workflow.read("results", "sq", "out.txt") == expected(2) + "x{y}.txt: 5\n"


def test_a_changed_helper_module_reruns_the_shards(workflow):
    setup(workflow, n=3)
    write(workflow.path("scripts", "helper.py"), "SUFFIX = '!'\n")
    write(workflow.path("scripts", "square.py"), """
        import os
        import helper
        def init():
            pass
        def run(mini_batch):
            return [os.path.basename(p) + helper.SUFFIX for p in mini_batch]
    """)
    workflow.run()
    assert "Nothing to be done" in workflow.run().stderr
    time.sleep(0.01)
    write(workflow.path("scripts", "helper.py"), "SUFFIX = '?'\n")
    workflow.run()
    assert workflow.read("results", "sq", "out.txt") == "item000.txt?\nitem001.txt?\nitem002.txt?\n"


def test_a_file_replaced_by_an_older_copy_is_recomputed(workflow):
    setup(workflow, n=6)
    workflow.run()
    path = workflow.path("data", "item004.txt")
    with open(path, "w") as handle:
        handle.write("old copy\n")
    os.utime(path, (1_000_000_000, 1_000_000_000))   # like cp -p / rsync -a from an old backup
    workflow.run()
    assert workflow.read("results", "sq", "out.txt") == expected(6).replace("item004.txt: 16", "item004.txt: old copy")
    assert "Nothing to be done" in workflow.run().stderr


SLOW_SCRIPT = """
    import os, time

    def init():
        pass

    def run(mini_batch):
        time.sleep(0.3)
        with open(os.environ["COMPUTE_LOG"], "a") as log:   # one line per computed mini-batch
            log.write(os.path.basename(mini_batch[0]) + "\\n")
        return [os.path.basename(p) + ": " + open(p).read().strip() for p in mini_batch]
"""


def test_a_killed_run_resumes_to_the_same_bytes_redoing_only_unfinished_mini_batches(workflow):
    import signal
    import subprocess
    import sys

    setup(workflow, n=40, mini_batch_size=2, environment_variables={"COMPUTE_LOG": workflow.path("computed.log")})
    write(workflow.path("scripts", "square.py"), SLOW_SCRIPT)
    proc = subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "2"], cwd=workflow.root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    store = workflow.path("results", "sq", "minibatches")
    deadline = time.time() + 60
    while time.time() < deadline:
        done = sum(1 for _, _, files in os.walk(store) for name in files
                   if name.endswith(".json") and not name.startswith(".tmp"))   # finished, not being written
        if done >= 6:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)   # snakemake, the shard runners and their workers
    proc.wait()
    assert not os.path.exists(workflow.path("results", "sq", "_SUCCESS"))

    workflow.run("--unlock")
    workflow.run()
    assert workflow.read("results", "sq", "out.txt") == expected(40)   # what an uninterrupted run writes
    summary = json.loads(workflow.read("results", "sq", "summary.json"))
    assert summary["mini_batches"] == 20
    assert 6 <= summary["reused_mini_batches"] < 20
    computed = workflow.read("computed.log").splitlines()
    assert sorted(set(computed)) == [f"item{i:03d}.txt" for i in range(0, 40, 2)]
    # computed twice: at most the mini-batch each of the 2 shards had in flight when killed
    assert len(computed) - 20 <= 2


def test_the_next_run_retries_failed_mini_batches_after_a_threshold_failure(workflow):
    setup(workflow, n=8, error_threshold=0, run_max_try=1, mini_batch_size=2)
    write(workflow.path("scripts", "square.py"), SCRIPT.replace(
        'if text.startswith("bad"):', 'if path.endswith("item007.txt") and os.path.exists("share_down"):'))
    write(workflow.path("share_down"), "")
    proc = workflow.run(check=False)
    assert proc.returncode != 0
    assert "The next run retries the failed mini-batches (1 shard(s) rerun" in proc.stderr
    os.unlink(workflow.path("share_down"))   # the cause went away; no input changed
    retried = workflow.run()
    assert "rule partition" not in retried.stdout + retried.stderr
    assert workflow.read("results", "sq", "out.txt") == expected(8)
    assert json.loads(workflow.read("results", "sq", "summary.json"))["reused_mini_batches"] == 1


def test_an_edit_is_noticed_without_snakemakes_metadata(workflow):
    import shutil

    setup(workflow, n=6)
    workflow.run()
    shutil.rmtree(workflow.path(".snakemake"))
    write(workflow.path("data", "item002.txt"), "edited\n")
    workflow.run()
    assert workflow.read("results", "sq", "out.txt") == expected(6).replace("item002.txt: 4", "item002.txt: edited")


def test_all_shards_stop_early_once_the_threshold_is_exceeded(workflow):
    setup(workflow, n=40, mini_batch_size=2, error_threshold=0, run_max_try=1)
    write(workflow.path("scripts", "square.py"), """
        import os, time

        def init():
            pass

        def run(mini_batch):
            if any(p.endswith("item000.txt") for p in mini_batch):
                raise OSError("disk gone")
            time.sleep(0.5)
            return [os.path.basename(p) + ": " + open(p).read().strip() for p in mini_batch]
    """)
    proc = workflow.run(check=False)
    assert proc.returncode != 0
    summary = json.loads(workflow.read("results", "sq", "summary.json"))
    assert summary["stopped_early"] is True
    assert summary["failed"] >= 1
    # of 20, 10 per shard: the failing shard stopped after its first; the healthy one stopped too
    # (had it run all its 10, it would not count as stopped and 11 would have run)
    assert summary["mini_batches"] <= 10
    assert "2 shard(s) stopped early" in workflow.read("results", "sq", "logs", "job_result.txt")
    assert "stopped early" in proc.stderr
    assert "item000.txt: OSError: disk gone" in proc.stderr


def test_a_shard_that_stopped_early_in_an_interrupted_run_runs_again(workflow):
    setup(workflow, n=8, mini_batch_size=2)
    workflow.run()
    shard = workflow.path("results", "sq", "shards", "shard-00001.jsonl")
    lines = open(shard).read().splitlines()
    with open(shard, "w") as handle:   # as left by a run interrupted between an early stop and gather
        handle.write(lines[0] + "\n" + json.dumps({"stopped_early": "stopped early: old", "total_mini_batches": 4}) + "\n")
    mark_unfinished(shard)   # as its runner did
    os.unlink(workflow.path("results", "sq", "_SUCCESS"))   # the shards' start removed the earlier result
    os.unlink(workflow.path("results", "sq", "out.txt"))
    proc = workflow.run()
    assert "rule infer_shard" in proc.stdout + proc.stderr
    assert workflow.read("results", "sq", "out.txt") == expected(8)


def snapshot(workflow):
    """(path, size, mtime_ns) of every file under results/."""
    found = []
    for folder, _, names in os.walk(workflow.path("results")):
        for name in names:
            st = os.stat(os.path.join(folder, name))
            found.append((os.path.relpath(os.path.join(folder, name), workflow.root), st.st_size, st.st_mtime_ns))
    return sorted(found)


def dry_run_without_cores(workflow):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n"], cwd=workflow.root, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def test_one_plan_reaches_the_jobs_and_a_dry_run_plans_it_and_writes_nothing(workflow):
    from snakebatch.partition.manifest import ShardManifest

    cores = (os.cpu_count() or 1) + 1   # not what a dry run without --cores would take (os.cpu_count())
    setup(workflow)
    proc = workflow.run(cores=cores)
    assert "listing the dataset" not in workflow.read("results", "sq", "logs", "partition.log")   # listed once, by the main process
    plan = json.loads(workflow.read("results", "sq", "plan.json"))
    assert (plan["process_count_per_node"], plan["shard_count"]) == (cores, cores)
    manifests = [ShardManifest.read(workflow.path("results", "sq", "partition", f"shard-{i:05d}.json"))
                 for i in range(cores)]
    assert [(m.shard, m.shard_count) for m in manifests] == [(i, cores) for i in range(cores)]
    assert partition_files(workflow, "sq") == ["listing-{fp}.list"] + [f"shard-{i:05d}.json" for i in range(cores)]

    assert "Nothing to be done" in dry_run_without_cores(workflow)
    # a job's own snakemake (as on a cluster node, other cores) plans what plan.json says ...
    job = workflow.run("--mode", "remote", "-n", "--forceall", "results/sq/_SUCCESS", cores=cores + 3)
    assert re.search(rf"^infer_shard +{cores}$", job.stdout + job.stderr, re.M)
    # ... while --cores given to the snakemake you start is a new plan
    other = workflow.run("-n", cores=cores + 3)
    assert re.search(rf"^infer_shard +{cores + 3}$", other.stdout + other.stderr, re.M)
    # the new shards' manifests are missing: their jobs ask for them, so the partition runs again
    # on file times alone (it declares only the listing and the manifests that are missing)
    wider = workflow.run("-n", "--rerun-triggers", "mtime", "--forcerun", "gather", cores=cores + 3)
    planned_jobs = re.findall(r"^(partition|infer_shard|gather) +(\d+)$", wider.stdout + wider.stderr, re.M)
    assert planned_jobs[:3] == [("partition", "1"), ("infer_shard", str(cores + 3)), ("gather", "1")]  # the job table

    time.sleep(0.01)
    write(workflow.path("data", "item023.txt"), f"{23 * 23}\n")
    before = snapshot(workflow)
    planned = dry_run_without_cores(workflow)
    assert snapshot(workflow) == before
    assert "rule partition" in planned and planned.count("rule infer_shard") == cores and "rule gather" in planned

    changed = workflow.run(cores=cores)
    assert "rule partition" in changed.stdout + changed.stderr
    assert "listing the dataset" not in workflow.read("results", "sq", "logs", "partition.log")
    assert workflow.read("results", "sq", "out.txt") == expected(24)
    assert partition_files(workflow, "sq") == ["listing-{fp}.list"] + [f"shard-{i:05d}.json" for i in range(cores)]
    assert "Nothing to be done" in dry_run_without_cores(workflow)


def test_shards_that_stopped_early_run_again_in_the_next_invocation(workflow):
    setup(workflow, n=40, mini_batch_size=2, error_threshold=0, run_max_try=1)
    write(workflow.path("scripts", "square.py"), """
        import os, time

        def init():
            pass

        def run(mini_batch):
            if any(p.endswith("item000.txt") for p in mini_batch) and os.path.exists("share_down"):
                raise OSError("disk gone")
            time.sleep(0.5)
            return [os.path.basename(p) + ": " + open(p).read().strip() for p in mini_batch]
    """)
    write(workflow.path("share_down"), "")
    workflow.run("--omit-from", "gather")   # both shards stop early; nothing gathers (an interrupted run)
    plan = json.loads(workflow.read("results", "sq", "plan.json"))
    for shard in ("00000", "00001"):
        last = workflow.read("results", "sq", "shards", f"shard-{shard}.jsonl").splitlines()[-1]
        assert json.loads(last)["stopped_early"]
        assert os.path.exists(workflow.path("results", "sq", "shards", f"shard-{shard}.unfinished"))
        progress = json.loads(workflow.read("results", "sq", "progress", f"shard-{shard}.json"))
        assert progress["invocation"] == plan["invocation"]   # the id reached the shard jobs from plan.json

    before = snapshot(workflow)
    planned = dry_run_without_cores(workflow)
    assert snapshot(workflow) == before
    assert planned.count("rule infer_shard") == 2 and "rule partition" not in planned

    os.unlink(workflow.path("share_down"))
    again = workflow.run()
    assert (again.stdout + again.stderr).count("rule infer_shard") == 2
    assert workflow.read("results", "sq", "out.txt") == expected(40)
    assert not os.path.exists(workflow.path("results", "sq", "shards", "shard-00001.unfinished"))
    assert "Nothing to be done" in dry_run_without_cores(workflow)


def test_a_users_configfile_without_replace_gets_none_of_the_demos_keys(workflow):
    # the shipped config/config.yaml stays (it runs the demo); mine.yaml is merged over it
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    shutil.copy(os.path.join(repo, "config", "config.yaml"), workflow.path("config", "config.yaml"))
    for i in range(3):
        write(workflow.path("data", f"note{i}.txt"), f"{i * i}\n")
    write(workflow.path("scripts", "square.py"), SCRIPT)
    with open(workflow.path("mine.yaml"), "w", encoding="utf-8") as handle:
        yaml.safe_dump({"run_name": "mine", "input": {"path": "data"}, "entry_script": "scripts/square.py"}, handle)
    proc = workflow.run("--configfile", "mine.yaml")
    assert workflow.read("results", "mine", "parallel_run_step.txt") == "note0.txt: 0\nnote1.txt: 1\nnote2.txt: 4\n"
    assert not os.path.exists(workflow.path("resources", "demo"))   # no demo model trained, no digits written
    assert "demo_model" not in proc.stdout + proc.stderr
    assert "3 of 3 items succeeded" in proc.stderr
