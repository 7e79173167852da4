"""The status command (snakebatch.monitor.status, snakebatch.cli): a run's picture from its folder."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import REPO, runner_spec, write, write_file_manifest


def _plan(run_dir, invocation="inv", shard_count=2):
    from snakebatch.settings.plan import PlanRecord, write_plan

    write_plan(os.path.join(run_dir, "plan.json"), PlanRecord("r", shard_count, shard_count, invocation))


def _record(shard, **fields):
    from snakebatch.monitor.progress import ShardProgress

    values = dict(invocation="inv", shard=shard, done_mini_batches=0, shard_mini_batches=3, failed_items=0,
                  failed_mini_batches=0, shard_items=6, total_items=12, total_mini_batches=6,
                  run_invocation_timeout=60.0, started_at=1000.0, progress_at=1000.0, updated_at=1000.0)
    values.update(fields)
    return ShardProgress(**values)


def test_status_adds_up_the_shards_names_a_stalled_one_and_counts_the_errors(tmp_path):
    from snakebatch.monitor.progress import write_progress
    from snakebatch.monitor.status import format_status, run_status

    run_dir = str(tmp_path / "run")
    _plan(run_dir)
    write_progress(run_dir, _record(0, done_mini_batches=2, done_items=4, succeeded_items=3, failed_items=1,
                                    failed_mini_batches=1, progress_at=1170.0, updated_at=1170.0,
                                    first_failure="data/b.txt: ValueError: bad",
                                    top_errors=(("ValueError: bad", 1),)))
    # no finished mini-batch since 1000: 200 s > run_invocation_timeout 60 + margin 60
    write_progress(run_dir, _record(1, done_mini_batches=1, done_items=2, succeeded_items=2, updated_at=1190.0))
    write_progress(run_dir, _record(2, invocation="older", done_mini_batches=3))
    status = run_status(run_dir, now=1200.0)
    assert {k: status.to_dict()[k] for k in ("state", "shard_count", "shards_reporting", "done_mini_batches",
                                   "total_mini_batches", "done_items", "total_items", "succeeded_items",
                                   "failed_items", "percent", "stalled_shards", "elapsed_s", "items_per_s",
                                   "eta_s")} == {
        "state": "running", "shard_count": 2, "shards_reporting": 2, "done_mini_batches": 3,
        "total_mini_batches": 6, "done_items": 6, "total_items": 12, "succeeded_items": 5, "failed_items": 1,
        "percent": 50.0, "stalled_shards": [1], "elapsed_s": 200.0, "items_per_s": 0.03, "eta_s": 200.0}
    assert [(s.shard, s.state, s.stalled, s.quiet_s) for s in status.shards] == [
        (0, "running", False, 30.0), (1, "running", True, 200.0)]
    assert status.to_dict()["top_errors"] == [{"message": "ValueError: bad", "count": 1}]
    assert status.to_dict()["first_failures"] == [{"shard": 0, "failure": "data/b.txt: ValueError: bad"}]
    text = format_status(status).splitlines()
    assert text[0] == f"run 'r' ({run_dir}): running, 2 of 2 shard(s) reporting"
    assert text[1] == ("  3/6 mini-batches (50.0%), 5 succeeded, 1 failed of 12 items, 0.0 items/s, "
                       "elapsed 0:03:20, ETA 0:03:20")
    assert text[2].startswith("  shard 00000  running     2/3 mini-batches, 4/6 items, 1 failed, last progress 0:00:30 ago")
    assert text[3].startswith("  shard 00001  stalled     1/3 mini-batches, 2/6 items, 0 failed, last progress 0:03:20 ago")
    assert text[4:] == [
        "Stalled: shard(s) 1 finished no mini-batch for longer than run_invocation_timeout + 60 s; "
        "see their logs in logs/sys/node/",
        "Failures so far: 1 item(s); most frequent messages:",
        "       1  ValueError: bad"]


def test_a_folder_without_a_plan_is_refused_naming_it(tmp_path, capsys):
    from snakebatch.cli import main

    assert main(["status", str(tmp_path / "nothing")]) == 2
    assert capsys.readouterr().err == (
        f"snakebatch status: error: {str(tmp_path / 'nothing')!r} is not a run folder that started jobs: "
        f"{tmp_path / 'nothing' / 'plan.json'} is missing (it is written when snakemake starts a run's jobs)\n")


def test_a_hanging_worker_is_reported_as_stalled_and_its_killed_runner_as_lost(tmp_path, files):
    """A worker hanging in init() (init_timeout 600 s) makes no progress for longer than
    run_invocation_timeout (1 s) + the margin (1 s): stalled. Its runner killed with SIGKILL
    leaves a record that says running: the status sees the process is gone."""
    from snakebatch.monitor.status import run_status

    script = write(tmp_path / "hang.py", """
        import time
        def init():
            time.sleep(1000)
        def run(mini_batch):
            return mini_batch
    """)
    run_dir = str(tmp_path / "run")
    _plan(run_dir, invocation="hang-1", shard_count=1)
    spec = runner_spec(script, run_invocation_timeout=1.0, init_timeout=600.0)
    manifest = write_file_manifest(tmp_path / "run", files[:4], 2)
    env = {**os.environ, "PYTHONPATH": os.path.join(REPO, "workflow")}
    proc = subprocess.Popen([sys.executable, "-m", "snakebatch.infer.job", "--spec", spec.to_json(), "--manifest",
                             manifest, "--output", os.path.join(run_dir, "shards", "shard-00000.jsonl")],
                            env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        status = run_status(run_dir, stall_margin_s=1.0)
        while status.stalled_shards != (0,) and time.monotonic() < deadline:
            time.sleep(0.2)
            status = run_status(run_dir, stall_margin_s=1.0)
        assert (status.state, status.stalled_shards, status.done_mini_batches,
                status.total_mini_batches) == ("running", (0,), 0, 2)
        assert status.shards[0].pid == proc.pid
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    status = run_status(run_dir, stall_margin_s=1.0)
    assert (status.state, status.shards[0].state, status.stalled_shards) == ("incomplete", "lost", ())


def test_python_m_snakebatch_status_prints_json(tmp_path):
    from snakebatch.monitor.progress import write_progress

    run_dir = str(tmp_path / "run")
    _plan(run_dir, shard_count=1)
    write_progress(run_dir, _record(0, done_mini_batches=3, done_items=6, succeeded_items=6, state="done",
                                    shard_items=6, total_items=6, total_mini_batches=3, updated_at=1010.0))
    env = {**os.environ, "PYTHONPATH": os.path.join(REPO, "workflow")}
    proc = subprocess.run([sys.executable, "-m", "snakebatch", "status", run_dir, "--json"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)
    assert {k: status[k] for k in ("state", "done_mini_batches", "total_mini_batches", "percent", "elapsed_s",
                                   "eta_s")} == {
        "state": "incomplete", "done_mini_batches": 3, "total_mini_batches": 3, "percent": 100.0,
        "elapsed_s": 10.0, "eta_s": None}


def _summary(run_dir, **fields):
    """summary.json written after plan.json (so it is this invocation's)."""
    path = os.path.join(run_dir, "summary.json")
    with open(path, "w") as handle:
        json.dump(fields, handle)
    plan_time = os.path.getmtime(os.path.join(run_dir, "plan.json"))
    os.utime(path, (plan_time + 5, plan_time + 5))


def test_a_run_whose_init_failed_names_the_cause_and_its_shard(tmp_path):
    from snakebatch.monitor.progress import write_progress
    from snakebatch.monitor.status import format_status, run_status

    run_dir = str(tmp_path / "run")
    _plan(run_dir)
    write_progress(run_dir, _record(0, state="failed", updated_at=1004.0))
    write_progress(run_dir, _record(1, state="done", done_mini_batches=3, done_items=6, succeeded_items=6,
                                    updated_at=1006.0))
    headline = "init() of entry_script '/s.py' failed 2 times in a row: FileNotFoundError: model.pt not found"
    _summary(run_dir, run_name="r", status="failed", output=None,
             error=f"the entry script failed to start in 1 of 2 shard(s).\n{headline}\nTraceback ...",
             start_failures=[{"shard": 0, "error": headline}])
    status = run_status(run_dir, now=1100.0)
    assert (status.state, status.finished, status.eta_s, status.elapsed_s) == ("failed", True, None, 6.0)
    assert status.error.startswith("the entry script failed to start in 1 of 2 shard(s).\n")
    assert status.to_dict()["first_failures"] == [{"shard": 0, "failure": headline}]
    assert status.top_errors == ()
    text = format_status(status).splitlines()
    assert text[1] == "  3/6 mini-batches (50.0%), 6 succeeded, 0 failed of 12 items, 1.0 items/s, failed after 0:00:06"
    assert text[2].startswith("  shard 00000  failed      0/3 mini-batches, 0/6 items, 0 failed, last progress ")
    assert text[4:] == ["Cause: the entry script failed to start in 1 of 2 shard(s).", f"  shard 00000: {headline}"]


def test_a_finished_run_says_how_long_it_took_and_failures_not_so_far(tmp_path):
    from snakebatch.monitor.progress import write_progress
    from snakebatch.monitor.status import format_status, run_status

    run_dir = str(tmp_path / "run")
    _plan(run_dir, shard_count=1)
    write_progress(run_dir, _record(0, state="done", done_mini_batches=3, done_items=6, succeeded_items=5,
                                    failed_items=1, failed_mini_batches=1, shard_items=6, total_items=6,
                                    total_mini_batches=3, updated_at=1012.0, top_errors=(("ValueError: bad", 1),)))
    _summary(run_dir, run_name="r", status="succeeded", items=6, succeeded=5, failed=1, mini_batches=3)
    text = format_status(run_status(run_dir, now=2000.0)).splitlines()
    assert text[0] == f"run 'r' ({run_dir}): succeeded, 1 of 1 shard(s) reporting"
    assert text[1] == "  3/3 mini-batches (100.0%), 5 succeeded, 1 failed of 6 items, 0.5 items/s, finished in 0:00:12"
    assert text[3:] == ["Failures: 1 item(s); most frequent messages:", "       1  ValueError: bad"]


def test_a_mostly_reused_rerun_rates_only_the_computed_items(tmp_path):
    from snakebatch.monitor.progress import write_progress
    from snakebatch.monitor.status import format_status, run_status

    run_dir = str(tmp_path / "run")
    _plan(run_dir, shard_count=1)
    # 5 of 6 mini-batches reused (10 items, no time), 2 items computed in the 4 s since the start
    write_progress(run_dir, _record(0, state="done", done_mini_batches=6, done_items=12, succeeded_items=12,
                                    reused_mini_batches=5, reused_items=10, shard_mini_batches=6, shard_items=12,
                                    updated_at=1004.0))
    status = run_status(run_dir, now=1010.0)
    assert (status.reused_items, status.computed_items, status.items_per_s) == (10, 2, 0.5)
    assert format_status(status).splitlines()[1] == (
        "  6/6 mini-batches (100.0%), 12 succeeded, 0 failed of 12 items, 0.5 items/s over 2 computed (10 reused), "
        "stopped after 0:00:04")
    write_progress(run_dir, _record(0, state="done", done_mini_batches=6, done_items=12, succeeded_items=12,
                                    reused_mini_batches=6, reused_items=12, shard_mini_batches=6, shard_items=12,
                                    updated_at=1001.0))
    status = run_status(run_dir, now=1010.0)
    assert (status.computed_items, status.items_per_s) == (0, 0.0)
    assert "12 succeeded, 0 failed of 12 items, all 12 done items reused from earlier runs, stopped after 0:00:01" \
        in format_status(status)


def test_a_mini_batch_in_run_is_shown_with_its_items_and_time(tmp_path):
    from snakebatch.monitor.progress import write_progress
    from snakebatch.monitor.status import format_status, run_status

    run_dir = str(tmp_path / "run")
    _plan(run_dir)
    write_progress(run_dir, _record(0, done_mini_batches=1, done_items=2, succeeded_items=2, progress_at=1010.0,
                                    running_mini_batch=1, running_items=2, running_since=1010.0, pid=0))
    write_progress(run_dir, _record(1, progress_at=1000.0, pid=0))
    status = run_status(run_dir, now=1052.0)
    assert (status.running_mini_batches, status.running_items) == (1, 2)
    assert [(s.running_mini_batch, s.running_items, s.running_s) for s in status.shards] == [
        (1, 2, 42.0), (None, 0, None)]
    text = format_status(status).splitlines()
    assert text[2] == "  1 mini-batch(es) in run() now, 2 item(s)"
    assert text[3].startswith("  shard 00000  running     1/3 mini-batches, 2/6 items, 0 failed, last progress "
                              "0:00:42 ago, mini-batch 1 (2 items) in run() for 0:00:42 (")


def test_status_of_balanced_shards_counts_each_mini_batch_once_and_says_who_took_what(tmp_path):
    from snakebatch.monitor.progress import write_progress
    from snakebatch.monitor.status import format_status, run_status

    run_dir = str(tmp_path / "run")
    _plan(run_dir)
    # shard 0 did its 3 and 2 of shard 1's; shard 1 did 1 and adopted the 2 hand-offs
    write_progress(run_dir, _record(0, done_mini_batches=5, done_items=10, succeeded_items=10, state="done",
                                    stolen_mini_batches=2, stolen_items=4, updated_at=1100.0))
    write_progress(run_dir, _record(1, done_mini_batches=1, done_items=2, succeeded_items=2, state="done",
                                    adopted_mini_batches=2, updated_at=1100.0))
    status = run_status(run_dir, now=1100.0)
    assert (status.done_mini_batches, status.total_mini_batches, status.done_items, status.percent) == \
        (6, 6, 12, 100.0)
    assert [(s.shard, s.stolen_mini_batches, s.adopted_mini_batches) for s in status.shards] == [
        (0, 2, 0), (1, 0, 2)]
    text = format_status(status).splitlines()
    assert text[2] == ("  shard 00000  done        3/3 mini-batches, 6/6 items, 0 failed, last progress 0:01:40 ago, "
                       "and 2 mini-batch(es) (4 items) taken from busy shards")
    assert text[3] == ("  shard 00001  done        3/3 mini-batches (2 computed by other shards), 2/6 items computed "
                       "here, 0 failed, last progress 0:01:40 ago")


def test_a_lost_shards_recount_leaves_out_its_mini_batches_another_shard_job_claimed(tmp_path, files, monkeypatch):
    from snakebatch.monitor import progress
    from snakebatch.infer.claims import ClaimBoard
    from snakebatch.storage.layout import RunLayout
    from snakebatch.infer.job import run_shard
    from snakebatch.monitor.status import _durable_counts

    monkeypatch.setenv(progress.INVOCATION_ENV, "inv-lost")
    run_dir = str(tmp_path / "run")
    spec = runner_spec(write(tmp_path / "echo.py", "def run(mini_batch):\n    return mini_batch\n"))
    write(RunLayout(run_dir).stage_spec("runner"), spec.to_json())
    manifest = write_file_manifest(tmp_path / "run", files[:6], 2)
    run_shard(spec, manifest, os.path.join(run_dir, "shards", "shard-00000.jsonl"), run_dir)
    layout = RunLayout(run_dir)
    assert _durable_counts(layout, 0, "inv-lost") == (3, 6, 6)
    # mini-batch 1 was taken over by shard 3 (its hand-off is shard 3's to count)
    other = ClaimBoard(run_dir, "inv-lost", 3, 80.0, host="node-b", pid=31)
    write(other.path(1, 1), '{"invocation": "inv-lost", "shard": 3, "host": "node-b", "pid": 31, "at": 0}')
    assert _durable_counts(layout, 0, "inv-lost") == (2, 4, 4)
    assert _durable_counts(layout, 0, "another-invocation") == (3, 6, 6)


def test_the_status_is_a_frozen_record_whose_json_reads_back_the_same(tmp_path):
    import dataclasses

    from snakebatch.monitor.progress import write_progress
    from snakebatch.monitor.status import run_status
    from snakebatch.monitor.status_record import RunStatus

    run_dir = str(tmp_path / "run")
    _plan(run_dir)
    write_progress(run_dir, _record(0, done_mini_batches=2, done_items=4, succeeded_items=3, failed_items=1,
                                    failed_mini_batches=1, first_failure="data/b.txt: ValueError: bad",
                                    top_errors=(("ValueError: bad", 1),), running_since=1100.0, running_items=2))
    write_progress(run_dir, _record(1, state="done", done_mini_batches=3, done_items=6, succeeded_items=6))
    status = run_status(run_dir, now=1200.0)
    text = status.to_json()
    assert json.loads(text) == status.to_dict()
    assert list(json.loads(text))[:4] == ["run_dir", "run_name", "invocation", "state"]
    assert RunStatus.from_json(text) == status
    with pytest.raises(dataclasses.FrozenInstanceError):
        status.state = "done"
    with pytest.raises(TypeError):
        RunStatus.from_json("[]")
