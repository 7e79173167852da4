"""The live view's arithmetic and lines (snakebatch.monitor.live) and the shard progress records it
reads (published by snakebatch.infer.job)."""

import io
import json
import os

import pytest

from helpers import run_files, runner_spec, write

ECHO = """
    import os
    def run(mini_batch):
        return [os.path.basename(p) for p in mini_batch]
"""


def _record(shard, done, total, items, shard_items, failed=0, state="running", invocation="inv"):
    from snakebatch.monitor.progress import ShardProgress

    return ShardProgress(invocation, shard, done, total, failed, 1 if failed else 0, done_items=items,
                         shard_items=shard_items, succeeded_items=items - failed, total_items=40,
                         total_mini_batches=8, state=state)


def test_the_progress_records_of_a_shard_are_monotonic_and_end_at_exactly_100_percent(tmp_path, files, monkeypatch):
    from snakebatch.monitor import live as monitor
    from snakebatch.monitor import progress
    from snakebatch.monitor.aggregate import add_up
    from snakebatch.infer.job import ShardRunner

    monkeypatch.setenv(progress.INVOCATION_ENV, "inv-m")
    published = []
    real = progress.write_progress

    def spy(run_dir, record):
        published.append(record)
        real(run_dir, record)

    monkeypatch.setattr(progress, "write_progress", spy)
    monkeypatch.setattr(ShardRunner, "PUBLISH_EVERY_S", 3600.0)   # while it runs, at most one an hour
    results = run_files(tmp_path, runner_spec(write(tmp_path / "echo.py", ECHO)), files[:7], size=2)
    assert len(results) == 4
    # the first, then the last (no failure in between, which would be published at once)
    assert [(r.done_mini_batches, r.state) for r in published] == [(0, "running"), (4, "done")]
    published.clear()
    monkeypatch.setattr(ShardRunner, "PUBLISH_EVERY_S", 0.0)   # every mini-batch's record
    results = run_files(tmp_path, runner_spec(write(tmp_path / "echo.py", ECHO)), files[:7], size=2)
    assert [r.reused for r in results] == [True] * 4
    assert [r.done_mini_batches for r in published] == [0, 1, 2, 3, 4, 4]   # start, each mini-batch, end
    assert [r.done_items for r in published] == [0, 2, 4, 6, 7, 7]
    assert [r.state for r in published] == ["running"] * 5 + ["done"]
    assert {(r.shard_mini_batches, r.shard_items, r.total_mini_batches, r.total_items) for r in published} == {(4, 7, 4, 7)}
    assert [r.progress_at for r in published] == sorted(r.progress_at for r in published)
    assert [r.updated_at for r in published] == sorted(r.updated_at for r in published)
    on_disk = progress.invocation_progress(str(tmp_path / "run"), "inv-m")
    assert on_disk == [published[-1]]
    snap = monitor.snapshot(add_up(on_disk), 1, now=on_disk[0].updated_at, started_at=on_disk[0].started_at, rate=0.0)
    assert (snap.done_mini_batches, snap.total_mini_batches, snap.done_items, snap.succeeded_items) == (4, 4, 7, 7)
    assert snap.percent == 100.0


def test_a_shard_record_counts_failures_by_message(tmp_path, files, monkeypatch):
    from snakebatch.monitor import progress

    monkeypatch.setenv(progress.INVOCATION_ENV, "inv-e")
    script = write(tmp_path / "fails.py", """
        import os
        def run(mini_batch):
            name = os.path.basename(mini_batch[0])
            if name in ("f01.txt", "f03.txt"):
                raise ValueError("odd file")
            if name == "f04.txt":
                raise KeyError("four")
            return [name]
    """)
    run_files(tmp_path, runner_spec(script, run_max_try=1), files[:6], size=1)
    [record] = progress.invocation_progress(str(tmp_path / "run"), "inv-e")
    assert record.top_errors == (("ValueError: odd file", 2), ("KeyError: 'four'", 1))
    assert (record.failed_items, record.succeeded_items, record.state) == (3, 3, "done")


def test_a_snapshot_adds_up_the_shards_and_the_eta_follows_the_rate():
    from snakebatch.monitor.aggregate import add_up
    from snakebatch.monitor.live import describe, snapshot

    records = [_record(0, 2, 4, 10, 20, failed=1), _record(1, 1, 4, 5, 20)]
    snap = snapshot(add_up(records), 2, now=1030.0, started_at=1000.0, rate=2.5)
    assert (snap.done_mini_batches, snap.total_mini_batches, snap.done_items, snap.total_items) == (3, 8, 15, 40)
    assert (snap.succeeded_items, snap.failed_items, snap.shards_running) == (14, 1, 2)
    assert snap.eta_s == 10.0            # 25 items left at 2.5 items/s
    assert describe(snap) == ("3/8 mini-batches (37.5%), 14 succeeded, 1 failed of 40 items, 2.5 items/s, "
                              "elapsed 0:00:30, ETA 0:00:10")
    waiting = snapshot(add_up([]), 3, now=1005.0, started_at=1000.0, rate=0.0)
    assert describe(waiting) == "waiting for 3 shard(s) to start, elapsed 0:00:05"


