"""The status command: the picture of a running or finished run, from its run folder alone.

``python -m snakebatch status results/<run>`` (or the ``snakebatch status`` console script)
reads ``plan.json`` (the invocation that last started jobs), the shards' progress records of that
invocation (``progress/shard-NNNNN.json``), and, once gather has written them in that invocation,
``summary.json`` and ``errors.jsonl``. It prints the run's state and counts, each shard's state,
the shards that are stalled (a running shard with no finished mini-batch for longer than
``run_invocation_timeout`` plus a margin: its runner should have killed a hung ``run()`` by then)
and the failures so far with their most frequent messages; once it ended, how (succeeded,
failed, ...) and how long it took, with the cause of a failure gather or the console recorded
in ``summary.json``. ``--json`` prints the same as one JSON
object (fields: ``run_status``'s docstring, README "Watch a run"). Reading only, it works on any
machine that sees the run folder (a SLURM cluster's login node).
"""

from __future__ import annotations

import collections
import json
import os
import socket
import time

from snakebatch.monitor import progress
from snakebatch.gather.error_report import read_error_report
from snakebatch.errors import ManifestError, SnakebatchError
from snakebatch.storage.layout import RunLayout
from snakebatch.monitor.live import clock
from snakebatch.settings.plan import read_plan

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


def _shard_state(record: progress.ShardProgress, now: float, margin_s: float) -> tuple[str, bool]:
    """(state, stalled) of one shard: the record's state, ``lost`` for a running record whose
    runner process is gone (killed without a last word), and stalled for a running one without a
    finished mini-batch for longer than its run_invocation_timeout + ``margin_s``."""
    if record.state != "running":
        return record.state, False
    if _alive(record) is False:
        return "lost", False
    quiet = now - (record.progress_at or record.started_at)
    return "running", quiet > record.run_invocation_timeout + margin_s


def _fresh_json(path: str, since: float):
    """The JSON in ``path`` when it was written at or after ``since`` (seconds), else None."""
    try:
        if os.path.getmtime(path) < since:
            return None
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


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
    data = _fresh_json(layout.manifest(0), 0.0)
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
    import dataclasses

    counts = _durable_counts(layout, record.shard, record.invocation)
    if counts is None:
        return record
    mini_batches, items, succeeded = counts
    if mini_batches + record.failed_mini_batches <= record.done_mini_batches:
        return record
    return dataclasses.replace(record, done_mini_batches=mini_batches + record.failed_mini_batches,
                               done_items=items + record.failed_items, succeeded_items=succeeded)


