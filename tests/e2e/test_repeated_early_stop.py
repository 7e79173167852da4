"""A shard that stops early in several snakemake invocations in a row: the second invocation runs it
again (its unfinished marker is an input of its job) and it stops early again. Snakemake checks
at the job's end that no input is newer than the outputs, so the new marker must not be the one
the job was given, or the job fails with a clock-skew error instead of gather's report."""

import json

import pytest

from helpers import write
from squares import expected, setup

pytestmark = pytest.mark.slow


def test_a_shard_that_stops_early_again_and_again_is_reported_by_gather_and_runs_again(workflow):
    setup(workflow, n=8, mini_batch_size=2, error_threshold=0, process_count_per_node=1)
    write(workflow.path("data", "item002.txt"), "bad\n")
    for _ in range(3):  # the marker's name alternates: back to the first one
        proc = workflow.run(check=False)
        console = proc.stdout + proc.stderr
        assert proc.returncode != 0
        assert "older modification time" not in console
        assert "The run failed: 1 failed item(s) > error_threshold 0" in console
        summary = json.loads(workflow.read("results", "sq", "summary.json"))
        assert (summary["status"], summary["failed"], summary["stopped_early"]) == ("failed", 1, True)
    write(workflow.path("data", "item002.txt"), "4\n")
    workflow.run()
    assert workflow.read("results", "sq", "out.txt") == expected(8)
