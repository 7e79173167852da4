"""The life cycle of a run's result: when it stops being valid, and which shard results rerun.

A run folder's verdict is ``_SUCCESS`` (written last by gather, holding the merged file's name),
the merged file and ``summary.json``. A stage before gather that starts again calls
``invalidate_result`` (the earlier verdict no longer describes the input); gather calls
``clear_verdict`` before it writes a new one. Shard result files (``shards/shard-NNNNN.jsonl``:
one MiniBatchResult per line, then a ``{"stopped_early": ...}`` trailer when the shard stopped on
a threshold or its entry script could not start, with ``failure``: the start's error) are read with ``read_shard_file``. The shard results that must run again - those
that stopped early (``drop_stopped_shard_results``, before a run) or hold failures of a failed
run (``drop_shards_to_rerun``, after it) - are removed, so Snakemake reruns those shards, which
reuse the mini-batches they finished from the store.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
from dataclasses import dataclass

from snakebatch.errors import ManifestError
from snakebatch.storage.layout import RunLayout
from snakebatch.infer.results import MiniBatchResult
from snakebatch.storage.atomic import remove_stale_temps, write_json_atomic

_TRAILER = '{"stopped_early"'


@dataclass(frozen=True)
class ShardResults:
    """One shard result file: its mini-batch results, in order, and, when the shard stopped
    early on a threshold, why (``stopped_early``) and how many mini-batches the input has."""

    path: str
    results: tuple[MiniBatchResult, ...]
    stopped_early: str | None = None
    total_mini_batches: int | None = None
    failure: str | None = None  # the entry script could not start (import or init() failed)
    shard: int | None = None  # the shard's number, in a trailer (a shard that stopped early or failed)


def read_shard_file(path: str, on_result=None) -> ShardResults:
    """Read one shard result file; ManifestError names the file and line when it is missing or
    corrupt. With ``on_result`` (a callable), each result is handed to it as it is read and kept
    without its lines, so a large shard never sits in memory whole."""
    results: list[MiniBatchResult] = []
    trailer: dict = {}
    try:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                try:
                    if line.startswith(_TRAILER):
                        trailer = json.loads(line)
                        continue
                    result = MiniBatchResult.from_json(line)
                except (ValueError, KeyError, TypeError) as exc:
                    raise ManifestError(f"shard result {path!r} line {number} is corrupt: {exc!r}; delete it (or run "
                                        "snakemake with --forcerun infer_shard) so the shard runs again, reusing "
                                        "its finished mini-batches") from None
                if on_result is not None:
                    on_result(result)
                    result = dataclasses.replace(result, lines=())
                results.append(result)
    except FileNotFoundError:
        raise ManifestError(f"shard result {path!r} does not exist") from None
    return ShardResults(path=path, results=tuple(results), stopped_early=trailer.get("stopped_early"),
                        total_mini_batches=trailer.get("total_mini_batches"), failure=trailer.get("failure"),
                        shard=trailer.get("shard"))


def drop_stopped_shard_results(shards_dir: str) -> list[str]:
    """Remove the shard result files (``shard-*.jsonl`` in ``shards_dir``) whose last line is the
    stopped-early trailer: their shard did not finish, so the next run must run it again (reusing
    what it finished). Reads only the last 64 KiB of each file; an unreadable file is skipped.
    Returns the removed paths, sorted."""
    removed = []
    for path in sorted(glob.glob(os.path.join(shards_dir, "shard-*.jsonl"))):
        try:
            with open(path, "rb") as handle:
                handle.seek(max(0, os.path.getsize(path) - 65536))
                last = handle.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]
        except OSError:
            continue
        if last.startswith(_TRAILER.encode()):
            os.unlink(path)
            removed.append(path)
    return removed


def drop_shards_to_rerun(shards: list[ShardResults]) -> list[str]:
    """After a failed run: remove the result files of the shards that stopped early or hold a
    failed item, so the next run reruns them (their failures get new tries; what they finished is
    reused from the store). Returns the removed paths, in the order of ``shards``."""
    rerun = [shard.path for shard in shards if shard.stopped_early or any(r.failed for r in shard.results)]
    for path in rerun:
        os.unlink(path)
    return rerun


def _mark_summary_stale(run_dir: str) -> None:
    """Set ``"status": "stale"`` (and a note) in the run's ``summary.json``; nothing when there
    is none, it cannot be read or is stale already."""
    summary_path = RunLayout(run_dir).summary
    try:
        with open(summary_path, encoding="utf-8") as handle:
            summary = json.load(handle)
        if summary.get("status") == "stale":
            return
        summary["status"] = "stale"
        summary["note"] = "a newer run started; this summary describes the run before it"
        write_json_atomic(summary_path, summary)
    except (OSError, ValueError, AttributeError):
        pass


def clear_verdict(run_dir: str, merged: str | None) -> None:
    """Gather starts: mark ``summary.json`` stale first (an interrupted gather leaves no
    "succeeded"), then remove ``_SUCCESS``, the merged file ``merged`` (a path; None when the run
    has none) and the temporary files a killed gather left next to it."""
    _mark_summary_stale(run_dir)
    for stale in (RunLayout(run_dir).success_marker, merged):
        if stale and os.path.exists(stale):
            os.unlink(stale)
    if merged:
        remove_stale_temps(merged)


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
