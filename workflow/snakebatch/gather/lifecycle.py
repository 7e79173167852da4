"""The life cycle of a run's result: when it stops being valid, and which shard results rerun.

A run folder's verdict is ``_SUCCESS`` (written last by gather, holding the merged file's name),
the merged file and ``summary.json``. A stage before gather that starts again calls
``invalidate_result`` (the earlier verdict no longer describes the input); gather calls
``clear_verdict`` before it writes a new one (it also removes the temporary files a killed
gather left: ``remove_verdict_temps``, which the main process calls too when a run starts). Shard result files (``shards/shard-NNNNN.jsonl``:
one MiniBatchResult per line, then a ``{"stopped_early": ...}`` trailer when the shard stopped on
a threshold or its entry script could not start, with ``failure``: the start's error) are read
with ``scan_shard_file`` (once, keeping nothing) or ``read_shard_file``. The shard results of a
failed run that hold failures (``drop_shards_to_rerun``, after it) are removed, so Snakemake
reruns those shards, which reuse the mini-batches they finished from the store; a shard that
stopped early leaves its unfinished marker (``infer.job.mark_unfinished``), which reruns it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass

from snakebatch.errors import ManifestError
from snakebatch.gather.summary import read_summary, write_summary
from snakebatch.infer.results import MiniBatchResult, ShardTrailer, TRAILER_PREFIX
from snakebatch.storage.atomic import remove_stale_temps
from snakebatch.storage.layout import RunLayout

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class ShardResults:
    """One shard result file: its mini-batch results, in order (none when read by
    ``scan_shard_file``), how many items failed in it (``failed``), and, when the shard stopped
    early on a threshold, why (``stopped_early``) and how many mini-batches the input has."""

    path: str
    results: tuple[MiniBatchResult, ...]
    stopped_early: str | None = None
    total_mini_batches: int | None = None
    failure: str | None = None  # the entry script could not start (import or init() failed)
    shard: int | None = None  # the shard's number, in a trailer (a shard that stopped early or failed)
    failed: int = 0  # failed items in the file


def _corrupt(path: str, number: int, exc: Exception) -> ManifestError:
    return ManifestError(f"shard result {path!r} line {number} is corrupt: {exc!r}; delete it (or run "
                         "snakemake with --forcerun infer_shard) so the shard runs again, reusing "
                         "its finished mini-batches")


def scan_shard_file(path: str, on_result) -> ShardResults:
    """Read one shard result file once, handing each MiniBatchResult to ``on_result`` (a
    callable) as it is read and keeping none of them (``results`` is empty): memory does not grow
    with the file. Returns the trailer's fields and the count of failed items. ManifestError
    names the file and line when it is missing or corrupt."""
    trailer = None
    failed = 0
    try:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                try:
                    if line.startswith(TRAILER_PREFIX):
                        trailer = ShardTrailer.from_json(line)
                        continue
                    result = MiniBatchResult.from_json(line)
                except (ValueError, KeyError, TypeError) as exc:
                    raise _corrupt(path, number, exc) from None
                failed += result.failed
                on_result(result)
    except FileNotFoundError:
        raise ManifestError(f"shard result {path!r} does not exist") from None
    if trailer is None:
        return ShardResults(path=path, results=(), failed=failed)
    return ShardResults(path=path, results=(), stopped_early=trailer.stopped_early,
                        total_mini_batches=trailer.total_mini_batches, failure=trailer.failure,
                        shard=trailer.shard, failed=failed)


def read_shard_file(path: str, on_result=None) -> ShardResults:
    """Read one shard result file, keeping its results; ManifestError names the file and line
    when it is missing or corrupt. With ``on_result`` (a callable), each result is handed to it as
    it is read and kept without its lines. (gather uses ``scan_shard_file``, which keeps none.)"""
    results: list[MiniBatchResult] = []

    def keep(result: MiniBatchResult) -> None:
        if on_result is not None:
            on_result(result)
            result = dataclasses.replace(result, lines=())
        results.append(result)

    return dataclasses.replace(scan_shard_file(path, keep), results=tuple(results))


def drop_shards_to_rerun(shards: list[ShardResults]) -> list[str]:
    """After a failed run: remove the result files of the shards that stopped early or hold a
    failed item, so the next run reruns them (their failures get new tries; what they finished is
    reused from the store). Returns the removed paths, in the order of ``shards``."""
    rerun = [shard.path for shard in shards if shard.stopped_early or shard.failed]
    for path in rerun:
        os.unlink(path)
    return rerun


def _mark_summary_stale(run_dir: str) -> None:
    """Set ``"status": "stale"`` (and a note) in the run's ``summary.json``; nothing when there
    is none or it is stale already. One that cannot be read or written is logged and left."""
    path = RunLayout(run_dir).summary
    if not os.path.exists(path):
        return
    try:
        summary = read_summary(path)
        if summary.status != "stale":
            write_summary(path, summary.stale())
    except (ManifestError, OSError) as exc:
        log.warning("summary.json %s cannot be marked stale: %s", path, exc)


def clear_verdict(run_dir: str, merged: str | None) -> None:
    """Gather starts: mark ``summary.json`` stale first (an interrupted gather leaves no
    "succeeded"), then remove ``_SUCCESS``, the merged file ``merged`` (a path; None when the run
    has none) and the temporary files a killed gather left next to it."""
    _mark_summary_stale(run_dir)
    for stale in (RunLayout(run_dir).success_marker, merged):
        if stale and os.path.exists(stale):
            os.unlink(stale)
    remove_verdict_temps(run_dir, merged)


def remove_verdict_temps(run_dir: str, merged: str | None) -> list[str]:
    """Remove the temporary files (``.tmp-{name}-*``, ``storage.atomic.remove_stale_temps``) a
    killed gather, or a killed ``onerror`` hook, left next to the files of the run's verdict:
    the merged file ``merged`` (a path; None when the run has none), summary.json, _SUCCESS,
    errors.jsonl, processed_mini-batches.csv, logs/job_result.txt and the kept copies of the
    reports. One whose writer still runs on this machine is kept. Returns the paths removed."""
    layout = RunLayout(run_dir)
    targets = [layout.summary, layout.success_marker, layout.errors, layout.processed_mini_batches,
               layout.job_result, *(layout.kept_report(os.path.basename(getattr(layout, name)))
                                    for name in ("summary", "errors", "processed_mini_batches"))]
    removed = []
    for target in [*targets, merged] if merged else targets:
        removed += remove_stale_temps(target)
    return removed


def invalidate_result(run_dir: str) -> None:
    """Called when a stage before gather starts: the earlier run's result no longer describes
    the input, so it must not look complete. Removes ``_SUCCESS`` and the merged file it names,
    and marks ``summary.json`` ``"stale"``. Does nothing when there is no ``_SUCCESS``; safe when
    several shard jobs call it at once (the one that removes ``_SUCCESS`` does the rest)."""
    layout = RunLayout(run_dir)
    try:
        with open(layout.success_marker, encoding="utf-8") as handle:
            merged = handle.read().strip()
        os.unlink(layout.success_marker)
    except FileNotFoundError:
        return
    if merged and "/" not in merged and merged not in (".", ".."):
        try:
            os.unlink(layout.merged(merged))
        except FileNotFoundError:
            pass
    _mark_summary_stale(run_dir)
