"""The report's files (snakebatch.monitor.report): series behind the plots, the tables, errors."""

import json

import pytest

from helpers import write


def _row(index, agent, started_at, duration_s, items=2, failed=0, reused=False):
    return {"mini_batch": index, "items": items, "succeeded": items - failed, "failed": failed,
            "duration_s": duration_s, "agent_name": agent, "reused": reused, "started_at": started_at}


def test_throughput_counts_items_when_their_mini_batch_ends_and_skips_reused_ones():
    from snakebatch.monitor.report import throughput_series

    rows = [_row(0, "p0", 100.0, 1.0), _row(1, "p0", 101.0, 1.0), _row(2, "p1", 100.0, 4.0, items=4),
            _row(3, "p1", 50.0, 9.0, items=100, reused=True)]
    edges, rates, cumulative = throughput_series(rows, bins=4)
    assert edges == [1.0, 2.0, 3.0, 4.0]
    assert rates == [0.0, 2.0, 2.0, 4.0]   # ends at 1.0 (bin 1), 2.0 (bin 2), 4.0 (last bin)
    assert cumulative == [0, 2, 4, 8]
    assert throughput_series([_row(0, "p0", 1.0, 1.0, reused=True)]) == ([], [], [])


def test_shard_spans_are_wall_and_busy_time_per_worker():
    from snakebatch.monitor.report import shard_spans

    rows = [_row(0, "process001", 10.0, 1.0), _row(1, "process001", 14.0, 2.0), _row(2, "process000", 10.0, 3.0)]
    assert shard_spans(rows) == [("process000", 3.0, 3.0, 1), ("process001", 6.0, 3.0, 2)]


def test_the_summary_table_and_the_failed_items_are_escaped_html(tmp_path):
    from snakebatch.monitor.report import failed_items_html, summary_html

    page = summary_html({"run_name": "r<1>", "status": "failed", "items": 3, "failed": 2,
                         "thresholds": {"error_threshold": 1, "allowed_failed_count": None},
                         "threshold_breaches": ["2 failed item(s) > error_threshold 1"]})
    assert ("<table id='summary'><tr><th>status</th><td>failed</td></tr><tr><th>items</th><td class=n>3</td></tr>"
            "<tr><th>failed</th><td class=n>2</td></tr><tr><th>error_threshold</th><td class=n>1</td></tr>"
            "<tr><th>allowed_failed_count</th><td>unset</td></tr><tr><th>threshold exceeded</th>"
            "<td>2 failed item(s) &gt; error_threshold 1</td></tr></table>") in page
    assert "<h3>Run r&lt;1&gt;: failed</h3><table" in page   # the verdict in the heading
    errors = write(tmp_path / "errors.jsonl", "".join(
        json.dumps({"item": f"d/<{i}>.png", "mini_batch": i, "shard": 0, "tries": 3, "error": f"E: bad {i}"}) + "\n"
        for i in range(4)))
    page = failed_items_html(errors, limit=2)
    assert "<h3>Failed items: the first 2 of 4</h3>" in page
    assert page.count("<tr><td>") == 2
    assert "<tr><td>d/&lt;1&gt;.png</td><td>1</td><td>0</td><td>3</td><td><code>E: bad 1</code></td></tr>" in page
    write(tmp_path / "none.jsonl", "")
    assert "<h3>Failed items: all 0</h3><p>No item failed.</p>" in failed_items_html(str(tmp_path / "none.jsonl"))


def test_a_run_folder_without_gathers_reports_is_named(tmp_path):
    from snakebatch.errors import ManifestError
    from snakebatch.monitor.report import write_report_files

    with pytest.raises(ManifestError) as info:
        write_report_files(str(tmp_path / "run"))
    assert str(info.value) == (f"the summary {tmp_path / 'run' / 'summary.json'} does not exist: gather has not "
                               "run for this run folder")
    write(tmp_path / "run" / "summary.json", "{}")
    write(tmp_path / "run" / "logs" / "sys" / "job_report" / "processed_mini-batches.csv", "mini_batch,items\nx,1\n")
    with pytest.raises(ManifestError) as info:
        write_report_files(str(tmp_path / "run"))
    assert str(info.value).startswith(f"{tmp_path / 'run' / 'logs' / 'sys' / 'job_report' / 'processed_mini-batches.csv'} is corrupt: ")


def test_the_report_of_a_run_whose_entry_script_did_not_start_shows_the_cause(tmp_path):
    """No processed mini-batches and an error report older than plan.json (an earlier run's):
    the summary has the verdict and the cause, the plots and the failed items say why empty."""
    import os

    from snakebatch.monitor.report import write_report_files

    run = tmp_path / "run"
    write(run / "errors.jsonl", json.dumps({"item": "old.png", "error": "E: from an earlier run"}) + "\n")
    os.utime(run / "errors.jsonl", (1000, 1000))
    write(run / "plan.json", "{}")
    headline = "init() of entry_script '/s.py' failed 2 times in a row: FileNotFoundError: model.pt not found"
    write(run / "summary.json", json.dumps({
        "run_name": "sq", "status": "failed", "output": None, "finished_at": "2026-12-02T18:00:00+0000",
        "error": f"the entry script failed to start in 1 of 2 shard(s).\n{headline}\n  at /s.py, line 3: raise <x>",
        "start_failures": [{"shard": 0, "error": headline}]}))
    paths = write_report_files(str(run))
    assert [os.path.basename(p) for p in paths] == ["summary.html", "throughput.svg", "shard_durations.svg",
                                                    "failed_items.html", "config.yaml"]
    summary = open(paths[0]).read()
    assert "<h3>Run sq: failed</h3><h4>Cause</h4><pre id='cause'>the entry script failed to start in 1 of 2 " \
        "shard(s).\ninit() of entry_script &#x27;/s.py&#x27; failed 2 times in a row: FileNotFoundError: model.pt " \
        "not found\n  at /s.py, line 3: raise &lt;x&gt;</pre>" in summary
    assert ("<table id='start_failures'><tr><th>shard</th><th>the entry script did not start</th></tr>"
            "<tr><td class=n>0</td><td><code>init() of entry_script &#x27;/s.py&#x27; failed 2 times in a row: "
            "FileNotFoundError: model.pt not found</code></td></tr></table>") in summary
    assert "<tr><th>status</th><td>failed</td></tr>" in summary
    assert "no mini-batch finished in this run" in open(paths[1]).read()
    failed = open(paths[3]).read()
    assert "<h3>Failed items: no error report</h3>" in failed and "old.png" not in failed
    assert ("The cause is in the summary: <code>the entry script failed to start in 1 of 2 shard(s).</code>"
            in failed)


def test_a_run_that_computed_nothing_says_so_instead_of_no_rate():
    from snakebatch.monitor.report import summary_html

    page = summary_html({"run_name": "r", "status": "succeeded", "items": 8, "computed_items": 0, "reused_items": 8,
                         "wall_s": 0.0, "items_per_s": None})
    assert ("<tr><th>items computed in this run</th><td class=n>0</td></tr><tr><th>items reused from earlier runs"
            "</th><td class=n>8</td></tr><tr><th>wall time (s)</th><td class=n>0.0</td></tr><tr><th>items/s</th>"
            "<td>none computed in this run (all reused)</td></tr>") in page
