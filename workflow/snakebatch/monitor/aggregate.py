"""One aggregation of a run: the shards' progress records added up, and the run's summary read.

``read_run_progress`` reads the progress records of one invocation once and ``add_up`` returns
them with their sums as one frozen ``RunProgress``: the live view (snakebatch.monitor.live) and the
status command (snakebatch.monitor.status) both start from it. ``read_summary`` is the one place
the monitor stage reads gather's ``summary.json`` (the live view's last picture, the status, the
console's closing line and the report).
"""

from __future__ import annotations

import collections
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from snakebatch.gather.summary import RunSummary
from snakebatch.errors import ManifestError
from snakebatch.monitor import progress


@dataclass(frozen=True)
class RunProgress:
    """The progress records of one invocation (``records``, in shard order) and their sums.

    Counts summed over the records: ``done_mini_batches``, ``reused_mini_batches``,
    ``done_items``, ``succeeded_items``, ``failed_items``, ``reused_items`` (items of reused
    mini-batches: done without any run()). ``total_mini_batches`` and ``total_items`` are the
    run's (any record carries them; 0 without records). ``shards_running``: records whose state
    is ``running``; ``running_mini_batches``, ``running_items`` and ``running_since`` (the oldest
    ``time.time()`` seconds, None when none): the mini-batches in a run() call now, one at most
    per running shard. ``started_at`` (the first shard start) and ``updated_at`` (the newest
    record), epoch seconds, None without records. ``top_errors``: ``(message, count)`` summed
    over the records' own top errors, most frequent first (ties in shard order);
    ``first_failures``: ``(shard, "item: error")`` of each shard that has one, in shard order."""

    records: tuple[progress.ShardProgress, ...]
    shards_running: int
    done_mini_batches: int
    total_mini_batches: int
    reused_mini_batches: int
    done_items: int
    total_items: int
    succeeded_items: int
    failed_items: int
    reused_items: int
    running_mini_batches: int
    running_items: int
    running_since: float | None
    started_at: float | None
    updated_at: float | None
    top_errors: tuple[tuple[str, int], ...]
    first_failures: tuple[tuple[int, str], ...]

    @property
    def shards_reporting(self) -> int:
        """Shards with a record in this invocation."""
        return len(self.records)

    @property
    def computed_items(self) -> int:
        """Done items computed in this invocation (not reused): what took time."""
        return max(0, self.done_items - self.reused_items)


def add_up(records: Iterable[progress.ShardProgress]) -> RunProgress:
    """The RunProgress of ``records`` (those of one invocation, in shard order). Pure: reads
    nothing."""
    records = tuple(records)
    running = [r for r in records if r.state == "running" and r.running_since]
    errors: collections.Counter = collections.Counter()
    for record in records:
        for message, count in record.top_errors:
            errors[message] += count
    return RunProgress(
        records=records, shards_running=sum(1 for r in records if r.state == "running"),
        done_mini_batches=sum(r.done_mini_batches for r in records),
        total_mini_batches=max((r.total_mini_batches for r in records), default=0),
        reused_mini_batches=sum(r.reused_mini_batches for r in records),
        done_items=sum(r.done_items for r in records),
        total_items=max((r.total_items for r in records), default=0),
        succeeded_items=sum(r.succeeded_items for r in records), failed_items=sum(r.failed_items for r in records),
        reused_items=sum(r.reused_items for r in records), running_mini_batches=len(running),
        running_items=sum(r.running_items for r in running),
        running_since=min((r.running_since for r in running), default=None),
        started_at=min((r.started_at for r in records if r.started_at), default=None),
        updated_at=max((r.updated_at for r in records if r.updated_at), default=None),
        top_errors=tuple(errors.most_common()),
        first_failures=tuple((r.shard, r.first_failure) for r in records if r.first_failure))


def read_run_progress(run_dir: str, invocation: str,
                      settle: Callable[[progress.ShardProgress], progress.ShardProgress] | None = None) -> RunProgress:
    """Read the progress records of ``invocation`` in ``run_dir`` (``results/{run}``) once and add
    them up; ``settle``, when given, replaces each record before (the status command marks a
    shard whose runner is gone as ``lost`` with its durable counts)."""
    records = progress.invocation_progress(run_dir, invocation)
    return add_up(records if settle is None else [settle(r) for r in records])


def read_summary(path: str, since: float | None = None) -> dict:
    """Gather's (or the console's) ``summary.json`` at ``path`` as a dict: the one reader of it
    in the monitor stage. With ``since`` (epoch seconds), a file last written before then counts
    as missing (it is an earlier run's). Raises ManifestError naming the file when it is missing
    (or older), corrupt or not a JSON object."""
    try:
        if since is not None and os.path.getmtime(path) < since:
            raise ManifestError(f"the summary {path} is older than this run: gather has not run in it")
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise ManifestError(f"the summary {path} does not exist: gather has not run for this run folder") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"the summary {path} cannot be read: {exc}") from None
    try:
        return RunSummary.from_json(text).to_dict()  # gather's record parses it (snakebatch.gather.summary)
    except ValueError as exc:
        raise ManifestError(f"the summary {path} is corrupt: {exc}") from None


def summary_or_none(path: str, since: float | None = None) -> dict | None:
    """``read_summary(path, since)``, or None where it raises (no summary of this run yet)."""
    try:
        return read_summary(path, since)
    except ManifestError:
        return None
