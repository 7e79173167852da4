"""Outputs, uploads and leftovers (issue 21 points 5 and 8): a failed upload to output_uri fails
every verdict naming the upload, and the temporary files killed writers left are removed by the
next run."""

import json
import os
import subprocess
import sys

import pytest

from helpers import write
from squares import expected, setup

pytestmark = pytest.mark.slow


def test_a_failed_upload_fails_the_run_in_every_verdict_and_a_rerun_uploads(workflow):
    blocker = workflow.path("published")
    write(blocker, "a file where output_uri's folder should be\n")
    uri = os.path.join(blocker, "sq")
    setup(workflow, n=8, output_uri=uri)
    proc = workflow.run(check=False)
    assert proc.returncode != 0
    cause = f"the upload to output_uri failed: {uri!r} cannot be written: Not a directory (errno 20)"
    tail = proc.stderr.split("snakebatch: run 'sq' failed.")[-1]
    assert f"The run failed: {cause}" in tail, proc.stderr[-3000:]
    assert "Traceback" not in tail
    job_result = workflow.read("results", "sq", "logs", "job_result.txt")
    assert job_result.startswith("status: failed\nitems: 8 (succeeded 8, failed 0)\n")
    summary = json.loads(workflow.read("results", "sq", "summary.json"))
    assert summary["status"] == "failed" and summary["error"].startswith(cause)
    assert not os.path.exists(workflow.path("results", "sq", "_SUCCESS"))
    status = subprocess.run([sys.executable, "-m", "snakebatch", "status", "results/sq"], cwd=workflow.root,
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": workflow.path("workflow")})
    assert status.stdout.startswith("run 'sq' (results/sq): failed"), status.stdout + status.stderr
    assert f"Cause: {cause}" in status.stdout

    os.unlink(blocker)   # the store can be written again: the same command uploads
    again = workflow.run()
    assert "Nothing to be done" not in again.stdout + again.stderr
    assert open(os.path.join(uri, "out.txt"), encoding="utf-8").read() == expected(8)
    assert json.loads(workflow.read("results", "sq", "summary.json"))["status"] == "succeeded"
    assert workflow.read("results", "sq", "logs", "job_result.txt").startswith("status: succeeded\n")


def test_the_temporary_files_a_killed_gather_left_are_removed_by_the_next_run(workflow):
    setup(workflow, n=8)
    workflow.run()
    run_dir = workflow.path("results", "sq")
    left = [os.path.join(run_dir, ".tmp-summary.json-k3j2a9q1"), os.path.join(run_dir, ".tmp-_SUCCESS-8xq0z1ab"),
            os.path.join(run_dir, ".tmp-out.txt-p999999999-ab12cd34"),
            os.path.join(run_dir, "logs", ".tmp-job_result.txt-p999999999")]
    for path in left:
        write(path, "half\n")
    workflow.run("--forcerun", "gather")
    assert [n for _, _, names in os.walk(run_dir) for n in names if n.startswith(".tmp-")] == []
    assert workflow.read("results", "sq", "out.txt") == expected(8)
