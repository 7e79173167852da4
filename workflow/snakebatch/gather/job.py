"""Gather: merge the shard results in input order, write the summary and the error report, and
enforce the error thresholds.

``python -m snakebatch.gather.job --spec JSON --run-dir DIR SHARD_RESULT...``

Writes under ``results/{run_name}/`` (paths from ``storage.layout.RunLayout``): ``{append_row_file_name}``
(append_row only), ``summary.json``, ``errors.jsonl`` (one line per failed item),
``logs/job_result.txt``, ``logs/job_progress_overview.txt``,
``logs/sys/job_report/processed_mini-batches.csv`` and, last, ``_SUCCESS`` (holding the merged
file's name). Each shard file is read once (``merge``): the merged file and the reports are
written as it is read, to temporary files published only when they hold (the merged file only
when the run succeeded); the counts are kept by a ``thresholds.RunningTally``. When a threshold
is exceeded (also when shards stopped early on it) the merged file and ``_SUCCESS`` are removed,
the reports say why, the shard result files that hold failures or stopped early are removed
(``lifecycle.drop_shards_to_rerun``: the next run retries and finishes those shards, reusing what
they finished), and the exit status is 1. The summary is ``summary.RunSummary``; the reports and
``restore_reports`` (the workflow's ``onerror`` hook) live in ``reports``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys

from snakebatch.errors import EntryScriptError, ErrorThresholdExceeded, SnakebatchError, StorageError
from snakebatch.gather.lifecycle import clear_verdict, drop_shards_to_rerun
from snakebatch.gather.merge import Merge, MergeRead
from snakebatch.gather.reports import drop_kept_reports, keep_reports, restore_reports, start_failures
from snakebatch.gather.summary import ABSENT, RunSummary, StartFailure, write_summary
from snakebatch.gather.thresholds import threshold_breaches
from snakebatch.monitor.live import append_overview
from snakebatch.settings.config import GatherSpec
from snakebatch.storage.atomic import describe_os_error, publish_to, write_text_atomic
from snakebatch.storage.layout import RunLayout

__all__ = ["gather", "main", "restore_reports"]  # restore_reports: the onerror hook's (wiring.hooks.on_failure)

log = logging.getLogger(__name__)


def gather(spec: GatherSpec, shard_results: list[str], run_dir: str) -> dict:
    """Merge, report and check thresholds (see module doc). ``shard_results``: the shard result
    files in shard order; ``run_dir``: the run folder (``results/{run_name}``). Returns the summary
    as a dict (``RunSummary.to_dict``, as written to ``summary.json``).

    Raises ErrorThresholdExceeded (after writing the reports) when a threshold is exceeded,
    EntryScriptError when a shard's entry script could not start (after writing the error report
    and processed mini-batches of what the other shards ran, and a ``"failed"`` summary whose
    ``start_failures`` lists ``{"shard", "error"}`` (the error's first line) per such shard),
    ManifestError when a shard result is missing or corrupt and ResultSchemaError when mini-batches
    returned different columns (then with a ``"failed"`` summary and job_result.txt), StorageError
    when a write failed (a full disk) or the upload to ``output_uri`` failed (then after writing a
    ``"failed"`` summary, its counts kept, and job_result.txt, both naming the upload; no
    ``_SUCCESS``)."""
    layout = RunLayout(run_dir)
    merged = layout.merged(spec.append_row_file_name) if spec.output_action == "append_row" else None
    clear_verdict(run_dir, merged)
    drop_kept_reports(layout)
    try:
        with Merge(spec, layout, merged) as merge:
            summary, result_text = _verdict(spec, layout, merge, merge.read_shards(shard_results), merged)
            merge.publish_merged()
    except ErrorThresholdExceeded:
        keep_reports(layout)  # its reports are written
        raise
    except (SnakebatchError, OSError) as exc:
        message = describe_os_error(exc) if isinstance(exc, OSError) else str(exc)
        _report_failure(spec, layout, message, getattr(exc, "start_failures", ()))
        if isinstance(exc, OSError):
            raise StorageError(message) from None
        raise
    write_summary(layout.summary, summary)
    if spec.output_uri:  # before the success marker: a failed upload leaves the run to finish again
        try:
            publish_to(spec.output_uri, [p for p in (merged, layout.summary, layout.errors) if p and os.path.exists(p)],
                       spec.storage_options)
        except StorageError as exc:
            raise _upload_failed(spec, layout, summary, result_text, exc) from None
    write_text_atomic(layout.success_marker, (spec.append_row_file_name if merged else "") + "\n")
    return summary.to_dict()


def _upload_failed(spec: GatherSpec, layout: RunLayout, summary: RunSummary, result_text: list[str],
                   exc: StorageError) -> StorageError:
    """The verdict of a run whose results were merged but could not be uploaded to
    ``spec.output_uri``: summary.json (``"failed"``, its counts kept, the upload as ``error``)
    and job_result.txt (``status: failed``, the counts, the cause) say so, and their copies are
    kept for the ``onerror`` hook. Returns the StorageError to raise (the same message)."""
    detail = str(exc).removeprefix("output_uri: ")
    message = (f"the upload to output_uri failed: {detail}. Run the same command again once "
               f"{spec.output_uri} can be written: only gather runs again (every mini-batch is reused)")
    lines = ["status: failed", *result_text[1:3], f"The run failed: {message}"]
    failed = dataclasses.replace(summary, status="failed", error=message, output=None, output_uri=ABSENT)
    try:
        write_text_atomic(layout.job_result, "\n".join(lines) + "\n")
        write_summary(layout.summary, failed)
        keep_reports(layout)
    except OSError as error:
        log.warning("the verdict of the failed upload could not be written (%s)", describe_os_error(error))
    return StorageError(message)


def _report_failure(spec: GatherSpec, layout: RunLayout, message: str, starts: tuple) -> None:
    """The ``"failed"`` summary and job_result.txt of a gather that failed with ``message``, and
    copies of its reports. On a full disk these small writes may fail too: then the earlier ones
    stay stale, and that is logged."""
    try:
        write_summary(layout.summary, RunSummary.failed_run(spec.run_name, message, start_failures=starts))
        write_text_atomic(layout.job_result, f"status: failed\nThe run failed: {message}\n")
        keep_reports(layout)
    except OSError as exc:
        log.warning("the reports of the failed gather could not be written (%s); summary.json and "
                    "logs/job_result.txt may describe an earlier run", describe_os_error(exc))


def _start_failure(read: MergeRead) -> EntryScriptError:
    """The EntryScriptError of shards whose entry script could not start, ``start_failures``
    naming each (StartFailure: its number, the error's first line)."""
    error = EntryScriptError(start_failures(read.shards))
    error.start_failures = tuple(StartFailure(shard.shard if shard.shard is not None else number,
                                              shard.failure.split("\n", 1)[0])
                                 for number, shard in enumerate(read.shards) if shard.failure)
    return error


def _breaches(spec: GatherSpec, merge: Merge, read: MergeRead) -> list[str]:
    """The thresholds the run exceeded. Shards stopped early: some mini-batches never ran, and
    percentages are of all of them; else the mini-batches must be 0..N-1 (ManifestError)."""
    tally = merge.tally.snapshot()
    stopped = read.stopped
    if not stopped:
        read.check_order()
        return threshold_breaches(tally, spec)
    total = max(shard.total_mini_batches or 0 for shard in stopped)
    breaches = threshold_breaches(dataclasses.replace(tally, mini_batches=max(total, tally.mini_batches)), spec)
    if not breaches:  # counted while shards ran, e.g. with a shard that later failed outright
        reason = stopped[0].stopped_early.split("\n")[0].rstrip(".")
        breaches = ["a shard " + (reason if reason.startswith("stopped early") else "stopped early: " + reason)]
    return breaches


def _verdict(spec: GatherSpec, layout: RunLayout, merge: Merge, read: MergeRead,
             merged: str | None) -> tuple[RunSummary, list[str]]:
    """Check the thresholds, publish the reports and write job_result.txt; returns the summary
    and job_result.txt's lines, or raises ErrorThresholdExceeded after writing it (EntryScriptError after the reports)."""
    if any(shard.failure for shard in read.shards):  # the reports of what ran, then the cause
        merge.publish_reports()
        raise _start_failure(read)
    breaches = _breaches(spec, merge, read)
    tally = merge.tally.snapshot()
    summary = RunSummary.of_gather(spec, tally, breaches, bool(read.stopped), merged, merge.timing.timing())
    merge.publish_reports()
    append_overview(layout.progress_overview,  # a log the live view appends to while the run works
                    f"gather: {tally.mini_batches} of {tally.mini_batches} mini-batches processed; "
                    f"{tally.items} items, {tally.succeeded} succeeded, {tally.failed} failed")
    result_text = [f"status: {summary.status}",
                   f"items: {tally.items} (succeeded {tally.succeeded}, failed {tally.failed})",
                   f"mini-batches: {tally.mini_batches} (failed {tally.failed_mini_batches}, "
                   f"reused {tally.reused_mini_batches})"]
    if breaches:
        stopped = read.stopped
        result_text.append("The run failed: " + "; ".join(breach.rstrip(".") for breach in breaches) + "." + (
            f" {len(stopped)} shard(s) stopped early; {tally.mini_batches} mini-batch(es) ran." if stopped else ""))
        result_text.append("First failures:\n" + merge.reports.root_cause())
        result_text.append(f"Error report: {layout.errors}; worker error logs: {layout.user_error_dir}")
        rerun = drop_shards_to_rerun(list(read.shards))  # their failures get new tries in the next run
        if rerun:
            result_text.append(f"The next run retries the failed mini-batches ({len(rerun)} shard(s) rerun; "
                               "finished mini-batches are reused).")
    elif tally.failed:
        result_text.append(f"{tally.failed} failed item(s) tolerated; see errors.jsonl")
    write_text_atomic(layout.job_result, "\n".join(result_text) + "\n")
    if breaches:
        write_summary(layout.summary, summary)
        raise ErrorThresholdExceeded("\n".join(result_text[3:]))
    return summary, result_text


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m snakebatch.gather.job", description=__doc__.split("\n\n")[0])
    specs = parser.add_mutually_exclusive_group(required=True)
    specs.add_argument("--spec", help="GatherSpec as JSON")
    specs.add_argument("--spec-file", help="a file holding --spec")
    parser.add_argument("--run-dir", required=True, help="results/{run_name}")
    parser.add_argument("shard_results", nargs="+", help="shard result files in shard order")
    args = parser.parse_args(argv)
    spec = GatherSpec.from_json(args.spec if args.spec is not None else _read_text(args.spec_file))
    try:
        summary = gather(spec, args.shard_results, args.run_dir)
    except SnakebatchError as exc:
        print(f"snakebatch gather: error: {exc}", file=sys.stderr)
        return 1
    rate = f", {summary['items_per_s']} items/s" if summary["items_per_s"] else ""
    target = summary["output"] or RunLayout(args.run_dir).outputs_dir
    print(f"snakebatch gather: {summary['items']} items, {summary['succeeded']} succeeded, "
          f"{summary['failed']} failed ({summary['mini_batches']} mini-batches, "
          f"{summary['reused_mini_batches']} reused{rate}) -> {target}"
          + (f" (uploaded to {summary['output_uri']})" if summary.get("output_uri") else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
