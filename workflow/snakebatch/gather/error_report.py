"""The error report ``results/{run}/errors.jsonl``: one JSON object per failed item, in input
order (``results.FailedItem.to_dict``: ``item``, ``mini_batch``, ``shard``, ``tries``,
``exception``, ``message``, ``error``, ``traceback``), written by gather.

``read_error_report`` is the one reader of that file: ``snakebatch.read_errors`` (all of it, as a
DataFrame), the report's failed-items table (the first 100), the status command's message counts
and the console's note on tolerated failures (the first 3) all read it through here.
ParallelRunStep's counterpart is the per-item lines of ``logs/user/error/``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from snakebatch.errors import ManifestError


@dataclass(frozen=True)
class ErrorReport:
    """What ``read_error_report`` read: ``records`` (the first ``limit`` failed items as dicts, in
    file order) and ``total`` (failed items in the whole file; more than ``len(records)`` when the
    limit cut it)."""

    records: tuple[dict, ...]
    total: int


def read_error_report(path: str, limit: int | None = None, on_record=None) -> ErrorReport:
    """Read the error report ``path`` (``errors.jsonl``): keep the first ``limit`` records (all
    with None), count every one. With ``on_record`` (a callable), every record is also handed to
    it as it is read, kept or not (the status command counts messages this way without holding
    the file). Blank lines are skipped. Lines past the limit are counted, not parsed, unless
    ``on_record`` wants them.

    Raises ManifestError naming the file when it is missing ("gather has not run for this run
    folder") and naming the file and line when a line that is parsed is not a JSON object."""
    records: list[dict] = []
    total = 0
    try:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                total += 1
                keep = limit is None or len(records) < limit
                if not keep and on_record is None:
                    continue
                try:
                    record = json.loads(line)
                except ValueError as exc:
                    raise ManifestError(f"{path}, line {number}: not JSON: {exc}") from None
                if not isinstance(record, dict):
                    raise ManifestError(f"{path}, line {number}: not a JSON object but {type(record).__name__}")
                if keep:
                    records.append(record)
                if on_record is not None:
                    on_record(record)
    except FileNotFoundError:
        raise ManifestError(f"{path} does not exist: gather has not run for this run folder") from None
    return ErrorReport(tuple(records), total)
