"""Gather: merge the shard results in input order, write the summary and the error report, and
enforce the error thresholds.

``python -m snakebatch.gather.job --spec JSON --run-dir DIR SHARD_RESULT...``

Writes under ``results/{run_name}/`` (paths from ``layout.RunLayout``): ``{append_row_file_name}``
(append_row only), ``summary.json``, ``errors.jsonl`` (one line per failed item),
``logs/job_result.txt``, ``logs/job_progress_overview.txt``,
``logs/sys/job_report/processed_mini-batches.csv`` and, last, ``_SUCCESS`` (holding the merged
file's name). Every file is written atomically; the merged txt/csv file is written while the shard
files are read (one mini-batch in memory at a time) into a temporary file that is renamed only
when the run succeeded; the counts are kept by a ``thresholds.RunningTally`` as they are read.
When a threshold is exceeded (also when shards stopped early on it) the merged file and
``_SUCCESS`` are removed, the reports say why, the shard result files that hold failures or
stopped early are removed (``lifecycle.drop_shards_to_rerun``: the next run retries and finishes
those shards, reusing what they finished), and the exit status is 1. Reading shard files and
removing results that no longer hold live in ``lifecycle``; the thresholds in ``thresholds``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import io
import json
import os
import re
import sys
import time

from snakebatch.settings.config import GatherSpec
from snakebatch.errors import (EntryScriptError, ErrorThresholdExceeded, ManifestError, ResultSchemaError, SnakebatchError,
                     StorageError)
from snakebatch.storage.layout import RunLayout
from snakebatch.monitor.live import append_overview
from snakebatch.gather.lifecycle import clear_verdict, drop_shards_to_rerun, read_shard_file
from snakebatch.infer.results import MiniBatchResult
from snakebatch.infer.store import read_table_file, read_table_schema
from snakebatch.storage.atomic import atomic_open, describe_os_error, publish_to, write_json_atomic, write_text_atomic
from snakebatch.gather.thresholds import RunningTally, threshold_breaches


def check_order(results: list[MiniBatchResult]) -> None:
    """Mini-batches 0..N-1 exactly once, in order; ManifestError otherwise."""
    for expected, result in enumerate(results):
        if result.index != expected:
            raise ManifestError(
                f"shard results hold mini-batch {result.index} where mini-batch {expected} was expected: "
                "a mini-batch is missing or duplicated; rerun the infer jobs")


def _timing(results: list[MiniBatchResult]) -> dict:
    """The summary's times of the mini-batches computed in this run (reused ones ran in an
    earlier run): ``computed_items`` and ``reused_items`` (items of computed and of reused
    mini-batches), ``compute_s`` (seconds in their run() calls, summed), ``wall_s`` (from the
    first one's start to the last one's end) and ``items_per_s`` (computed items over
    ``wall_s``; None when nothing was computed)."""
    computed = [r for r in results if not r.reused]
    compute_s = sum(r.duration_s for r in computed)
    wall_s = (max(r.started_at + r.duration_s for r in computed) - min(r.started_at for r in computed)) if computed else 0.0
    items = sum(r.item_count for r in computed)
    return {"computed_items": items, "reused_items": sum(r.item_count for r in results) - items,
            "compute_s": round(compute_s, 3), "wall_s": round(wall_s, 3),
            "items_per_s": round(items / wall_s, 1) if wall_s > 0 else None}


def _errors_jsonl(results: list[MiniBatchResult]) -> str:
    """errors.jsonl: each failed item's line (FailedItem.to_json) with ``worker``, the agent name
    (``processNNN``) of the shard job that ran it: with balance_shards that need not be
    ``shard``'s, and its logs (``logs/user/error/shard-NNNNN.txt``) hold the traceback too."""
    return "".join(json.dumps(_with_worker(f.to_json(), r.agent_name), ensure_ascii=False) + "\n"
                   for r in results for f in r.failures)


def _with_worker(line: dict, worker: str) -> dict:
    """``line`` (a FailedItem's errors.jsonl fields) with ``worker`` put after ``shard``."""
    out = {}
    for key, value in line.items():
        out[key] = value
        if key == "shard":
            out["worker"] = worker
    return out


