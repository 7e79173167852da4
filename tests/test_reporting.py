"""The report's files (snakebatch.reporting): series behind the plots, the tables, errors."""

import json

import pytest

from helpers import write


def _row(index, agent, started_at, duration_s, items=2, failed=0, reused=False):
    return {"mini_batch": index, "items": items, "succeeded": items - failed, "failed": failed,
            "duration_s": duration_s, "agent_name": agent, "reused": reused, "started_at": started_at}


def test_throughput_counts_items_when_their_mini_batch_ends_and_skips_reused_ones():
    from snakebatch.reporting import throughput_series

    rows = [_row(0, "p0", 100.0, 1.0), _row(1, "p0", 101.0, 1.0), _row(2, "p1", 100.0, 4.0, items=4),
            _row(3, "p1", 50.0, 9.0, items=100, reused=True)]
    edges, rates, cumulative = throughput_series(rows, bins=4)
    assert edges == [1.0, 2.0, 3.0, 4.0]
    assert rates == [0.0, 2.0, 2.0, 4.0]   # ends at 1.0 (bin 1), 2.0 (bin 2), 4.0 (last bin)
    assert cumulative == [0, 2, 4, 8]
    assert throughput_series([_row(0, "p0", 1.0, 1.0, reused=True)]) == ([], [], [])


def test_shard_spans_are_wall_and_busy_time_per_worker():
    from snakebatch.reporting import shard_spans

    rows = [_row(0, "process001", 10.0, 1.0), _row(1, "process001", 14.0, 2.0), _row(2, "process000", 10.0, 3.0)]
    assert shard_spans(rows) == [("process000", 3.0, 3.0, 1), ("process001", 6.0, 3.0, 2)]


def test_the_summary_table_and_the_failed_items_are_escaped_html(tmp_path):
    from snakebatch.reporting import failed_items_html, summary_html

    page = summary_html({"run_name": "r<1>", "status": "failed", "items": 3, "failed": 2,
                         "thresholds": {"error_threshold": 1, "allowed_failed_count": None},
                         "threshold_breaches": ["2 failed item(s) > error_threshold 1"]})
    assert ("<table id='summary'><tr><th>status</th><td>failed</td></tr><tr><th>items</th><td class=n>3</td></tr>"
            "<tr><th>failed</th><td class=n>2</td></tr><tr><th>error_threshold</th><td class=n>1</td></tr>"
            "<tr><th>allowed_failed_count</th><td>unset</td></tr><tr><th>threshold exceeded</th>"
            "<td>2 failed item(s) &gt; error_threshold 1</td></tr></table>") in page
    assert "<h3>Run r&lt;1&gt;</h3>" in page
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
    from snakebatch.reporting import write_report_files

    with pytest.raises(ManifestError) as info:
        write_report_files(str(tmp_path / "run"))
    assert str(info.value) == (f"the summary {tmp_path / 'run' / 'summary.json'} does not exist: gather has not "
                               "run for this run folder")
    write(tmp_path / "run" / "summary.json", "{}")
    write(tmp_path / "run" / "logs" / "sys" / "job_report" / "processed_mini-batches.csv", "mini_batch,items\nx,1\n")
    with pytest.raises(ManifestError) as info:
        write_report_files(str(tmp_path / "run"))
    assert str(info.value).startswith(f"{tmp_path / 'run' / 'logs' / 'sys' / 'job_report' / 'processed_mini-batches.csv'} is corrupt: ")