def test_the_rate_is_measured_over_the_last_minute_only():
    from snakebatch.monitor.live import RateWindow

    window = RateWindow(60.0)
    assert window.add(0.0, 0) == 0.0
    assert window.add(30.0, 300) == 10.0
    assert window.add(60.0, 600) == 10.0
    assert window.add(90.0, 660) == 6.0      # 360 items in the last 60 s (from t=30)
    assert window.add(150.0, 660) == 0.0     # nothing in the last minute


def test_the_final_picture_of_a_succeeded_run_is_gathers_count_at_100_percent():
    from snakebatch.monitor.live import describe, finished_snapshot

    snap = finished_snapshot({"status": "succeeded", "items": 450, "succeeded": 448, "failed": 2,
                              "mini_batches": 90, "reused_mini_batches": 0}, 2, now=1045.0, started_at=1000.0)
    assert snap.percent == 100.0
    assert describe(snap) == ("90/90 mini-batches (100.0%), 448 succeeded, 2 failed of 450 items, 10.0 items/s, "
                              "elapsed 0:00:45, ETA 0:00:00")


def test_the_live_view_prints_plain_lines_off_a_terminal_and_appends_the_overview(tmp_path):
    import re
    import time

    from snakebatch.monitor import progress
    from snakebatch.monitor.live import LiveView

    run_dir = str(tmp_path / "run")
    progress.write_progress(run_dir, _record(0, 4, 4, 20, 20, state="done"))
    progress.write_progress(run_dir, _record(1, 2, 4, 10, 20, failed=1))
    progress.write_progress(run_dir, _record(2, 3, 4, 15, 20, invocation="older"))  # another invocation's
    stream = io.StringIO()
    view = LiveView(run_dir, "inv", 2, interval_s=0.2, stream=stream)
    assert view.terminal is False
    view.start()
    deadline = time.monotonic() + 20
    while stream.getvalue().count("\n") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    (tmp_path / "run" / "summary.json").write_text(json.dumps(
        {"status": "succeeded", "items": 40, "succeeded": 39, "failed": 1, "mini_batches": 8}))
    last = view.stop("succeeded")
    assert (last.percent, last.finished, last.done_mini_batches) == (100.0, True, 8)
    lines = stream.getvalue().splitlines()
    stamp = r"snakebatch: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d "
    assert len(lines) >= 3
    for line in lines[:-1]:   # every interval while it runs: the records of this invocation only
        assert re.fullmatch(stamp + r"6/8 mini-batches \(75\.0%\), 29 succeeded, 1 failed of 40 items, "
                            r"0\.0 items/s, elapsed 0:00:0\d, ETA \?", line), line
    assert re.fullmatch(stamp + r"8/8 mini-batches \(100\.0%\), 39 succeeded, 1 failed of 40 items, "
                        r"[\d.]+ items/s, elapsed 0:00:0\d, ETA 0:00:00", lines[-1]), lines[-1]
    overview = (tmp_path / "run" / "logs" / "job_progress_overview.txt").read_text().splitlines()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC: run started, 2 shard\(s\)", overview[0])
    assert [line.split(" UTC: ", 1)[1] for line in overview[1:]] == [line.split(" ", 3)[3] for line in lines]


def test_progress_records_of_an_older_version_still_read():
    from snakebatch.monitor.progress import ShardProgress

    old = json.dumps({"invocation": "i", "shard": 2, "done_mini_batches": 1, "shard_mini_batches": 3,
                      "failed_items": 0, "failed_mini_batches": 0, "first_failure": "", "future_field": 1})
    record = ShardProgress.from_json(old)
    assert (record.shard, record.done_mini_batches, record.state, record.top_errors) == (2, 1, "running", ())
    with pytest.raises(TypeError):
        ShardProgress.from_json("[1, 2]")


