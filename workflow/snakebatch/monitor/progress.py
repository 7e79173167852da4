"""Progress: what the run tells the console, and what shards tell each other.

The console gets a line at start and the outcome at the end; on failure the last lines are the
root cause written by gather (``logs/job_result.txt``) or, when a shard job failed before gather,
the end of the shard logs, never a bare exit code. Shard jobs publish a ShardProgress record after
each mini-batch, so every shard can stop early once the failures of this run exceed a threshold.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import glob
import json
import os
import sys
import time
from dataclasses import dataclass

from snakebatch.storage.layout import RunLayout
from snakebatch.storage.atomic import replace_text_unsynced, write_text_atomic

_STARTED_AT = time.time()


def announce_start(plan, warnings=()) -> None:
    """Print where the run writes and how it is split, then the plan's ``warnings`` and the
    extra ``warnings`` given. ``plan`` is a config.RunPlan."""
    global _STARTED_AT
    _STARTED_AT = time.time()
    from snakebatch.kinds import get_kind

    cut = get_kind(plan.partition.input_type).cut_description(plan.partition)
    print(f"snakebatch: run {plan.run_name!r}: {plan.shard_count} shard(s), {cut}, results in {plan.run_dir}/",
          file=sys.stderr)
    for warning in [*plan.warnings, *warnings]:
        print(f"snakebatch: warning: {warning}", file=sys.stderr)


def _fresh(path: str) -> bool:
    return os.path.exists(path) and os.path.getmtime(path) >= _STARTED_AT - 1


def announce_success(plan) -> None:
    """Print the summary line of a finished run."""
    summary_path = plan.layout.summary
    if not os.path.exists(summary_path):
        return
    with open(summary_path, encoding="utf-8") as handle:
        summary = json.load(handle)
    target = summary.get("output") or plan.layout.outputs_dir
    print(f"snakebatch: run {plan.run_name!r} {summary['status']}: {summary['succeeded']} of "
          f"{summary['items']} items succeeded, {summary['failed']} failed -> {target}"
          + (f" (uploaded to {summary['output_uri']})" if summary.get("output_uri") else ""), file=sys.stderr)
    if summary["failed"]:
        print(failed_items_note(plan.layout.errors, summary["failed"]), file=sys.stderr)


def failed_items_note(errors_path: str, failed: int, limit: int = 3) -> str:
    """The failed items of a run that succeeded with tolerated failures: the first ``limit`` of
    the error report ``errors_path`` (``errors.jsonl``) with their exceptions, and its path."""
    from snakebatch.gather.error_report import read_error_report
    from snakebatch.errors import ManifestError

    try:
        records = read_error_report(errors_path, limit).records
    except ManifestError:
        records = ()
    lines = [f"  {r.get('item')}: {r.get('error')}" for r in records]
    more = f" (the first {len(lines)} of {failed})" if failed > len(lines) else ""
    return f"Failed items{more}:\n" + "\n".join(lines) + f"\nEvery failed item with its traceback: {errors_path}"


def failure_report(plan) -> str:
    """The root cause of a failed run, from the freshest reports in the run folder ('' if none):
    gather's verdict, or the end of every stage log written in this run that holds an error."""
    job_result = plan.layout.job_result
    if _fresh(job_result):
        with open(job_result, encoding="utf-8") as handle:
            text = handle.read().strip()
        if "status: failed" in text:
            return text
    parts, seen = [], {}
    for log in sorted(glob.glob(plan.layout.stage_log("*")) + glob.glob(plan.layout.shard_console_log("*"))):
        if not _fresh(log):
            continue
        with open(log, encoding="utf-8", errors="replace") as handle:
            lines = [line.rstrip() for line in handle if line.strip(" ^~\n")]
        if any("error:" in line or line.startswith("Traceback") for line in lines):
            last = lines[-1].replace(os.path.basename(log), "")
            if last in seen:  # the same error in another shard: name the log only
                seen[last].append(log)
                continue
            seen[last] = []
            parts.append((last, f"{log}:\n" + "\n".join("  " + line for line in lines[-15:])))
    return "\n".join(text + (f"\n  (the same error in {', '.join(seen[last])})" if seen[last] else "")
                     for last, text in parts)


_INTERRUPTED: list[int] = []  # the signals of the user's interrupt, in the main snakemake process


def watch_for_interrupt() -> None:
    """In the main snakemake process: remember a SIGINT (Ctrl-C), pass it on to the shard runners
    this process started (a ``kill -INT`` of snakemake alone reaches no job: Snakemake would wait
    for every running shard to finish), then let it do what it did (Snakemake cancels its jobs and
    calls ``onerror``), so the failure is reported as the user's interrupt, not as a job ended
    from outside."""
    import signal

    _forward_to_runners(signal.SIGINT, raise_interrupt=True)


