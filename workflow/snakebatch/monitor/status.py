"""The status command: the picture of a running or finished run, from its run folder alone.

``python -m snakebatch status results/<run>`` (or the ``snakebatch status`` console script)
reads ``plan.json`` (the invocation that last started jobs), the shards' progress records of that
invocation (``progress/shard-NNNNN.json``), and, once gather has written them in that invocation,
``summary.json`` and ``errors.jsonl``. It prints the run's state and counts, each shard's state,
the shards that are stalled (a running shard with no finished mini-batch for longer than
``run_invocation_timeout`` plus a margin: its runner should have killed a hung ``run()`` by then)
and the failures so far with their most frequent messages; once it ended, how (succeeded,
failed, ...) and how long it took, with the cause of a failure gather or the console recorded
in ``summary.json``. ``--json`` prints the same as one JSON object (``RunStatus.to_json``;
fields: snakebatch.monitor.status_record, README "Watch a run"). Reading only, it works on any
machine that sees the run folder (a SLURM cluster's login node).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import socket
import time
from dataclasses import dataclass

from snakebatch.errors import ManifestError, SnakebatchError
from snakebatch.gather.error_report import read_error_report
from snakebatch.monitor import aggregate, progress
from snakebatch.monitor.live import clock
from snakebatch.monitor.status_record import ErrorCount, FirstFailure, RunStatus, ShardStatus
from snakebatch.settings.plan import PlanRecord, read_plan
from snakebatch.storage.layout import RunLayout

STALL_MARGIN_S = 60.0  # added to run_invocation_timeout before a shard counts as stalled
TOP_ERRORS = 10


def _alive(record: progress.ShardProgress) -> bool | None:
    """Is the runner of ``record`` still running? None when it ran on another host."""
    if not record.pid or record.host != socket.gethostname():
        return None
    try:
        os.kill(record.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # Linux: a killed runner nobody has reaped yet is a zombie, not alive
        with open(f"/proc/{record.pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True


def _settled(layout: RunLayout, record: progress.ShardProgress) -> progress.ShardProgress:
    """``record`` as the status sees it: a running record whose runner process is gone (killed
    without a last word) has state ``lost`` and the counts its durable results prove."""
    if record.state != "running" or _alive(record) is not False:
        return record
    return _recounted(layout, dataclasses.replace(record, state="lost"))


def _stalled(record: progress.ShardProgress, now: float, margin_s: float) -> bool:
    """A running shard without a finished mini-batch for longer than its
    run_invocation_timeout + ``margin_s`` (its runner should have killed a hung run() by then)."""
    quiet = now - (record.progress_at or record.started_at)
    return record.state == "running" and quiet > record.run_invocation_timeout + margin_s


def _errors_file_counts(path: str) -> collections.Counter:
    """First line of each failed item's error in the error report ``path`` -> items (an
    unreadable report counts nothing: the shards' records are used instead)."""
    counts: collections.Counter = collections.Counter()
    try:
        read_error_report(path, limit=0,
                          on_record=lambda r: counts.update((str(r.get("error", "")).split("\n", 1)[0],)))
    except ManifestError:
        return collections.Counter()
    return counts


