"""What the run tells the console: a line at start and the outcome at the end.

On failure the last lines are the root cause written by gather (``logs/job_result.txt``) or, when
a shard job failed before gather, the end of the shard logs, never a bare exit code; an interrupt
by the user is reported as such (snakebatch.monitor.interrupts).
"""

from __future__ import annotations

import atexit
import glob
import os
import sys
import time

from snakebatch.monitor import aggregate, interrupts
from snakebatch.monitor.once import warn_once
from snakebatch.gather.summary import RunSummary, write_summary
from snakebatch.storage.atomic import write_text_atomic

_STARTED_AT = time.time()


def announce_start(plan, warnings=()) -> None:
    """Print where the run writes and how it is split, then the plan's ``warnings`` and the
    extra ``warnings`` given. ``plan`` is a settings.specs.RunPlan."""
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
    summary = aggregate.read_summary(summary_path)
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
    node = plan.layout.node_logs_dir
    return ("No snakebatch stage reported an error: a job was ended from outside (killed, e.g. by the "
            "out-of-memory killer: exit status 137 above, or by a cluster time limit). Snakemake's error "
            f"above names the job; its runner log is in {node}. The next run resumes the unfinished "
            "mini-batches.")


def _write_verdict(plan, status: str, report: str) -> None:
    """Write the verdict no stage wrote: ``logs/job_result.txt`` and a ``summary.json`` with
    ``status`` (``failed`` or ``interrupted``) and the ``report`` as its error. A disk that
    cannot take them (full) is logged once and left: the console still says it all."""
    try:
        write_text_atomic(plan.layout.job_result, f"status: {status}\n{report}\n")
        write_summary(plan.layout.summary, RunSummary.failed_run(plan.run_name, report, status=status))
    except OSError as exc:
        warn_once("writing the run's verdict", exc, trace=False)


def announce_failure(plan) -> None:
    """Print the root cause of a failed run as the console's last lines: Snakemake prints its own
    closing lines ("Complete log(s)", "At least one job did not complete successfully") after
    ``onerror``, so the report is printed when the snakemake process exits (``atexit``)."""
    if interrupts.interrupted():
        report = interrupts.interrupt_report()
        text = f"snakebatch: run {plan.run_name!r} interrupted.\n{report}"
    else:
        report = failure_report(plan) or _no_report(plan)
        text = f"snakebatch: run {plan.run_name!r} failed.\n{report}"

    if not _fresh(plan.layout.job_result):  # no stage wrote the verdict: write it here
        _write_verdict(plan, "interrupted" if interrupts.interrupted() else "failed", report)

    def _print() -> None:
        sys.stderr.flush()
        print("\n" + text, file=sys.__stderr__, flush=True)

    atexit.register(_print)