def _forward_to_runners(signum: int, raise_interrupt: bool) -> None:
    """Install a handler of ``signum`` that remembers it as an interrupt, sends it to this
    process's shard runners, then calls the handler that was there before (or, with
    ``raise_interrupt`` and no callable handler, raises KeyboardInterrupt). Outside the main
    thread nothing is installed."""
    import signal

    previous = signal.getsignal(signum)

    def _on_signal(number, frame):
        _INTERRUPTED.append(number)
        for pid in _local_runners():
            with contextlib.suppress(OSError):
                os.kill(pid, number)
        if callable(previous):
            previous(number, frame)
        elif raise_interrupt:
            raise KeyboardInterrupt

    try:
        signal.signal(signum, _on_signal)
    except ValueError:  # not the main thread: leave it
        pass


def forward_terminate() -> None:
    """In the main snakemake process, once Snakemake's scheduler has set its own SIGTERM handler
    (call it from ``onstart``): a SIGTERM is remembered as an interrupt and also sent to the shard
    runners this process started (its descendants running ``snakebatch.infer.job``), which kill their
    worker and keep every finished mini-batch; then Snakemake's handler runs (start no new job,
    wait for the running ones), so the run ends in seconds instead of after every running shard
    has finished. Jobs on a cluster are not descendants: their executor's own cancel applies."""
    import signal

    _forward_to_runners(signal.SIGTERM, raise_interrupt=False)


def _local_runners() -> list[int]:
    """PIDs of this process's descendants that run ``python -m snakebatch.infer.job``."""
    import psutil

    found = []
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "snakebatch.infer.job" in child.cmdline():
                found.append(child.pid)
    return found


def interrupt_report(plan) -> str:
    """What to say when the user interrupted the run (Ctrl-C / SIGINT, or SIGTERM)."""
    import signal

    if signal.SIGTERM in _INTERRUPTED:
        return ("The run was stopped by SIGTERM; its shard jobs were stopped too. Every mini-batch that finished "
                "is kept: run the same command again to resume; only the unfinished mini-batches run.")
    return ("The run was interrupted by the user (Ctrl-C, SIGINT). Every mini-batch that finished is kept: "
            "run the same command again to resume; only the unfinished mini-batches run (if snakemake "
            "itself was killed, run `snakemake --unlock` first).")


FULL_DISK_BYTES = 1024 ** 2  # free bytes under which the run folder's disk counts as full


def _full_disk(plan) -> str | None:
    """The report for a run whose folder lies on a full disk (under FULL_DISK_BYTES free): the
    stages could not even write their error to their logs there. None when there is room."""
    import shutil

    try:
        free = shutil.disk_usage(plan.layout.root).free
    except OSError:
        return None
    if free >= FULL_DISK_BYTES:
        return None
    return (f"The disk holding {plan.layout.root}/ is full ({free} bytes free): a stage could not write its "
            "results (nor its logs). Free space and run the same command again: every mini-batch that "
            "finished is kept, only the unfinished ones run.")


def _no_report(plan) -> str:
    """What to say when no snakebatch stage wrote an error: the disk is full, or a job was ended
    from outside."""
    full = _full_disk(plan)
    if full:
        return full
    node = os.path.join(os.path.dirname(plan.layout.shard_console_log(0)), "")
    return ("No snakebatch stage reported an error: a job was ended from outside (killed, e.g. by the "
            "out-of-memory killer: exit status 137 above, or by a cluster time limit). Snakemake's error "
            f"above names the job; its runner log is in {node}. The next run resumes the unfinished "
            "mini-batches.")


