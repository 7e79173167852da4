"""Shards that stopped early run again in the next invocation.

A shard job that stops early (a threshold, init() failing) leaves its result, which gather reports
from, and the marker ``shards/shard-NNNNN.unfinished`` (``infer.job.mark_unfinished``). The next
real run's main snakemake process removes the result of each shard with a marker while the
workflow is parsed, so Snakemake sees a missing output and runs that shard again (the shard job
removes the marker when it starts). No file needs a modification time ahead of the clock (a
marker dated ahead made Snakemake warn of clock skew). A dry run writes nothing: there the marker's
name is the shard job's param (``unfinished_param``), a changed param Snakemake shows as a rerun;
real runs always give it ``""``, so what they record never differs.
"""

from __future__ import annotations

import contextlib
import os

from snakebatch.storage.layout import RunLayout


def drop_unfinished_results(layout: RunLayout, markers: dict[str, str], main_process: bool,
                            dryrun: bool) -> list[str]:
    """Remove the shard results of the shards in ``markers`` (shard id -> marker,
    ``wiring.inputs.unfinished_markers``) in the main process of a real run; returns the removed
    paths. A dry run and a job's own snakemake remove nothing. Raises OSError when a result
    cannot be removed (the caller names the run folder)."""
    if not main_process or dryrun:
        return []
    removed = []
    for shard in sorted(markers):
        path = layout.shard_result(shard)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
            removed.append(path)
    return removed


def unfinished_param(markers: dict[str, str], dryrun: bool):
    """The shard jobs' ``unfinished`` param: in a dry run, a params function giving each shard
    the file name of its marker (``""`` for the others), so Snakemake shows those shard jobs as
    to run (their params changed); ``""`` in real runs and when there is no marker."""
    if not dryrun or not markers:
        return ""
    names = {shard: os.path.basename(marker) for shard, marker in markers.items()}

    def shard_marker(wildcards):
        return names.get(wildcards.shard, "")

    return shard_marker
