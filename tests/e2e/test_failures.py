"""Whole runs that fail, or nearly: thresholds at and over their limits, init() that always
raises, summary_only, and mini-batches of varying latency (issue 3)."""

import json
import os
import re

import pytest

from helpers import write
from squares import expected, report_results, setup

pytestmark = pytest.mark.slow

# 20 items, 4 per mini-batch = 5 mini-batches; items 2 and 9 are bad: 2 failed items in 2 of the
# 5 mini-batches (40%), both in shard 0 (mini-batches 0-2; shard 1 has 3-4).
BAD = (2, 9)


def failure_tail(proc):
    """The report that ends the console of a failed run: from the last "snakebatch: run 'sq'
    failed." to the end, which must be within the last 40 lines."""
    lines = proc.stderr.rstrip().splitlines()
    start = max(i for i, line in enumerate(lines) if line == "snakebatch: run 'sq' failed.")
    assert len(lines) - start <= 40
    return "\n".join(lines[start:])


def setup_bad(workflow, **config):
    setup(workflow, n=20, run_max_try=1, **config)
    for i in BAD:
        write(workflow.path("data", f"item{i:03d}.txt"), "bad\n")


# Every threshold's boundary (at it passes, one over fails, with the exact message) is proved at unit
# level in tests/test_thresholds.py; one whole run each shows the workflow acts on the verdict.
def test_failures_exactly_at_a_threshold_pass(workflow):
    setup_bad(workflow, allowed_failed_percent=40, error_threshold=2, allowed_failed_count=2)
    proc = workflow.run()
    assert workflow.read("results", "sq", "out.txt") == expected(20, skip=BAD)
    summary = json.loads(workflow.read("results", "sq", "summary.json"))
    assert (summary["status"], summary["failed"], summary["failed_mini_batches"]) == ("succeeded", 2, 2)
    assert "snakebatch: run 'sq' succeeded: 18 of 20 items succeeded, 2 failed -> results/sq/out.txt\n" \
        "Failed items:\n" \
        "  data/item002.txt: ValueError: unreadable item002.txt\n" \
        "  data/item009.txt: ValueError: unreadable item009.txt\n" \
        "Every failed item with its traceback: results/sq/errors.jsonl\n" in proc.stderr


def test_one_failure_over_a_threshold_fails_naming_the_cause(workflow):
    breach = "40.00% failed mini-batches > allowed_failed_percent 39%"
    setup_bad(workflow, allowed_failed_percent=39)
    proc = workflow.run(check=False)
    assert proc.returncode != 0
    tail = failure_tail(proc)
    assert f"The run failed: {breach}." in tail
    assert "item002.txt: ValueError: unreadable item002.txt (after 1 try)" in tail
    assert "item009.txt: ValueError: unreadable item009.txt (after 1 try)" in tail
    assert re.search(r"Error report: \S*results/sq/errors\.jsonl; worker error logs: \S*results/sq/logs/user/error/", tail)
    assert not os.path.exists(workflow.path("results", "sq", "out.txt"))
    errors = [json.loads(line) for line in workflow.read("results", "sq", "errors.jsonl").splitlines()]
    assert [(os.path.basename(e["item"]), e["mini_batch"], e["shard"], e["tries"], e["exception"], e["message"])
            for e in errors] == [("item002.txt", 0, 0, 1, "ValueError", "unreadable item002.txt"),
                                 ("item009.txt", 2, 0, 1, "ValueError", "unreadable item009.txt")]
    assert all('raise ValueError("unreadable " + os.path.basename(path))' in e["traceback"] for e in errors)
    assert all(e["traceback"].startswith("Traceback (most recent call last):\n  File ") for e in errors)
    assert all("snakebatch" not in e["traceback"].split("\n")[1] for e in errors)   # starts in the user's code
    # the report of the failed run: the verdict, the breach and the failed items, no merged output
    report = workflow.run("--report", "report.html")
    assert report.stderr.splitlines()[-1] == "Report created."
    by_name = {os.path.basename(p): r["bytes"].decode() for p, r in report_results(workflow.read("report.html")).items()}
    assert sorted(by_name) == ["config.yaml", "failed_items.html", "shard_durations.svg", "summary.html",
                               "throughput.svg"]
    assert (f"<h3>Run sq: failed</h3><h4>Cause</h4><pre id='cause'>The run failed: {breach.replace('>', '&gt;')}."
            "\nFirst failures:\n  data/item002.txt: ValueError: unreadable item002.txt (after 1 try)\n") \
        in by_name["summary.html"]
    assert "<tr><th>merged file</th><td>none (the run failed)</td></tr>" in by_name["summary.html"]
    assert f"<tr><th>threshold exceeded</th><td>{breach.replace('>', '&gt;')}</td></tr>" in by_name["summary.html"]
    assert "<tr><th>failed</th><td class=n>2</td></tr>" in by_name["summary.html"]
    assert "<h3>Failed items: all 2</h3>" in by_name["failed_items.html"]
    assert ("<tr><td>data/item009.txt</td><td>2</td><td>0</td><td>1</td>"
            "<td><code>ValueError: unreadable item009.txt</code></td></tr>") in by_name["failed_items.html"]
    # one bar per worker process with the mini-batches it computed: those that ran in all (both
    # failing ones among them), however the balanced shards shared them
    ran = json.loads(workflow.read("results", "sq", "summary.json"))["mini_batches"]
    bars = dict(re.findall(r"(process00\d) \((\d) mini-batches\)", by_name["shard_durations.svg"]))
    assert sorted(bars) == ["process000", "process001"] and sum(map(int, bars.values())) == ran >= 3