def run_status(run_dir: str, now: float | None = None, stall_margin_s: float = STALL_MARGIN_S) -> dict:
    """The status of the run in ``run_dir`` (``results/{run_name}``) at ``now`` (``time.time()``
    seconds) as a JSON-ready dict:

    ``run_dir``, ``run_name``, ``invocation`` (plan.json's id), ``state`` (``waiting``: no shard
    has reported; ``running``: a shard runs; ``incomplete``: none runs and gather has not written
    a verdict in this invocation - it was killed, or shards still queue; else gather's or the
    console's verdict: ``succeeded``, ``failed``, ``interrupted``), ``shard_count``,
    ``shards_reporting``; counts ``done_mini_batches``, ``total_mini_batches``,
    ``reused_mini_batches``, ``done_items``, ``total_items``, ``succeeded_items``,
    ``failed_items``, ``percent`` (of mini-batches); ``reused_items`` (done items of reused
    mini-batches) and ``computed_items`` (the other done items); ``running_mini_batches`` and
    ``running_items`` (mini-batches in a run() call now, from the records, and their items);
    ``started_at``, ``updated_at`` (epoch seconds of the first shard start and the newest record,
    null without records), ``elapsed_s`` (to now while running, else to the newest record),
    ``items_per_s`` (computed items over elapsed: reused mini-batches take no time), ``eta_s``
    (null when unknown or not running), ``finished`` (the state is neither running nor waiting);
    ``stall_after_s`` (the margin added to each shard's run_invocation_timeout) and
    ``stalled_shards`` (shard numbers); ``shards``: per shard ``shard``, ``state`` (running,
    done, stopped, failed, interrupted, lost), ``stalled``, ``done_mini_batches``,
    ``shard_mini_batches``, ``done_items``, ``shard_items``, ``failed_items``, ``host``,
    ``pid``, ``quiet_s`` (seconds since its last finished mini-batch), ``running_mini_batch``,
    ``running_items``, ``running_s`` (its mini-batch in run() now, the items of that call, seconds
    since it started; None, 0, None when none), ``stolen_mini_batches`` and ``stolen_items`` (computed for busy
    shards, in its counts) and ``adopted_mini_batches`` (its own that another shard job computed
    and counts: ``balance_shards``); a lost shard's counts are
    those of its durable results in the mini-batch store when they are more (its last record
    lags by at most a second); ``top_errors``: up to 10
    ``{"message", "count"}`` by count (errors.jsonl once gathered, else the shards' records, each
    of which keeps its 5 most frequent); ``first_failures``: the shards' first failed items
    (``{"shard", "failure"}``, in shard order), and for each shard whose entry script did not
    start (summary.json's ``start_failures``) the first line of its error; ``error``: the cause
    in summary.json of this invocation (a failed run: the start failures with their traceback,
    a failed shard job, ...), None otherwise.

    Raises ManifestError when ``run_dir`` holds no ``plan.json`` (no run started jobs there)."""
    now = time.time() if now is None else now
    layout = RunLayout(run_dir)
    plan = read_plan(layout.plan)
    if plan is None:
        raise ManifestError(f"{run_dir!r} is not a run folder that started jobs: {layout.plan} is missing "
                            "(it is written when snakemake starts a run's jobs)")
    plan_written = os.path.getmtime(layout.plan)
    records = progress.invocation_progress(run_dir, plan.invocation)
    shards, stalled, counts, first_failures = [], [], collections.Counter(), []
    for number, record in enumerate(records):
        state, is_stalled = _shard_state(record, now, stall_margin_s)
        if state == "lost":
            record = records[number] = _recounted(layout, record)
        quiet = now - (record.progress_at or record.started_at)
        shards.append({"shard": record.shard, "state": state, "stalled": is_stalled,
                       "done_mini_batches": record.done_mini_batches,
                       "shard_mini_batches": record.shard_mini_batches, "done_items": record.done_items,
                       "shard_items": record.shard_items, "failed_items": record.failed_items,
                       "host": record.host, "pid": record.pid, "quiet_s": round(max(0.0, quiet), 3),
                       "running_mini_batch": record.running_mini_batch if state == "running" and record.running_since
                       else None,
                       "running_items": record.running_items if state == "running" and record.running_since else 0,
                       "running_s": round(max(0.0, now - record.running_since), 3)
                       if state == "running" and record.running_since else None,
                       "stolen_mini_batches": record.stolen_mini_batches,
                       "stolen_items": record.stolen_items,
                       "adopted_mini_batches": record.adopted_mini_batches})
        if is_stalled:
            stalled.append(record.shard)
        for message, count in record.top_errors:
            counts[message] += count
        if record.first_failure:
            first_failures.append({"shard": record.shard, "failure": record.first_failure})

    summary = _fresh_json(layout.summary, plan_written)
    if isinstance(summary, dict) and summary.get("status") == "stale":
        summary = None
    if summary is not None and os.path.exists(layout.errors) and os.path.getmtime(layout.errors) >= plan_written:
        counts = _errors_file_counts(layout.errors) or counts
    error = summary.get("error") if isinstance(summary, dict) else None
    for start in (summary or {}).get("start_failures") or ():  # shards whose entry script did not start
        if isinstance(start, dict) and not any(f["shard"] == start.get("shard") for f in first_failures):
            first_failures.append({"shard": start.get("shard"), "failure": str(start.get("error", ""))})
    first_failures.sort(key=lambda f: (f["shard"] is None, f["shard"] or 0))
    total_mb = max((r.total_mini_batches for r in records), default=0)
    total_items = max((r.total_items for r in records), default=0)
    if not records:
        total_mb, total_items = _totals_from_manifest(layout)
    done_items = sum(r.done_items for r in records)
    done_mb = sum(r.done_mini_batches for r in records)
    succeeded = sum(r.succeeded_items for r in records)
    failed = sum(r.failed_items for r in records)
    if summary is not None and summary.get("status") == "succeeded":  # gather's count is the last word
        done_mb = total_mb = int(summary.get("mini_batches", done_mb))
        done_items = total_items = int(summary.get("items", done_items))
        succeeded, failed = int(summary.get("succeeded", succeeded)), int(summary.get("failed", failed))

    if summary is not None and summary.get("status") in ("succeeded", "failed", "interrupted"):
        state = summary["status"]
    elif any(s["state"] == "running" for s in shards):
        state = "running"
    elif not records:
        state = "waiting"
    else:
        state = "incomplete"
    started = min((r.started_at for r in records if r.started_at), default=None)
    updated = max((r.updated_at for r in records if r.updated_at), default=None)
    end = now if state in ("running", "waiting") else (updated or now)
    elapsed = max(0.0, end - started) if started else 0.0
    reused_items = sum(r.reused_items for r in records)
    computed_items = max(0, done_items - reused_items)
    rate = computed_items / elapsed if elapsed > 0 else 0.0  # reused mini-batches cost no time
    running = [r for r, s in zip(records, shards) if s["state"] == "running" and r.running_since]
    percent = 100.0 if total_mb and done_mb >= total_mb else (100.0 * done_mb / total_mb if total_mb else 0.0)
    return {
        "run_dir": run_dir, "run_name": plan.run_name, "invocation": plan.invocation, "state": state,
        "shard_count": plan.shard_count, "shards_reporting": len(records),
        "done_mini_batches": done_mb, "total_mini_batches": total_mb,
        "reused_mini_batches": sum(r.reused_mini_batches for r in records),
        "reused_items": reused_items, "computed_items": computed_items,
        "running_mini_batches": len(running), "running_items": sum(r.running_items for r in running),
        "done_items": done_items, "total_items": total_items, "succeeded_items": succeeded,
        "failed_items": failed, "percent": round(percent, 3),
        "started_at": started, "updated_at": updated, "elapsed_s": round(elapsed, 3),
        "items_per_s": round(rate, 3),
        "eta_s": round((total_items - done_items) / rate, 3) if state == "running" and rate > 0 else None,
        "finished": state not in ("running", "waiting"),
        "stall_after_s": stall_margin_s, "stalled_shards": stalled, "shards": shards,
        "top_errors": [{"message": m, "count": c} for m, c in counts.most_common(TOP_ERRORS)],
        "first_failures": first_failures, "error": error,
    }