def test_a_progress_record_with_a_field_of_the_wrong_type_is_not_a_record(tmp_path):
    # the status command and the live view add the counts up: a null or text count crashed them
    from snakebatch.monitor.aggregate import read_run_progress
    from snakebatch.monitor.progress import ShardProgress, progress_path

    good = {"invocation": "i", "shard": 0, "done_mini_batches": 1, "shard_mini_batches": 3,
            "failed_items": 0, "failed_mini_batches": 0, "started_at": 5, "progress_at": 6.5}
    assert ShardProgress.from_json(json.dumps(good)).started_at == 5
    for field, value in [("done_mini_batches", None), ("done_items", "many"), ("shard", True),
                         ("started_at", "x"), ("state", 5)]:
        with pytest.raises(TypeError, match=field):
            ShardProgress.from_json(json.dumps({**good, field: value}))
    os.makedirs(os.path.dirname(progress_path(str(tmp_path), 0)))
    for shard, record in enumerate([good, {**good, "shard": 1, "done_mini_batches": None}]):
        with open(progress_path(str(tmp_path), shard), "w", encoding="utf-8") as handle:
            handle.write(json.dumps({**record, "shard": shard if shard == 0 else 1}))
    assert read_run_progress(str(tmp_path), "i").done_mini_batches == 1  # the bad record is skipped


def test_mini_batches_in_run_and_reused_items_show_in_the_line():
    import dataclasses

    from snakebatch.monitor.aggregate import add_up
    from snakebatch.monitor.live import describe, snapshot

    records = [dataclasses.replace(_record(0, 2, 4, 10, 20), running_mini_batch=2, running_items=5,
                                   running_since=1010.0, reused_items=5),
               dataclasses.replace(_record(1, 1, 4, 5, 20), running_mini_batch=5, running_items=5,
                                   running_since=1025.0),
               dataclasses.replace(_record(2, 4, 4, 20, 20, state="done"), running_since=1001.0)]  # ended: not in run()
    snap = snapshot(add_up(records), 3, now=1030.0, started_at=1000.0, rate=1.0)
    assert (snap.running_mini_batches, snap.running_longest_s, snap.reused_items) == (2, 20.0, 5)
    assert describe(snap) == ("7/8 mini-batches (87.5%), 2 in run() (longest 0:00:20), 35 succeeded, 0 failed of "
                              "40 items, 1.0 items/s (5 reused), elapsed 0:00:30, ETA 0:00:05")


def test_the_live_views_rate_leaves_out_reused_items(tmp_path):
    import dataclasses

    from snakebatch.monitor import progress
    from snakebatch.monitor.live import LiveView

    run_dir = str(tmp_path / "run")
    view = LiveView(run_dir, "inv", 1, stream=io.StringIO())
    progress.write_progress(run_dir, dataclasses.replace(_record(0, 0, 4, 0, 20)))
    assert view.read(now=1000.0).items_per_s == 0.0
    # 3 reused mini-batches (15 items) and one computed (5 items) in 10 s
    progress.write_progress(run_dir, dataclasses.replace(_record(0, 4, 4, 20, 20), reused_items=15,
                                                          reused_mini_batches=3))
    assert view.read(now=1010.0).items_per_s == 0.5


def test_while_run_works_the_shards_record_names_the_mini_batch_in_run(tmp_path, files, monkeypatch):
    """The worker's ``started`` Event of a run() call reaches the record within about a second
    (the runner publishes while it waits, at most once a second): run() of the second mini-batch
    waits until the record on disk names it, then returns that record as its line."""
    from snakebatch.monitor import progress

    monkeypatch.setenv(progress.INVOCATION_ENV, "inv-f")
    published = []
    real = progress.write_progress
    monkeypatch.setattr(progress, "write_progress", lambda run_dir, record: (published.append(record),
                                                                             real(run_dir, record)))
    record_path = str(tmp_path / "run" / "progress" / "shard-00000.json")
    script = write(tmp_path / "watch.py", f"""
        import json, os, time
        def run(mini_batch):
            if os.path.basename(mini_batch[0]) != "f01.txt":
                return [os.path.basename(p) for p in mini_batch]
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with open({record_path!r}) as handle:
                    record = json.load(handle)
                if record["running_mini_batch"] == 1:
                    return [json.dumps(record)]
                time.sleep(0.05)
            return ["never named"]
    """)
    results = run_files(tmp_path, runner_spec(script, run_invocation_timeout=40.0), files[:3], size=1)
    seen = json.loads(results[1].lines[0])
    assert (seen["running_mini_batch"], seen["running_items"], seen["done_mini_batches"]) == (1, 1, 1)
    assert seen["started_at"] < seen["running_since"] <= seen["updated_at"]
    [final] = progress.invocation_progress(str(tmp_path / "run"), "inv-f")
    assert (final.state, final.running_mini_batch, final.running_items, final.running_since) == ("done", -1, 0, 0.0)
    # no failure: between the first record and the last, at most one a second (ShardRunner.PUBLISH_EVERY_S)
    running = [r.updated_at for r in published if r.state == "running"]
    assert len(running) >= 2 and all(b - a >= 1.0 for a, b in zip(running, running[1:])), running
