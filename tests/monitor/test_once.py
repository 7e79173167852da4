"""Errors the monitor survives are logged once, not swallowed whole nor repeated every tick
(snakebatch.monitor.once)."""

import io
import logging
import time

import pytest


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch):
    from snakebatch.monitor import once

    monkeypatch.setattr(once, "_WARNED", set())


def _warnings(caplog):
    return [r for r in caplog.records if r.name == "snakebatch.monitor" and r.levelno == logging.WARNING]


def test_an_error_at_one_place_is_logged_once_with_its_traceback(caplog):
    from snakebatch.monitor.once import warn_once

    def fail():
        raise RuntimeError("records unreadable")

    for _ in range(3):
        try:
            fail()
        except RuntimeError as exc:
            warn_once("the live view's update", exc)
    assert warn_once("the live view's update", ValueError("another kind")) is True
    assert warn_once("writing the overview", RuntimeError("x")) is True
    logged = _warnings(caplog)
    assert [r.getMessage() for r in logged] == [
        "snakebatch: the live view's update failed, going on without it (logged once): RuntimeError: "
        "records unreadable",
        "snakebatch: the live view's update failed, going on without it (logged once): ValueError: another kind",
        "snakebatch: writing the overview failed, going on without it (logged once): RuntimeError: x"]
    assert "in fail" in caplog.text   # the first one's traceback


def test_a_live_view_whose_update_keeps_failing_logs_it_once_and_keeps_going(tmp_path, monkeypatch, caplog):
    from snakebatch.monitor import live
    from snakebatch.monitor.live import LiveView

    monkeypatch.setattr(LiveView, "TICK_S", 0.01)
    calls = []

    def broken(run_dir, invocation, settle=None):
        calls.append(run_dir)
        raise OSError("stale NFS file handle")

    monkeypatch.setattr(live.aggregate, "read_run_progress", broken)
    view = LiveView(str(tmp_path / "run"), "inv", 1, interval_s=0.01, stream=io.StringIO()).start()
    deadline = time.monotonic() + 20
    while len(calls) < 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    view._stop.set()
    view._thread.join(timeout=5)
    assert len(calls) >= 10 and not view._thread.is_alive()
    assert [r.getMessage() for r in _warnings(caplog)] == [
        "snakebatch: the live view's update failed, going on without it (logged once): OSError: stale NFS file handle"]


def test_an_unreadable_progress_record_is_skipped_and_named_once(tmp_path, caplog):
    from snakebatch.monitor import progress
    from snakebatch.storage.layout import RunLayout

    run_dir = str(tmp_path / "run")
    progress.write_progress(run_dir, progress.ShardProgress("inv", 0, 1, 3, 0, 0))
    corrupt = RunLayout(run_dir).progress(1)
    with open(corrupt, "w") as handle:
        handle.write("{not json")
    for _ in range(3):
        assert [r.shard for r in progress.read_progress(run_dir)] == [0]
    messages = [r.getMessage() for r in _warnings(caplog)]
    assert len(messages) == 1 and messages[0].startswith(
        f"snakebatch: reading the progress record {corrupt} failed, going on without it (logged once): "
        "JSONDecodeError: ")