def announce_failure(plan) -> None:
    """Print the root cause of a failed run as the console's last lines: Snakemake prints its own
    closing lines ("Complete log(s)", "At least one job did not complete successfully") after
    ``onerror``, so the report is printed when the snakemake process exits (``atexit``)."""
    if _INTERRUPTED:
        report = interrupt_report(plan)
        text = f"snakebatch: run {plan.run_name!r} interrupted.\n{report}"
    else:
        report = failure_report(plan) or _no_report(plan)
        text = f"snakebatch: run {plan.run_name!r} failed.\n{report}"

    if not _fresh(plan.layout.job_result):  # no stage wrote the verdict: write it here
        status = "interrupted" if _INTERRUPTED else "failed"
        with contextlib.suppress(OSError):
            write_text_atomic(plan.layout.job_result, f"status: {status}\n{report}\n")
            write_text_atomic(plan.layout.summary, json.dumps(
                {"run_name": plan.run_name, "status": status, "error": report, "output": None,
                 "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, indent=2) + "\n")

    def _print() -> None:
        sys.stderr.flush()
        print("\n" + text, file=sys.__stderr__, flush=True)

    atexit.register(_print)


# ------------------------------------------------------------------ live progress across shards
INVOCATION_ENV = "SNAKEBATCH_INVOCATION"


def invocation_id() -> str:
    """The invocation id of a ShardRunner used on its own (tests, benchmarks): ``INVOCATION_ENV``
    when set, else a fresh one per process. A shard job of the workflow gets its invocation's id
    from ``plan.json`` instead (runner.run_shard, snakebatch.settings.plan)."""
    global _OWN_INVOCATION
    value = os.environ.get(INVOCATION_ENV)
    if value:
        return value
    if _OWN_INVOCATION is None:
        import uuid

        _OWN_INVOCATION = uuid.uuid4().hex
    return _OWN_INVOCATION


_OWN_INVOCATION: str | None = None


SHARD_STATES = ("running", "done", "stopped", "failed", "interrupted")


@dataclass(frozen=True)
class ShardProgress:
    """What one shard job has done in this invocation, published by the runner when it starts,
    after every mini-batch and when it ends (``progress/shard-NNNNN.json``).

    Counts: ``done_mini_batches`` of ``shard_mini_batches`` (this shard's), ``reused_mini_batches``
    among the done ones, ``done_items`` of ``shard_items``, ``succeeded_items`` and
    ``failed_items`` among the done ones, ``failed_mini_batches``; ``total_items`` and
    ``total_mini_batches`` are the whole run's (from the manifest), so any one record tells the
    run's size. ``first_failure`` is ``"item: error"``; ``top_errors`` the most frequent error
    messages of this shard as ``(message, count)`` pairs, most frequent first (at most
    TOP_ERRORS). ``state`` is one of SHARD_STATES. Times are ``time.time()`` seconds:
    ``started_at`` (shard start), ``progress_at`` (the last finished mini-batch, or the start),
    ``updated_at`` (this record). ``host`` and ``pid`` name the runner process;
    ``run_invocation_timeout`` (seconds) is what the status command's stall rule is based on.
    ``reused_items``: the items of the reused mini-batches (done without any run(); the rate of
    the live view and the status is of the others). The mini-batch in ``run()`` when the record
    was written (the worker's ``started`` Event of its Run; a shard has one worker):
    ``running_mini_batch`` (its index, -1 for none), ``running_items`` (items given to that
    run() call: fewer than the mini-batch's while it is bisected) and ``running_since`` (the
    Event's time; 0.0 for none).

    With ``balance_shards`` a record counts the work its shard job did: ``stolen_mini_batches``
    and ``stolen_items`` are those it computed (or reused) for busy shards, included in the
    ``done_*``, ``succeeded_items``, ``failed_*``, ``reused_*`` counts; the owner takes their
    results into its shard file without counting them again (``adopted_mini_batches``), so the
    sums over the records of an invocation count every mini-batch once and end at the run's
    totals."""

    invocation: str
    shard: int
    done_mini_batches: int
    shard_mini_batches: int
    failed_items: int
    failed_mini_batches: int
    first_failure: str = ""
    done_items: int = 0
    shard_items: int = 0
    succeeded_items: int = 0
    reused_mini_batches: int = 0
    total_items: int = 0
    total_mini_batches: int = 0
    state: str = "running"
    started_at: float = 0.0
    progress_at: float = 0.0
    updated_at: float = 0.0
    host: str = ""
    pid: int = 0
    run_invocation_timeout: float = 0.0
    top_errors: tuple[tuple[str, int], ...] = ()
    reused_items: int = 0
    running_mini_batch: int = -1
    running_items: int = 0
    running_since: float = 0.0
    stolen_mini_batches: int = 0
    stolen_items: int = 0
    adopted_mini_batches: int = 0

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "ShardProgress":
        """Parse a record; keys this version does not know are ignored. Raises ValueError or
        TypeError for text that is not a record."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise TypeError(f"a progress record is a JSON object, not {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        data["top_errors"] = tuple((str(m), int(c)) for m, c in data.get("top_errors", ()))
        return cls(**data)


TOP_ERRORS = 5  # error messages a progress record keeps per shard


def progress_path(run_dir: str, shard: int) -> str:
    """``results/{run}/progress/shard-NNNNN.json``."""
    return RunLayout(run_dir).progress(shard)


def write_progress(run_dir: str, record: ShardProgress) -> None:
    """Publish ``record`` for the other shards, the live view and the status command: a
    temporary file renamed over the record, so a reader sees the old record or the new one. Not
    fsynced (it is written after every mini-batch; the durable truth is the mini-batch store):
    a machine crash may lose the last record, never tear one."""
    replace_text_unsynced(progress_path(run_dir, record.shard), record.to_json() + "\n")


def read_progress(run_dir: str) -> list[ShardProgress]:
    """Every readable progress record in ``run_dir``, in shard order, of any invocation."""
    records = []
    for path in sorted(glob.glob(RunLayout(run_dir).progress("*"))):
        try:
            with open(path, encoding="utf-8") as handle:
                records.append(ShardProgress.from_json(handle.read()))
        except (OSError, ValueError, TypeError):
            continue
    return records


def invocation_progress(run_dir: str, invocation: str) -> list[ShardProgress]:
    """The progress records of every shard of ``invocation`` (records of earlier invocations,
    or unreadable ones, are skipped: they say nothing about this run)."""
    return [record for record in read_progress(run_dir) if record.invocation == invocation]
