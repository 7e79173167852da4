"""The merge: read each shard result file once, in shard order, and hand every mini-batch result
as it is read to the merged file's writer (``formats``), the reports (``reports.ReportWriter``),
the running tally (``thresholds.RunningTally``), the timing and the order check. Nothing of a
result is kept past its turn, so memory stays flat whatever the number of lines and failures
(the parquet writer keeps one table file path per mini-batch, for the merged file).
"""

from __future__ import annotations

from dataclasses import dataclass

from snakebatch.errors import ManifestError
from snakebatch.formats import get_format
from snakebatch.formats.base import MergeWriter
from snakebatch.gather.lifecycle import ShardResults, scan_shard_file
from snakebatch.gather.reports import ReportWriter
from snakebatch.gather.summary import RunTiming
from snakebatch.gather.thresholds import RunningTally
from snakebatch.infer.results import MiniBatchResult
from snakebatch.storage.layout import RunLayout


class RunningTiming:
    """The ``RunTiming`` of the results added so far, kept at O(1) per result: computed items,
    their run() seconds summed, the first start and last end of the computed ones; reused
    mini-batches count as reused items only."""

    def __init__(self) -> None:
        self.items = 0
        self.computed_items = 0
        self.compute_s = 0.0
        self.first_start: float | None = None
        self.last_end: float | None = None

    def add(self, result: MiniBatchResult) -> None:
        self.items += result.item_count
        if result.reused:
            return
        self.computed_items += result.item_count
        self.compute_s += result.duration_s
        end = result.started_at + result.duration_s
        self.first_start = result.started_at if self.first_start is None else min(self.first_start, result.started_at)
        self.last_end = end if self.last_end is None else max(self.last_end, end)

    def timing(self) -> RunTiming:
        wall_s = (self.last_end - self.first_start) if self.first_start is not None else 0.0
        return RunTiming(computed_items=self.computed_items, reused_items=self.items - self.computed_items,
                         compute_s=round(self.compute_s, 3), wall_s=round(wall_s, 3),
                         items_per_s=round(self.computed_items / wall_s, 1) if wall_s > 0 else None)


@dataclass(frozen=True)
class MergeRead:
    """What ``read_shards`` found: each shard's file (``ShardResults`` without results), and
    ``out_of_order`` the first place the mini-batches are not 0..N-1 in order (None when they are)."""

    shards: tuple[ShardResults, ...]
    out_of_order: str | None

    @property
    def stopped(self) -> list[ShardResults]:
        """The shards that stopped early."""
        return [shard for shard in self.shards if shard.stopped_early]

    def check_order(self) -> None:
        """Raise ManifestError when a mini-batch is missing or duplicated."""
        if self.out_of_order:
            raise ManifestError(self.out_of_order)


class Merge:
    """One gather's merge (see module doc): ``merged`` the merged file's path (None for
    summary_only), written with ``append_row_format``'s writer; the reports under ``layout``.
    ``read_shards`` reads the shard files; then ``publish_reports`` and ``publish_merged`` make
    them visible, or ``discard`` drops what was not published. Use it as a context manager: an
    error inside the block discards everything unpublished."""

    def __init__(self, spec, layout: RunLayout, merged: str | None) -> None:
        self.tally = RunningTally()
        self.timing = RunningTiming()
        self.reports = ReportWriter(layout)
        self.writer: MergeWriter | None = None
        if merged is not None:
            try:
                self.writer = get_format(spec.append_row_format).open_merge(merged, spec.append_row_dataframe_header)
            except BaseException:
                self.reports.discard()
                raise
        self._expected = 0
        self._out_of_order: str | None = None

    def _add(self, result: MiniBatchResult) -> None:
        if result.index != self._expected and self._out_of_order is None:
            self._out_of_order = (f"shard results hold mini-batch {result.index} where mini-batch {self._expected} "
                                  "was expected: a mini-batch is missing or duplicated; rerun the infer jobs")
        self._expected += 1
        self.tally.add(result)
        self.timing.add(result)
        self.reports.add(result)
        if self.writer is not None:
            self.writer.add(result)

    def read_shards(self, shard_results: list[str]) -> MergeRead:
        """Read every shard result file (paths, in shard order) once."""
        shards = tuple(scan_shard_file(path, self._add) for path in shard_results)
        return MergeRead(shards, self._out_of_order)

    def publish_reports(self) -> None:
        self.reports.commit()

    def publish_merged(self) -> None:
        if self.writer is not None:
            self.writer.commit()

    def discard(self) -> None:
        self.reports.discard()
        if self.writer is not None:
            self.writer.discard()

    def __enter__(self) -> Merge:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        self.discard()  # whatever was not published