def test_an_init_that_always_raises_ends_the_run_with_its_traceback(workflow):
    setup(workflow, n=4, run_max_try=2)
    write(workflow.path("scripts", "square.py"), """
        def init():
            raise FileNotFoundError("model.pt not found")
        def run(mini_batch):
            return mini_batch
    """)
    proc = workflow.run(check=False)
    assert proc.returncode != 0
    tail = failure_tail(proc)
    assert "failed 2 times in a row: FileNotFoundError: model.pt not found" in tail
    assert 'raise FileNotFoundError("model.pt not found")' in tail
    assert "Worker error log: " in tail and "results/sq/logs/user/error/shard-0000" in tail
    assert not os.path.exists(workflow.path("results", "sq", "out.txt"))
    # the reports of a run that failed before gather could merge anything (issue 12, point 3)
    summary = json.loads(workflow.read("results", "sq", "summary.json"))
    assert (summary["status"], summary["output"]) == ("failed", None)
    assert summary["error"].startswith("the entry script failed to start in 1 of 2 shard(s).\n")
    job_result = workflow.read("results", "sq", "logs", "job_result.txt")
    assert job_result.startswith("status: failed\nThe run failed: the entry script failed to start in 1 of 2 shard(s).\n")
    assert f"  at {workflow.path('scripts', 'square.py')}, line 3: raise FileNotFoundError(\"model.pt not found\")\n" \
        in job_result
    # the status names the cause and the shard it hit
    from snakebatch.monitor.status import format_status, run_status

    status = run_status(workflow.path("results", "sq"))
    headline = (f"init() of entry_script {workflow.path('scripts', 'square.py')!r} failed 2 times in a row: "
                "FileNotFoundError: model.pt not found")
    assert (status.state, status.to_dict()["first_failures"]) == ("failed", [{"shard": 0, "failure": headline}])
    assert status.error == summary["error"]
    assert format_status(status).splitlines()[-2:] == [
        "Cause: the entry script failed to start in 1 of 2 shard(s).", f"  shard 00000: {headline}"]


def test_an_init_typo_with_8_shards_is_reported_once_with_its_count(workflow):
    setup(workflow, n=40)
    write(workflow.path("scripts", "square.py"), """
        def init():
            global model
            model = lod_model()
        def run(mini_batch):
            return mini_batch
    """)
    proc = workflow.run(cores=8, check=False)
    assert proc.returncode != 0
    script = workflow.path("scripts", "square.py")
    error_log = workflow.path("results", "sq", "logs", "user", "error", "shard-00000.txt")
    report = proc.stderr.rstrip().split("\n\nsnakebatch: run 'sq' failed.\n")[1]
    assert report == f"""status: failed
The run failed: the entry script failed to start in 8 of 8 shard(s).
init() of entry_script {script!r} failed 3 times in a row: NameError: name 'lod_model' is not defined
Traceback (most recent call last):
  File "{script}", line 4, in init
    model = lod_model()
            ^^^^^^^^^
NameError: name 'lod_model' is not defined
  at {script}, line 4: model = lod_model()
  in 8 of 8 shard(s) (the same error in each)
Worker error log: {error_log} (and 7 more, one per shard, beside it)"""
    console = proc.stdout + proc.stderr
    failure_part = proc.stderr[proc.stderr.index("Error in rule"):].splitlines()
    assert len(failure_part) <= 80
    assert console.count("NameError: name 'lod_model' is not defined") == 2   # the report's headline and traceback
    called = [line for line in console.splitlines() if "CalledProcessError" in line or line.startswith("Command ")]
    assert len(called) <= 2 and all(len(line) < 700 for line in called)
    assert '"allow_reuse"' not in console and "--spec '" not in console   # no JSON spec on the console
    cpus = os.cpu_count()
    warned = (f"snakebatch: warning: 8 shards run at once (--cores 8) on this machine's {cpus} cores: each is a "
              "worker with its own copy of the model in memory")
    assert (warned in proc.stderr) == (cpus < 8)


