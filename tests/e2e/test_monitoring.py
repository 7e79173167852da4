"""Watching a run (issue 13): the live view on a console that is not a terminal, the status
command of a run killed mid-way, and the HTML report of `snakemake --report`."""

import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from helpers import write
from squares import expected, report_results, setup

pytestmark = pytest.mark.slow

SLOW = """
    import os, time
    def run(mini_batch):
        out = []
        for path in mini_batch:
            time.sleep(0.25)
            text = open(path).read().strip()
            if text.startswith("bad"):
                raise ValueError("unreadable " + os.path.basename(path))
            out.append(os.path.basename(path) + ": " + text)
        return out
"""
LINE = re.compile(r"snakebatch: (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (.*)")


def _stamp(text):
    return time.mktime(time.strptime(text, "%Y-%m-%d %H:%M:%S"))


def test_a_slow_run_prints_progress_every_interval_to_100_percent_and_its_report_has_the_numbers(workflow):
    setup(workflow, n=16, mini_batch_size=2, process_count_per_node=2, progress_interval=1)
    write(workflow.path("data", "item005.txt"), "bad\n")
    write(workflow.path("scripts", "square.py"), SLOW)
    proc = workflow.run()
    assert workflow.read("results", "sq", "out.txt") == expected(16, skip={5})
    lines = [LINE.fullmatch(line) for line in proc.stderr.splitlines() if LINE.fullmatch(line)]
    assert len(lines) >= 3, proc.stderr
    stamps = [_stamp(m.group(1)) for m in lines]
    # at least one line per progress_interval (1 s; the stamps have whole seconds) while it works
    assert max(b - a for a, b in zip(stamps, stamps[1:])) <= 2, [m.group(0) for m in lines]
    texts = [m.group(2) for m in lines]
    done = [int(t.split("/")[0]) for t in texts if "/8 mini-batches" in t]
    assert done == sorted(done) and done[-1] == 8
    assert re.fullmatch(r"8/8 mini-batches \(100\.0%\), 15 succeeded, 1 failed of 16 items, [\d.]+ items/s, "
                        r"elapsed 0:00:\d\d, ETA 0:00:00", texts[-1]), texts[-1]
    overview = workflow.read("results", "sq", "logs", "job_progress_overview.txt").splitlines()
    assert overview[0].endswith(" UTC: run started, 2 shard(s)")
    assert [line.split(" UTC: ", 1)[1] for line in overview[1:] if " UTC: gather: " not in line] == texts
    assert overview[-2].endswith(" UTC: gather: 8 of 8 mini-batches processed; 16 items, 15 succeeded, 1 failed")

    report = workflow.run("--report", "report.html")
    assert report.stderr.splitlines()[-1] == "Report created."
    results = report_results(workflow.read("report.html"))
    by_name = {os.path.basename(path): record for path, record in results.items()}
    assert sorted(by_name) == ["config.yaml", "failed_items.html", "out.txt", "shard_durations.svg",
                               "summary.html", "throughput.svg"]
    summary = by_name["summary.html"]["bytes"].decode()
    for label, value in (("status", "succeeded"), ("items", "16"), ("succeeded", "15"), ("failed", "1"),
                         ("mini-batches", "8"), ("failed mini-batches", "1")):
        assert re.search(rf"<tr><th>{label}</th><td( class=n)?>{value}</td></tr>", summary), (label, summary)
    for name, title in (("throughput.svg", "Throughput of run 'sq'"), ("shard_durations.svg", "Time per shard of run 'sq'")):
        svg = by_name[name]["bytes"].decode()
        assert by_name[name]["mime_type"] == "image/svg+xml"
        assert svg.lstrip().startswith("<?xml") and "<svg" in svg and title in svg
    # balance_shards: which shard job computed each mini-batch is in its claim (no takeovers here)
    plan = json.loads(workflow.read("results", "sq", "plan.json"))
    holders = [json.loads(workflow.read("results", "sq", "claims", plan["invocation"], f"{i:09d}.0"))["shard"]
               for i in range(8)]
    svg = by_name["shard_durations.svg"]["bytes"].decode()
    for shard in (0, 1):
        assert f"process00{shard} ({holders.count(shard)} mini-batches)" in svg, holders
    failed = by_name["failed_items.html"]["bytes"].decode()
    assert "<h3>Failed items: all 1</h3>" in failed
    assert ("<tr><td>data/item005.txt</td><td>2</td><td>0</td><td>3</td>"
            "<td><code>ValueError: unreadable item005.txt</code></td></tr>") in failed
    assert by_name["out.txt"]["bytes"].decode() == expected(16, skip={5})
    assert "run_name: sq" in by_name["config.yaml"]["bytes"].decode().splitlines()
    assert "progress_interval: 1" in by_name["config.yaml"]["bytes"].decode().splitlines()
    assert "Items finished per second" in by_name["throughput.svg"]["caption"]


def test_status_json_of_a_run_killed_mid_way_shows_the_exact_done_and_total(workflow):
    setup(workflow, n=24, mini_batch_size=2, process_count_per_node=2)
    write(workflow.path("scripts", "square.py"), SLOW)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    status_env = {**env, "PYTHONPATH": workflow.path("workflow")}
    proc = subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "2"], cwd=workflow.root, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def status():
        out = subprocess.run([sys.executable, "-m", "snakebatch", "status", "results/sq", "--json"],
                             cwd=workflow.root, env=status_env, capture_output=True, text=True, timeout=60)
        return json.loads(out.stdout) if out.returncode == 0 else None

    try:
        deadline = time.monotonic() + 120
        seen = None
        while time.monotonic() < deadline:
            seen = status()
            if seen and seen["done_mini_batches"] >= 3:
                break
            time.sleep(0.2)
        assert seen and seen["state"] == "running", seen
    finally:
        os.killpg(proc.pid, signal.SIGKILL)   # snakemake, the shard runners and their workers
        proc.wait()
    time.sleep(0.5)
    final = status()
    stored = len(glob.glob(workflow.path("results", "sq", "minibatches", "*", "*.json")))
    assert 3 <= stored < 12
    assert [s["state"] for s in final["shards"]] == ["lost", "lost"], final["shards"]
    assert {k: final[k] for k in ("state", "done_mini_batches", "total_mini_batches", "done_items", "total_items",
                                  "succeeded_items", "failed_items", "shard_count")} == {
        "state": "incomplete", "done_mini_batches": stored, "total_mini_batches": 12, "done_items": 2 * stored,
        "total_items": 24, "succeeded_items": 2 * stored, "failed_items": 0, "shard_count": 2}
    assert [s["state"] for s in final["shards"]] == ["lost", "lost"], final["shards"]
    assert sum(s["done_mini_batches"] for s in final["shards"]) == stored