def _totals_from_manifest(layout: RunLayout) -> tuple[int, int]:
    """(total mini-batches, total items) from the first shard's manifest, (0, 0) without one."""
    try:
        with open(layout.manifest(0), encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return 0, 0
    if not isinstance(data, dict):
        return 0, 0
    return int(data.get("total_mini_batches", 0)), int(data.get("total_items", 0))


def _durable_counts(layout: RunLayout, shard: int, invocation: str = "") -> tuple[int, int, int] | None:
    """(mini-batches, items, succeeded items) of ``shard`` whose results the mini-batch store
    holds for the current runner settings: what a shard killed between two progress records
    finished for sure (its record lags by at most ShardRunner.PUBLISH_EVERY_S). Its mini-batches
    another shard job claimed in ``invocation`` (balance_shards) are left out: that job's record
    counts them. None when the run folder lacks what that takes (the runner spec, the manifest,
    the entry script)."""
    from snakebatch.infer.claims import ClaimBoard
    from snakebatch.settings.config import RunnerSpec
    from snakebatch.partition.manifest import ShardManifest
    from snakebatch.infer.store import MiniBatchStore

    try:
        with open(layout.stage_spec("runner"), encoding="utf-8") as handle:
            spec = RunnerSpec.from_json(handle.read())
        manifest = ShardManifest.read(layout.manifest(shard))
        store = MiniBatchStore(layout.store_dir, spec, layout.root)
    except (OSError, ValueError, TypeError, KeyError, SnakebatchError):
        return None
    claims = ClaimBoard(layout.root, invocation, shard, 0.0, create=False)
    mini_batches = items = succeeded = 0
    for mini_batch in manifest.mini_batches:
        newest = claims.current(mini_batch.index) if invocation else None
        if newest is not None and newest[1] is not None and newest[1].shard != shard:
            continue
        result = store.load(mini_batch)
        if result is not None:
            mini_batches, items, succeeded = mini_batches + 1, items + result.item_count, succeeded + result.succeeded
    return mini_batches, items, succeeded


def _recounted(layout: RunLayout, record: progress.ShardProgress) -> progress.ShardProgress:
    """The record of a lost shard with the counts its durable results prove, when they are more
    (failed mini-batches are not stored: the record's failures are kept)."""
    counts = _durable_counts(layout, record.shard, record.invocation)
    if counts is None:
        return record
    mini_batches, items, succeeded = counts
    if mini_batches + record.failed_mini_batches <= record.done_mini_batches:
        return record
    return dataclasses.replace(record, done_mini_batches=mini_batches + record.failed_mini_batches,
                               done_items=items + record.failed_items, succeeded_items=succeeded)


@dataclass(frozen=True)
class _Facts:
    """What the status is made of, read from the run folder once: the plan, the shards'
    progress records (settled: a lost shard marked and recounted), gather's summary and error
    counts of this invocation (None / empty when not written in it), the manifest's totals."""

    run_dir: str
    plan: PlanRecord
    run: aggregate.RunProgress
    summary: dict | None
    error_counts: collections.Counter
    manifest_totals: tuple[int, int]


def _read_facts(run_dir: str, now: float) -> _Facts:
    """Read what ``run_status`` needs from ``run_dir``. Raises ManifestError without ``plan.json``."""
    layout = RunLayout(run_dir)
    plan = read_plan(layout.plan)
    if plan is None:
        raise ManifestError(f"{run_dir!r} is not a run folder that started jobs: {layout.plan} is missing "
                            "(it is written when snakemake starts a run's jobs)")
    plan_written = os.path.getmtime(layout.plan)
    run = aggregate.read_run_progress(run_dir, plan.invocation, settle=lambda r: _settled(layout, r))
    summary = aggregate.summary_or_none(layout.summary, since=plan_written)
    if summary is not None and summary.get("status") == "stale":
        summary = None
    counts: collections.Counter = collections.Counter()
    if summary is not None and os.path.exists(layout.errors) and os.path.getmtime(layout.errors) >= plan_written:
        counts = _errors_file_counts(layout.errors)
    totals = _totals_from_manifest(layout) if not run.records else (0, 0)
    return _Facts(run_dir, plan, run, summary, counts, totals)


def _shard_status(record: progress.ShardProgress, now: float, margin_s: float) -> ShardStatus:
    """The ShardStatus of a settled record (``_settled``) at ``now``."""
    quiet = now - (record.progress_at or record.started_at)
    in_run = record.state == "running" and bool(record.running_since)
    return ShardStatus(
        shard=record.shard, state=record.state, stalled=_stalled(record, now, margin_s),
        done_mini_batches=record.done_mini_batches, shard_mini_batches=record.shard_mini_batches,
        done_items=record.done_items, shard_items=record.shard_items, failed_items=record.failed_items,
        host=record.host, pid=record.pid, quiet_s=round(max(0.0, quiet), 3),
        running_mini_batch=record.running_mini_batch if in_run else None,
        running_items=record.running_items if in_run else 0,
        running_s=round(max(0.0, now - record.running_since), 3) if in_run else None,
        stolen_mini_batches=record.stolen_mini_batches, stolen_items=record.stolen_items,
        adopted_mini_batches=record.adopted_mini_batches)


def _first_failures(run: aggregate.RunProgress, summary: dict | None) -> tuple[FirstFailure, ...]:
    """The shards' first failures, and the start failures of ``summary`` of shards without one,
    in shard order (those naming no shard last)."""
    failures = [FirstFailure(shard, failure) for shard, failure in run.first_failures]
    for start in (summary or {}).get("start_failures") or ():  # shards whose entry script did not start
        if isinstance(start, dict) and not any(f.shard == start.get("shard") for f in failures):
            failures.append(FirstFailure(start.get("shard"), str(start.get("error", ""))))
    failures.sort(key=lambda f: (f.shard is None, f.shard or 0))
    return tuple(failures)


def _state(facts: _Facts) -> str:
    """The run's state (``RunStatus.state``)."""
    summary = facts.summary
    if summary is not None and summary.get("status") in ("succeeded", "failed", "interrupted"):
        return summary["status"]
    if facts.run.shards_running:
        return "running"
    return "incomplete" if facts.run.records else "waiting"


def _status_of(facts: _Facts, now: float, margin_s: float) -> RunStatus:
    """The RunStatus of ``facts`` at ``now`` (pure: reads nothing)."""
    run, summary, state = facts.run, facts.summary, _state(facts)
    total_mb, total_items = (run.total_mini_batches, run.total_items) if run.records else facts.manifest_totals
    done_mb, done_items = run.done_mini_batches, run.done_items
    succeeded, failed = run.succeeded_items, run.failed_items
    if summary is not None and summary.get("status") == "succeeded":  # gather's count is the last word
        done_mb = total_mb = int(summary.get("mini_batches", done_mb))
        done_items = total_items = int(summary.get("items", done_items))
        succeeded, failed = int(summary.get("succeeded", succeeded)), int(summary.get("failed", failed))
    end = now if state in ("running", "waiting") else (run.updated_at or now)
    elapsed = max(0.0, end - run.started_at) if run.started_at else 0.0
    computed_items = max(0, done_items - run.reused_items)
    rate = computed_items / elapsed if elapsed > 0 else 0.0  # reused mini-batches cost no time
    percent = 100.0 if total_mb and done_mb >= total_mb else (100.0 * done_mb / total_mb if total_mb else 0.0)
    shards = tuple(_shard_status(record, now, margin_s) for record in run.records)
    errors = facts.error_counts.most_common(TOP_ERRORS) if facts.error_counts else run.top_errors[:TOP_ERRORS]
    return RunStatus(
        run_dir=facts.run_dir, run_name=facts.plan.run_name, invocation=facts.plan.invocation, state=state,
        shard_count=facts.plan.shard_count, shards_reporting=run.shards_reporting,
        done_mini_batches=done_mb, total_mini_batches=total_mb, reused_mini_batches=run.reused_mini_batches,
        reused_items=run.reused_items, computed_items=computed_items,
        running_mini_batches=run.running_mini_batches, running_items=run.running_items,
        done_items=done_items, total_items=total_items, succeeded_items=succeeded, failed_items=failed,
        percent=round(percent, 3), started_at=run.started_at, updated_at=run.updated_at,
        elapsed_s=round(elapsed, 3), items_per_s=round(rate, 3),
        eta_s=round((total_items - done_items) / rate, 3) if state == "running" and rate > 0 else None,
        finished=state not in ("running", "waiting"), stall_after_s=margin_s,
        stalled_shards=tuple(s.shard for s in shards if s.stalled), shards=shards,
        top_errors=tuple(ErrorCount(m, c) for m, c in errors),
        first_failures=_first_failures(run, summary), error=summary.get("error") if summary else None)


def run_status(run_dir: str, now: float | None = None, stall_margin_s: float = STALL_MARGIN_S) -> RunStatus:
    """The status of the run in ``run_dir`` (``results/{run_name}``) at ``now`` (``time.time()``
    seconds): see RunStatus. Reads ``plan.json``, the progress records of its invocation (a
    running record whose runner process is gone is a ``lost`` shard, counted from its durable
    results), and ``summary.json`` and ``errors.jsonl`` when written in that invocation. A
    running shard is stalled after its run_invocation_timeout + ``stall_margin_s`` seconds
    without a finished mini-batch.

    Raises ManifestError when ``run_dir`` holds no ``plan.json`` (no run started jobs there)."""
    now = time.time() if now is None else now
    return _status_of(_read_facts(run_dir, now), now, stall_margin_s)


_ENDED = {"succeeded": "finished in", "failed": "failed after", "interrupted": "interrupted after",
          "incomplete": "stopped after"}


def _rate_text(status: RunStatus) -> str:
    """``"2.0 items/s"``, and how many items were reused from earlier runs when some were
    (they took no time: the rate is of the items computed in this invocation)."""
    reused = status.reused_items
    if not reused:
        return f"{status.items_per_s:.1f} items/s"
    if not status.computed_items:
        return f"all {reused} done items reused from earlier runs"
    return f"{status.items_per_s:.1f} items/s over {status.computed_items} computed ({reused} reused)"


def _shard_line(shard: ShardStatus) -> str:
    """One shard's line: its own mini-batches (those computed here plus those other shard jobs
    handed off), then what this job computed for busy shards, and the mini-batch in run() now."""
    state = "stalled" if shard.stalled else shard.state
    running = ""
    if shard.running_s is not None:
        running = (f", mini-batch {shard.running_mini_batch} ({shard.running_items} items) in run() for "
                   f"{clock(shard.running_s)}")
    stolen, adopted = shard.stolen_mini_batches, shard.adopted_mini_batches
    own_items = shard.done_items - shard.stolen_items
    return (f"  shard {shard.shard:05d}  {state:<11} {shard.done_mini_batches - stolen + adopted}/"
            f"{shard.shard_mini_batches} mini-batches"
            + (f" ({adopted} computed by other shards)" if adopted else "")
            + f", {own_items}/{shard.shard_items} items" + (" computed here" if adopted else "")
            + f", {shard.failed_items} failed, last progress {clock(shard.quiet_s)} ago"
            + (f", and {stolen} mini-batch(es) ({shard.stolen_items} items) taken from busy shards" if stolen else "")
            + running + (f" ({shard.host} pid {shard.pid})" if shard.state == "running" else ""))


def format_status(status: RunStatus) -> str:
    """The status (``run_status``) for people: the run line, the counts (elapsed and ETA while it
    runs; how long it took once finished), the mini-batches in run() now, one line per shard,
    the stalled shards, the run's error (a script that could not start, a failed shard), and
    the failures with their most frequent messages ("so far" while it runs)."""
    lines = [f"run {status.run_name!r} ({status.run_dir}): {status.state}, "
             f"{status.shards_reporting} of {status.shard_count} shard(s) reporting"]
    if status.finished and status.state != "waiting":
        when = f"{_ENDED.get(status.state, 'elapsed')} {clock(status.elapsed_s)}"
    else:
        when = f"elapsed {clock(status.elapsed_s)}, ETA {clock(status.eta_s)}"
    lines.append(f"  {status.done_mini_batches}/{status.total_mini_batches} mini-batches "
                 f"({status.percent:.1f}%), {status.succeeded_items} succeeded, {status.failed_items} failed "
                 f"of {status.total_items} items, {_rate_text(status)}, {when}")
    if status.running_mini_batches:
        lines.append(f"  {status.running_mini_batches} mini-batch(es) in run() now, {status.running_items} item(s)")
    lines += [_shard_line(shard) for shard in status.shards]
    if status.stalled_shards:
        lines.append(f"Stalled: shard(s) {', '.join(str(s) for s in status.stalled_shards)} finished no "
                     f"mini-batch for longer than run_invocation_timeout + {status.stall_after_s:.0f} s; "
                     "see their logs in logs/sys/node/")
    if status.error and status.state in ("failed", "interrupted"):
        lines.append("Cause: " + status.error.split("\n", 1)[0])
        lines += [f"  shard {f.shard:05d}: {f.failure}" for f in status.first_failures
                  if f.shard is not None and not status.top_errors]
    if status.top_errors:
        so_far = "" if status.finished else " so far"
        lines.append(f"Failures{so_far}: {status.failed_items} item(s); most frequent messages:")
        lines += [f"  {e.count:>6}  {e.message}" for e in status.top_errors]
    return "\n".join(lines)