def _processed_csv(results: list[MiniBatchResult]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["mini_batch", "first_item", "items", "succeeded", "failed", "tries", "duration_s",
                     "cpu_s", "agent_name", "reused", "started_at"])
    for r in results:  # started_at: epoch seconds (the report's throughput plot)
        writer.writerow([r.index, r.first_item, r.item_count, r.succeeded, r.failed, r.tries,
                         f"{r.duration_s:.3f}", f"{r.cpu_s:.3f}", r.agent_name, r.reused, f"{r.started_at:.3f}"])
    return out.getvalue()


def _root_cause(results: list[MiniBatchResult], limit: int = 3) -> str:
    lines = []
    failures = [f for r in results for f in r.failures]
    for failure in failures[:limit]:
        where = failure.item if failure.item is not None else f"mini-batch {failure.mini_batch}"
        lines.append(f"  {where}: {failure.error} (after {failure.tries} tr{'y' if failure.tries == 1 else 'ies'})")
        tb = [t for t in failure.traceback.strip().splitlines() if t.strip(" ^~")]
        if tb and tb[0].startswith("Stack of the worker"):  # faulthandler: innermost frame first
            lines.extend("      " + t for t in tb[:5])
        elif tb:
            lines.extend("      " + t for t in tb[-4:])
    if len(failures) > limit:
        lines.append(f"  ... and {len(failures) - limit} more; every failure is in errors.jsonl")
    return "\n".join(lines)


_LOG_LINE = "\nWorker error log: "
_FRAME = re.compile(r'^  File "(?P<file>[^"]+)", line (?P<line>\d+), in \S+$')


def _user_frame(traceback_text: str) -> str:
    """``"FILE, line N: SOURCE"`` of the deepest frame of ``traceback_text`` outside installed
    packages and the standard library ('' when there is none)."""
    lines = traceback_text.split("\n")
    frames = []
    for number, line in enumerate(lines):
        match = _FRAME.match(line)
        if match:
            source = lines[number + 1].strip() if number + 1 < len(lines) else ""
            if source.startswith("File ") or set(source) <= set("^~ "):
                source = ""
            frames.append((match["file"], match["line"], source))
    own = [f for f in frames if "site-packages" not in f[0] and "/lib/python" not in f[0]]
    if not (own or frames):
        return ""
    file, line, source = (own or frames)[-1]
    return f"{file}, line {line}" + (f": {source}" if source else "")


def start_failures(shards) -> str:
    """The report of shards whose entry script could not start (``ShardResults.failure``: the
    import or init() error, its traceback and the worker error log): each distinct error once,
    ending with the exception, the user's file, line and source, how many shards it hit and the
    log path."""
    groups: dict[str, list[str]] = {}
    for shard in shards:
        if shard.failure:
            text, _, log_path = shard.failure.partition(_LOG_LINE)
            groups.setdefault(text.rstrip(), []).append(log_path.strip())
    hit = sum(len(logs) for logs in groups.values())
    parts = [f"the entry script failed to start in {hit} of {len(shards)} shard(s)"
             + (f" ({len(groups)} different errors)" if len(groups) > 1 else "") + "."]
    for text, logs in groups.items():
        headline, _, tb = text.partition("\n")
        parts.append(headline)
        body = [line for line in tb.split("\n") if line.strip()]
        if body and not body[0].startswith("Traceback"):
            body = []
        parts.extend(body)
        where = _user_frame(tb)
        if where:
            parts.append(f"  at {where}")
        parts.append(f"  in {len(logs)} of {len(shards)} shard(s)"
                     + (" (the same error in each)" if len(logs) > 1 else ""))
        others = f" (and {len(logs) - 1} more, one per shard, beside it)" if len(logs) > 1 else ""
        parts.append(f"Worker error log: {logs[0]}{others}")
    return "\n".join(parts)


