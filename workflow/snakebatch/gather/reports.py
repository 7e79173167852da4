"""gather's reports: ``errors.jsonl`` (one line per failed item, in input order),
``logs/sys/job_report/processed_mini-batches.csv`` (one row per mini-batch), the text of the
first failures and of shards whose entry script could not start, and the copies of a failed
gather's reports that the workflow's ``onerror`` hook puts back (``keep_reports`` /
``restore_reports``). The summary is ``gather.summary``'s.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil

from snakebatch.formats.staged import StagedFile
from snakebatch.storage.atomic import atomic_open
from snakebatch.storage.layout import RunLayout

PROCESSED_COLUMNS = ("mini_batch", "first_item", "items", "succeeded", "failed", "tries", "duration_s", "cpu_s",
                     "agent_name", "reused", "started_at")
KEPT_REPORTS = ("summary", "errors", "processed_mini_batches")  # RunLayout properties
ROOT_CAUSE_LIMIT = 3  # failures shown in the verdict; every one is in errors.jsonl


def _with_worker(line: dict, worker: str) -> dict:
    """``line`` (a FailedItem's errors.jsonl fields) with ``worker`` put after ``shard``."""
    out = {}
    for key, value in line.items():
        out[key] = value
        if key == "shard":
            out["worker"] = worker
    return out


class ReportWriter:
    """Writes ``errors.jsonl`` and ``processed_mini-batches.csv`` of ``layout`` while results
    arrive (``add``, in input order), to temporary files published by ``commit`` (``discard``
    drops them, leaving the earlier reports). Keeps only the first ``ROOT_CAUSE_LIMIT`` failed
    items (``first_failures``) and the count of all (``failures``).

    errors.jsonl: each failed item's line (FailedItem.to_dict) with ``worker``, the agent name
    (``processNNN``) of the shard job that ran it: with balance_shards that need not be
    ``shard``'s, and its logs (``logs/user/error/shard-NNNNN.txt``) hold the traceback too.
    processed_mini-batches.csv: PROCESSED_COLUMNS (``started_at``: epoch seconds)."""

    def __init__(self, layout: RunLayout) -> None:
        self.first_failures: list = []
        self.failures = 0
        self.errors = StagedFile(layout.errors)
        try:
            self.processed = StagedFile(layout.processed_mini_batches)
        except BaseException:
            self.errors.discard()
            raise
        self.rows = csv.writer(self.processed.handle, lineterminator="\n")
        self.rows.writerow(PROCESSED_COLUMNS)

    def add(self, result) -> None:
        """Report one MiniBatchResult."""
        for failure in result.failures:
            self.errors.write(json.dumps(_with_worker(failure.to_dict(), result.agent_name), ensure_ascii=False)
                              + "\n")
            if len(self.first_failures) < ROOT_CAUSE_LIMIT:
                self.first_failures.append(failure)
            self.failures += 1
        self.rows.writerow([result.index, result.first_item, result.item_count, result.succeeded, result.failed,
                            result.tries, f"{result.duration_s:.3f}", f"{result.cpu_s:.3f}", result.agent_name,
                            result.reused, f"{result.started_at:.3f}"])

    def commit(self) -> None:
        self.errors.commit()
        self.processed.commit()

    def discard(self) -> None:
        self.errors.discard()
        self.processed.discard()

    def root_cause(self) -> str:
        """The first failed items with the end of their tracebacks, and how many more there are."""
        lines = []
        for failure in self.first_failures:
            where = failure.item if failure.item is not None else f"mini-batch {failure.mini_batch}"
            lines.append(f"  {where}: {failure.error} (after {failure.tries} tr{'y' if failure.tries == 1 else 'ies'})")
            tb = [t for t in failure.traceback.strip().splitlines() if t.strip(" ^~")]
            if tb and tb[0].startswith("Stack of the worker"):  # faulthandler: innermost frame first
                lines.extend("      " + t for t in tb[:5])
            elif tb:
                lines.extend("      " + t for t in tb[-4:])
        if self.failures > len(self.first_failures):
            lines.append(f"  ... and {self.failures - len(self.first_failures)} more; every failure is in errors.jsonl")
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


def keep_reports(layout: RunLayout) -> None:
    """Copy the reports of a failed gather (summary.json, errors.jsonl, processed_mini-batches.csv,
    declared outputs of the rule, which Snakemake removes when the job fails) to
    ``RunLayout.kept_report``, for ``restore_reports``."""
    for name in KEPT_REPORTS:
        path = getattr(layout, name)
        if os.path.exists(path):
            with open(path, "rb") as source, atomic_open(layout.kept_report(os.path.basename(path)), "wb") as handle:
                shutil.copyfileobj(source, handle)


def drop_kept_reports(layout: RunLayout) -> None:
    """Remove the copies an earlier failed gather kept (they belong to that run)."""
    for name in KEPT_REPORTS:
        try:
            os.unlink(layout.kept_report(os.path.basename(getattr(layout, name))))
        except FileNotFoundError:
            pass  # none kept: the usual case


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