_ENDED = {"succeeded": "finished in", "failed": "failed after", "interrupted": "interrupted after",
          "incomplete": "stopped after"}


def _rate_text(status: dict) -> str:
    """``"2.0 items/s"``, and how many items were reused from earlier runs when some were
    (they took no time: the rate is of the items computed in this invocation)."""
    reused = status["reused_items"]
    if not reused:
        return f"{status['items_per_s']:.1f} items/s"
    if not status["computed_items"]:
        return f"all {reused} done items reused from earlier runs"
    return f"{status['items_per_s']:.1f} items/s over {status['computed_items']} computed ({reused} reused)"


def format_status(status: dict) -> str:
    """The status (``run_status``) for people: the run line, the counts (elapsed and ETA while it
    runs; how long it took once finished), the mini-batches in run() now, one line per shard,
    the stalled shards, the run's error (a script that could not start, a failed shard), and
    the failures with their most frequent messages ("so far" while it runs)."""
    lines = [f"run {status['run_name']!r} ({status['run_dir']}): {status['state']}, "
             f"{status['shards_reporting']} of {status['shard_count']} shard(s) reporting"]
    if status["finished"] and status["state"] != "waiting":
        when = f"{_ENDED.get(status['state'], 'elapsed')} {clock(status['elapsed_s'])}"
    else:
        when = f"elapsed {clock(status['elapsed_s'])}, ETA {clock(status['eta_s'])}"
    lines.append(f"  {status['done_mini_batches']}/{status['total_mini_batches']} mini-batches "
                 f"({status['percent']:.1f}%), {status['succeeded_items']} succeeded, {status['failed_items']} failed "
                 f"of {status['total_items']} items, {_rate_text(status)}, {when}")
    if status["running_mini_batches"]:
        lines.append(f"  {status['running_mini_batches']} mini-batch(es) in run() now, "
                     f"{status['running_items']} item(s)")
    for shard in status["shards"]:
        state = "stalled" if shard["stalled"] else shard["state"]
        running = ""
        if shard["running_s"] is not None:
            running = (f", mini-batch {shard['running_mini_batch']} ({shard['running_items']} items) in run() for "
                       f"{clock(shard['running_s'])}")
        # the shard's own mini-batches (those computed here plus those other shard jobs handed
        # off), then what this job computed for busy shards
        stolen, adopted = shard.get("stolen_mini_batches") or 0, shard.get("adopted_mini_batches") or 0
        own_items = shard["done_items"] - shard.get("stolen_items", 0)
        lines.append(f"  shard {shard['shard']:05d}  {state:<11} {shard['done_mini_batches'] - stolen + adopted}/"
                     f"{shard['shard_mini_batches']} mini-batches"
                     + (f" ({adopted} computed by other shards)" if adopted else "")
                     + f", {own_items}/{shard['shard_items']} items" + (" computed here" if adopted else "")
                     + f", {shard['failed_items']} failed, last progress {clock(shard['quiet_s'])} ago"
                     + (f", and {stolen} mini-batch(es) ({shard.get('stolen_items') or 0} items) taken from busy "
                        "shards" if stolen else "") + running
                     + (f" ({shard['host']} pid {shard['pid']})" if shard["state"] == "running" else ""))
    if status["stalled_shards"]:
        lines.append(f"Stalled: shard(s) {', '.join(str(s) for s in status['stalled_shards'])} finished no "
                     f"mini-batch for longer than run_invocation_timeout + {status['stall_after_s']:.0f} s; "
                     "see their logs in logs/sys/node/")
    if status["error"] and status["state"] in ("failed", "interrupted"):
        lines.append("Cause: " + status["error"].split("\n", 1)[0])
        lines += [f"  shard {f['shard']:05d}: {f['failure']}" for f in status["first_failures"]
                  if f["shard"] is not None and not status["top_errors"]]
    if status["top_errors"]:
        so_far = "" if status["finished"] else " so far"
        lines.append(f"Failures{so_far}: {status['failed_items']} item(s); most frequent messages:")
        lines += [f"  {e['count']:>6}  {e['message']}" for e in status["top_errors"]]
    return "\n".join(lines)
