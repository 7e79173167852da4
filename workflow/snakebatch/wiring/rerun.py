"""Shards that stopped early run again in the next invocation.

A shard job that stops early (a threshold, init() failing) leaves its result, which gather reports
from, and the marker ``shards/shard-NNNNN.unfinished`` (``infer.job.mark_unfinished``). The next
real run's main snakemake process removes the result of each shard with a marker while the
workflow is parsed, so Snakemake sees a missing output and runs that shard again (the shard job
removes the marker when it starts). No file needs a modification time ahead of the clock (a
marker dated ahead made Snakemake warn of clock skew). A dry run writes nothing: there the marker's
name is the shard job's param (``unfinished_param``), a changed param Snakemake shows as a rerun;
real runs always give it ``""``, so what they record never differs.

Gather killed with snakemake (SIGKILL, then ``snakemake --unlock``) leaves outputs Snakemake marks
incomplete; the next real run removes them so gather runs again without ``--rerun-incomplete``
(``drop_incomplete_gather_outputs``). Neither removal happens while another snakemake holds the
working directory's lock.
"""

from __future__ import annotations

import contextlib
import os
from base64 import urlsafe_b64encode

from snakebatch.storage.layout import RunLayout


def drop_unfinished_results(layout: RunLayout, markers: dict[str, str], main_process: bool,
                            dryrun: bool) -> list[str]:
    """Remove the shard results of the shards in ``markers`` (shard id -> marker,
    ``wiring.inputs.unfinished_markers``) in the main process of a real run; returns the removed
    paths. A dry run, a job's own snakemake, and any run while another snakemake holds the working
    directory's lock (its gather may read them) remove nothing. Raises OSError when a result
    cannot be removed (the caller names the run folder)."""
    if not main_process or dryrun or snakemake_running():
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


# Snakemake's file persistence (its default), in the working directory: a job's outputs are
# marked incomplete when it starts and unmarked when Snakemake sees it end (Snakemake 9;
# tests/wiring/test_rerun.py checks the format against the installed Snakemake).
SNAKEMAKE_INCOMPLETE = os.path.join(".snakemake", "incomplete")
SNAKEMAKE_LOCKS = os.path.join(".snakemake", "locks")


def snakemake_running() -> bool:
    """True while a snakemake holds the working directory's lock (Snakemake's ``.snakemake/locks``,
    taken after the workflow is parsed; a killed one's stays until ``snakemake --unlock``)."""
    try:
        return any(name.endswith(".lock") for name in os.listdir(SNAKEMAKE_LOCKS))
    except OSError:
        return False


def snakemake_incomplete_marker(path: str) -> str:
    """Where Snakemake's file persistence marks the output ``path`` (as the rule declares it)
    incomplete: its URL-safe base64, cut in pieces of at most 254 characters (folders ``@...``)."""
    name = urlsafe_b64encode(path.encode()).decode()
    pieces = [name[i:i + 254] for i in range(0, len(name), 254)]
    return os.path.join(SNAKEMAKE_INCOMPLETE, *(["@" + p for p in pieces[:-1]] + [pieces[-1]]))


def drop_incomplete_gather_outputs(outputs: list[str], main_process: bool, dryrun: bool) -> list[str]:
    """Remove gather's ``outputs`` that exist while Snakemake still marks them incomplete, in the
    main process of a real run while no snakemake holds the working directory's lock (after a
    SIGKILL of snakemake during gather and ``snakemake --unlock``). Snakemake would refuse the
    plain rerun with IncompleteFilesException where no profile sets ``rerun-incomplete`` (a
    user's own folder); gather writes every output again, to the same bytes. Returns the removed
    paths. Raises OSError when one cannot be removed."""
    if not main_process or dryrun or not os.path.isdir(SNAKEMAKE_INCOMPLETE) or snakemake_running():
        return []   # (a snakemake that runs here now: its gather may be writing them)
    marked = [p for p in outputs if os.path.exists(snakemake_incomplete_marker(p))]
    removed = []
    for path in marked:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
            removed.append(path)
    return removed