def test_summary_only_leaves_outputs_to_the_script_and_writes_no_merged_file(workflow):
    setup(workflow, n=6, output_action="summary_only")
    write(workflow.path("scripts", "square.py"), """
        import os
        from azureml_user.parallel_run import EntryScript
        def init():
            pass
        def run(mini_batch):
            for path in mini_batch:
                with open(os.path.join(EntryScript().output_dir, os.path.basename(path)), "w") as f:
                    f.write(str(int(open(path).read()) + 1))
            return mini_batch
    """)
    proc = workflow.run()
    run_dir = workflow.path("results", "sq")
    assert not os.path.exists(os.path.join(run_dir, "out.txt"))
    outputs = os.path.join(run_dir, "outputs")
    assert {name: open(os.path.join(outputs, name)).read() for name in sorted(os.listdir(outputs))} == {
        f"item{i:03d}.txt": str(i * i + 1) for i in range(6)}
    summary = json.loads(workflow.read("results", "sq", "summary.json"))
    assert (summary["status"], summary["succeeded"], summary["output"]) == ("succeeded", 6, None)
    assert workflow.read("results", "sq", "_SUCCESS") == "\n"
    assert f"6 of 6 items succeeded, 0 failed -> {os.path.join('results', 'sq', 'outputs')}" in proc.stderr


def test_mini_batches_of_varying_latency_merge_in_input_order(workflow):
    setup(workflow, n=30, mini_batch_size=1, process_count_per_node=3)
    write(workflow.path("scripts", "square.py"), """
        import os, random, time
        def init():
            pass
        def run(mini_batch):
            name = os.path.basename(mini_batch[0])
            time.sleep(random.Random(name).uniform(0.0, 0.15))   # 0-150 ms, different per item
            return [name + ": " + open(mini_batch[0]).read().strip()]
    """)
    workflow.run(cores=3)
    assert workflow.read("results", "sq", "out.txt") == expected(30)
    rows = workflow.read("results", "sq", "logs", "sys", "job_report", "processed_mini-batches.csv").splitlines()
    assert [int(row.split(",")[0]) for row in rows[1:]] == list(range(30))


def test_a_runner_killed_from_outside_still_ends_the_console_with_a_cause(workflow):
    import signal
    import subprocess
    import sys
    import time

    setup(workflow, n=20, mini_batch_size=1)
    write(workflow.path("scripts", "square.py"), """
        import os, time
        def init():
            pass
        def run(mini_batch):
            time.sleep(0.3)
            return [os.path.basename(p) for p in mini_batch]
    """)
    proc = subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "2"], cwd=workflow.root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    victim, deadline = None, time.time() + 60
    while victim is None and time.time() < deadline:   # a shard runner, as the OOM killer would pick it
        for pid in os.listdir("/proc"):
            try:
                ours = (b"snakebatch.infer.job" in open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
                        and os.readlink(f"/proc/{pid}/cwd") == workflow.root)
            except (OSError, ValueError):
                continue
            if ours:
                victim = int(pid)
                break
        time.sleep(0.2)
    assert victim is not None
    time.sleep(1.0)
    os.kill(victim, signal.SIGKILL)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode != 0
    lines = stderr.rstrip().splitlines()
    start = max(i for i, line in enumerate(lines) if line == "snakebatch: run 'sq' failed.")
    assert "No snakebatch stage reported an error: a job was ended from outside" in "\n".join(lines[start:])


def test_ctrl_c_is_reported_as_the_users_interrupt_with_how_to_resume(workflow):
    import signal
    import subprocess
    import sys
    import time

    setup(workflow, n=20, mini_batch_size=1)
    write(workflow.path("scripts", "square.py"), """
        import os, time
        def init():
            pass
        def run(mini_batch):
            time.sleep(0.3)
            return [os.path.basename(p) for p in mini_batch]
    """)
    proc = subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "2"], cwd=workflow.root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    store, deadline = workflow.path("results", "sq", "minibatches"), time.time() + 60
    while time.time() < deadline:   # some mini-batches finished
        if sum(1 for _, _, names in os.walk(store) for n in names if n.endswith(".json") and not n.startswith(".tmp")) >= 2:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)   # what Ctrl-C in a terminal does: the whole foreground group
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert stderr.rstrip().endswith(
        "\nsnakebatch: run 'sq' interrupted.\n"
        "The run was interrupted by the user (Ctrl-C, SIGINT). Every mini-batch that finished is kept: run the same "
        "command again to resume; only the unfinished mini-batches run (if snakemake itself was killed, run "
        "`snakemake --unlock` first).")
    assert "out-of-memory" not in stderr
    assert workflow.read("results", "sq", "logs", "job_result.txt").startswith("status: interrupted\n")
    assert json.loads(workflow.read("results", "sq", "summary.json"))["status"] == "interrupted"
    workflow.run()
    assert workflow.read("results", "sq", "out.txt") == "".join(f"item{i:03d}.txt\n" for i in range(20))