def gather(spec: GatherSpec, shard_results: list[str], run_dir: str) -> dict:
    """Merge, report and check thresholds (see module doc). ``shard_results``: the shard result
    files in shard order; ``run_dir``: the run folder (``results/{run_name}``). Returns the summary
    dict (as written to ``summary.json``).

    Raises ErrorThresholdExceeded (after writing the reports) when a threshold is exceeded,
    EntryScriptError when a shard's entry script could not start (after writing the error report
    and processed mini-batches of what the other shards ran, and a ``"failed"`` summary whose
    ``start_failures`` lists ``{"shard", "error"}`` (the error's first line) per such shard),
    ManifestError when a shard result is missing or corrupt and ResultSchemaError when mini-batches
    returned different columns (then with a ``"failed"`` summary and job_result.txt)."""
    layout = RunLayout(run_dir)
    merged = layout.merged(spec.append_row_file_name) if spec.output_action == "append_row" else None
    clear_verdict(run_dir, merged)
    for name in KEPT_REPORTS:  # copies an earlier failed gather kept belong to that run
        with contextlib.suppress(FileNotFoundError):
            os.unlink(layout.kept_report(os.path.basename(getattr(layout, name))))
    # txt/csv: the merged file is written while the shard files are read (one mini-batch in memory
    # at a time) to a temporary file that becomes the merged file only when the run succeeded
    streaming = merged is not None and spec.append_row_format != "parquet"
    try:
        with contextlib.ExitStack() as stack:
            writer = None
            if streaming:
                writer = _LineWriter(stack.enter_context(atomic_open(merged)), spec.append_row_format,
                                     spec.append_row_dataframe_header)
            summary = _gather(spec, shard_results, layout, writer, merged)
        if merged and not streaming:
            _write_parquet(merged, [r for path in shard_results for r in read_shard_file(path).results])
    except ErrorThresholdExceeded:
        keep_reports(layout)  # its reports are written
        raise
    except (SnakebatchError, OSError) as exc:
        message = describe_os_error(exc) if isinstance(exc, OSError) else str(exc)
        try:   # on a full disk these small writes may fail too: then the earlier ones stay stale
            failed = {"run_name": spec.run_name, "status": "failed", "error": message, "output": None,
                      "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            if getattr(exc, "start_failures", None):  # per shard whose entry script could not start
                failed["start_failures"] = exc.start_failures
            write_json_atomic(layout.summary, failed)
            write_text_atomic(layout.job_result, f"status: failed\nThe run failed: {message}\n")
            keep_reports(layout)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise StorageError(message) from None
        raise
    if spec.output_uri:
        summary["output_uri"] = spec.output_uri
    write_json_atomic(layout.summary, summary)
    if spec.output_uri:  # before the success marker: a failed upload leaves the run to finish again
        publish_to(spec.output_uri, [p for p in (merged, layout.summary, layout.errors) if p and os.path.exists(p)],
                   spec.storage_options)
    write_text_atomic(layout.success_marker, (spec.append_row_file_name if merged else "") + "\n")
    return summary


KEPT_REPORTS = ("summary", "errors", "processed_mini_batches")  # RunLayout properties


def keep_reports(layout: RunLayout) -> None:
    """Copy the reports of a failed gather (summary.json, errors.jsonl, processed_mini-batches.csv,
    declared outputs of the rule, which Snakemake removes when the job fails) to
    ``RunLayout.kept_report``, for ``restore_reports``."""
    import shutil

    for name in KEPT_REPORTS:
        path = getattr(layout, name)
        if os.path.exists(path):
            kept = layout.kept_report(os.path.basename(path))
            os.makedirs(os.path.dirname(kept), exist_ok=True)
            shutil.copyfile(path, kept + ".tmp")
            os.replace(kept + ".tmp", kept)


def restore_reports(layout: RunLayout) -> list[str]:
    """Put back the reports ``keep_reports`` kept where Snakemake removed them (the workflow's
    ``onerror`` hook, after the failed job's clean-up); returns the paths restored."""
    restored = []
    for name in KEPT_REPORTS:
        path = getattr(layout, name)
        kept = layout.kept_report(os.path.basename(path))
        if not os.path.exists(kept):
            continue
        if os.path.exists(path):
            os.unlink(kept)
        else:
            os.replace(kept, path)
            restored.append(path)
    return restored


def _gather(spec: GatherSpec, shard_results: list[str], layout: RunLayout, writer, merged: str | None) -> dict:
    """Read the shard results (handing each to ``writer`` and to the running tally), check the
    thresholds and write the reports; returns the summary, or raises ErrorThresholdExceeded after
    writing them. The results kept in memory have no lines."""
    running = RunningTally()

    def on_result(result: MiniBatchResult) -> None:
        running.add(result)
        if writer is not None:
            writer.write(result)

    shards = [read_shard_file(path, on_result=on_result) for path in shard_results]
    results = [result for shard in shards for result in shard.results]
    if any(shard.failure for shard in shards):  # the reports of what ran, then the cause
        write_text_atomic(layout.errors, _errors_jsonl(results))
        write_text_atomic(layout.processed_mini_batches, _processed_csv(results))
        error = EntryScriptError(start_failures(shards))
        error.start_failures = [{"shard": shard.shard if shard.shard is not None else number,
                                 "error": shard.failure.split("\n", 1)[0]}
                                for number, shard in enumerate(shards) if shard.failure]
        raise error
    stopped = [shard for shard in shards if shard.stopped_early]
    tally = running.snapshot()
    if stopped:  # shards stopped early: some mini-batches never ran; percentages are of all of them
        total = max(shard.total_mini_batches or 0 for shard in stopped)
        breaches = threshold_breaches(dataclasses.replace(tally, mini_batches=max(total, tally.mini_batches)), spec)
        if not breaches:  # counted while shards ran, e.g. with a shard that later failed outright
            reason = stopped[0].stopped_early.split("\n")[0].rstrip(".")
            breaches = ["a shard " + (reason if reason.startswith("stopped early") else "stopped early: " + reason)]
    else:
        check_order(results)
        breaches = threshold_breaches(tally, spec)
    status = "failed" if breaches else "succeeded"

    summary = {
        "run_name": spec.run_name,
        "status": status,
        "items": tally.items,
        "succeeded": tally.succeeded,
        "failed": tally.failed,
        "mini_batches": tally.mini_batches,
        "failed_mini_batches": tally.failed_mini_batches,
        "reused_mini_batches": tally.reused_mini_batches,
        "thresholds": {"error_threshold": spec.error_threshold,
                       "allowed_failed_count": spec.allowed_failed_count,
                       "allowed_failed_percent": spec.allowed_failed_percent},
        "threshold_breaches": breaches,
        "stopped_early": bool(stopped),
        "output_action": spec.output_action,
        "output": merged if not breaches else None,
        **_timing(results),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_text_atomic(layout.errors, _errors_jsonl(results))
    write_text_atomic(layout.processed_mini_batches, _processed_csv(results))
    append_overview(layout.progress_overview,  # a log the live view appends to while the run works
                    f"gather: {tally.mini_batches} of {tally.mini_batches} mini-batches processed; "
                    f"{tally.items} items, {tally.succeeded} succeeded, {tally.failed} failed")
    result_text = [f"status: {status}",
                   f"items: {tally.items} (succeeded {tally.succeeded}, failed {tally.failed})",
                   f"mini-batches: {tally.mini_batches} (failed {tally.failed_mini_batches}, "
                   f"reused {tally.reused_mini_batches})"]
    if breaches:
        result_text.append("The run failed: " + "; ".join(breach.rstrip(".") for breach in breaches) + "." + (
            f" {len(stopped)} shard(s) stopped early; {tally.mini_batches} mini-batch(es) ran." if stopped else ""))
        result_text.append("First failures:\n" + _root_cause(results))
        result_text.append(f"Error report: {layout.errors}; worker error logs: {layout.user_error_dir}")
        rerun = drop_shards_to_rerun(shards)  # their failures get new tries in the next run
        if rerun:
            result_text.append(f"The next run retries the failed mini-batches ({len(rerun)} shard(s) rerun; "
                               "finished mini-batches are reused).")
    elif tally.failed:
        result_text.append(f"{tally.failed} failed item(s) tolerated; see errors.jsonl")
    write_text_atomic(layout.job_result, "\n".join(result_text) + "\n")

    if breaches:
        write_json_atomic(layout.summary, summary)
        raise ErrorThresholdExceeded("\n".join(result_text[3:]))
    return summary


def _check_same(kind: str, first: tuple[int, object], result: MiniBatchResult, value, shown) -> None:
    if value != first[1]:
        raise ResultSchemaError(
            f"append_row_format {kind}: mini-batch {result.index} returned {shown(value)} but mini-batch "
            f"{first[0]} returned {shown(first[1])}; every run() must return the same columns, with "
            "compatible types")


class _LineWriter:
    """Writes the merged txt/csv file as results arrive, in order: ``txt`` one line per element
    (with ``dataframe_header``, the DataFrame column names once, first); ``csv`` the header once,
    then every mini-batch's rows. Raises ResultSchemaError naming two mini-batches whose columns
    differ (the caller's temporary file is then dropped)."""

    def __init__(self, handle, append_row_format: str, dataframe_header: bool) -> None:
        self.handle = handle
        self.format = append_row_format
        self.wants_header = append_row_format == "csv" or dataframe_header
        self.header: tuple[int, str] | None = None
        self.headerless: int | None = None  # a mini-batch that wrote lines without a header

    def write(self, result: MiniBatchResult) -> None:
        if self.wants_header and result.header is not None:
            if self.header is None:
                if self.headerless is not None:
                    raise ResultSchemaError(
                        f"append_row_dataframe_header: mini-batch {result.index} returned a DataFrame but mini-batch "
                        f"{self.headerless} returned a list, so the header cannot be the first line; return "
                        "DataFrames from every run()")
                self.header = (result.index, result.header)
                self.handle.write(result.header + "\n")
            _check_same(self.format, self.header, result, result.header, lambda h: f"columns {h!r}")
        elif self.wants_header and result.lines and self.headerless is None:
            self.headerless = result.index
        for line in result.lines:
            self.handle.write(line + "\n")


def _write_parquet(path: str, results: list[MiniBatchResult]) -> None:
    """The merged Parquet file of the results' stored tables (``store.read_table_file``: Arrow
    IPC streams, read memory-mapped, or Parquet files of older stores), one row group per
    mini-batch, in input order: the only Parquet encoding of the run. Every schema is checked
    first; types may widen (int64 + double -> double, an all-null column -> its type). Raises
    ManifestError for a table file that cannot be read and ResultSchemaError naming two
    mini-batches whose columns differ."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = [(r, r.table_file) for r in results if r.table_file]
    schemas = []
    for result, table_file in parts:  # check every schema before writing anything
        try:
            schemas.append(read_table_schema(table_file).remove_metadata())
        except (OSError, pa.ArrowException) as exc:
            raise ManifestError(f"the result table of mini-batch {result.index} ({table_file!r}) cannot be "
                                f"read: {exc}") from None
    try:  # same columns; types may widen (int64 + double -> double, an all-null column -> its type)
        schema = pa.unify_schemas(schemas, promote_options="permissive") if schemas else pa.schema([])
        if any(s.names != schema.names for s in schemas):
            raise pa.ArrowInvalid("different columns")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        first = (parts[0][0].index, schemas[0])
        for (result, _), other in zip(parts, schemas):
            _check_same("parquet", first, result, other,
                        lambda s: "schema (" + ", ".join(f"{f.name}: {f.type}" for f in s) + ")")
        raise
    tmp = os.path.join(os.path.dirname(path), f".tmp-{os.path.basename(path)}-{os.getpid()}")
    try:
        with pq.ParquetWriter(tmp, schema) as writer:
            for (result, table_file), own in zip(parts, schemas):
                try:
                    table = read_table_file(table_file).replace_schema_metadata(None)
                except (OSError, pa.ArrowException) as exc:
                    raise ManifestError(f"the result table of mini-batch {result.index} ({table_file!r}) cannot "
                                        f"be read: {exc}") from None
                try:
                    writer.write_table(table.cast(schema) if own != schema else table)
                except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                    raise ResultSchemaError(f"append_row_format parquet: mini-batch {result.index} cannot be "
                                            f"converted to the merged schema: {exc}") from None
                del table  # unmapped before the next is read
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


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
