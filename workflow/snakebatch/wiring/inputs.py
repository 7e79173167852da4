"""The files the rules declare, found while the workflow is parsed (once per invocation).

Each function reads what it needs once (a folder listing, a few etags), not once per shard job:
Snakemake builds one job per shard, and anything a rule computes per job is paid a thousand
times in a 1,000-shard run. Errors a user can fix raise Snakemake's WorkflowError with one line
that starts ``snakebatch: invalid ...`` and names the key or the input.
"""

from __future__ import annotations

import os
import re

from snakemake.exceptions import WorkflowError

from snakebatch.errors import DatasetError
from snakebatch.infer.store import known_modules
from snakebatch.kinds import get_kind
from snakebatch.kinds.listing import watched_paths
from snakebatch.kinds.walk import is_glob, root_folders
from snakebatch.partition.listing import encode as encode_listing
from snakebatch.partition.listing import gc_paused, write_chunks
from snakebatch.settings.specs import RunPlan
from snakebatch.storage.layout import RunLayout
from snakebatch.storage.locations import is_url

# The name of the listing when the main process cannot list: the data does not exist yet.
UNLISTED = "unlisted"


def plain_paths(paths: list[str]) -> list[str]:
    """``paths`` without those Snakemake would read as wildcards: it reads ``{name}`` in any input
    path as a wildcard and cannot escape it, so a file named like ``x{y}.txt`` is left out of the
    tracked inputs. The partition still lists it, and the dataset listing still notices when it
    changes."""
    return [p for p in paths if not re.search(r"\{[^{}]*\}", p)]


def dataset_listing(plan: RunPlan, layout: RunLayout, main_process: bool, dryrun: bool,
                    recorded_listing: str = "") -> str:
    """The path of the listing the partition makes (its output): named by the dataset's
    fingerprint (the digest of the listing's bytes: paths, sizes, mtimes), so a missing one means a
    changed dataset and a partition to run. The dataset is listed here, once per run, as a stream
    of encoded chunks (snakebatch.partition.listing; no Item is kept): a real run hands the listing
    to the partition job (``listed-{fingerprint}.list``), a dry run writes nothing. A dataset that
    does not exist yet (a rule makes it) is listed by the partition job itself (``UNLISTED``). A
    job's own snakemake (``main_process`` False) takes the name the main process recorded
    (``recorded_listing``, plan.json). Raises WorkflowError for an empty or unreadable dataset."""
    if not main_process:
        return layout.partition_file(recorded_listing)
    spec = plan.partition
    if not all(is_url(p) or os.path.exists(p) for p in spec.paths if not is_glob(p)):
        return layout.listing(UNLISTED)
    try:
        with gc_paused():
            fingerprint, chunks = encode_listing(get_kind(spec.input_type).list(spec))
    except DatasetError as exc:
        raise WorkflowError(f"snakebatch: invalid input: {exc}") from None
    path = layout.listing(fingerprint)
    if not dryrun and not os.path.exists(path) and not os.path.exists(layout.listed(fingerprint)):
        write_chunks(layout.listed(fingerprint), chunks)
    return path


def dataset_roots(plan: RunPlan, layout: RunLayout, listing: str) -> list[str]:
    """The inputs of the partition. While a job of this workflow still has to make the dataset's
    roots (``listing`` is the unlisted one), the roots, so that job runs first; else none, as the
    listing's name already tells a changed dataset, and a root's newer mtime alone (a file added
    and removed again) changes nothing."""
    if listing != layout.listing(UNLISTED):
        return []
    return plain_paths(root_folders(plan.partition.paths))


def runner_inputs(plan: RunPlan, layout: RunLayout) -> list[str]:
    """Files whose change must re-run the shard jobs: the entry script, the helper modules it
    imported from source_directory last time, and the folders and files of every model and side
    input (a folder's own mtime misses a file rewritten inside it). Those given by URL are left
    out: the runner fingerprints their objects' etags, which reuse follows (remote_resources)."""
    runner = plan.runner
    paths = [p for p in [*runner.models.values(), *runner.side_inputs.values()] if not is_url(p)]
    modules = [m for m in known_modules(layout.root) if os.path.exists(m)]
    return plain_paths([runner.entry_script, *modules, *(watched_paths(paths) if paths else [])])


def remote_resources(plan: RunPlan, main_process: bool) -> str:
    """The versions of the models and side inputs given by URL, ``models.m=<16 hex>,...`` (a
    digest of their objects' etags, read once per run here): a param of the shard jobs, so a
    rewritten object reruns them (the store then reuses what it can). Empty when none is given by
    URL, and in a job's own snakemake (params are the main process's business). Raises
    WorkflowError naming the key when an object cannot be read."""
    from snakebatch.storage.locations import remote_fingerprint, storage_error

    if not main_process:
        return ""
    versions = {}
    for key in ("models", "side_inputs"):
        for name, path in getattr(plan.runner, key).items():
            if not is_url(path):
                continue
            try:
                versions[f"{key}.{name}"] = remote_fingerprint(path, plan.runner.storage_options)[:16]
            except Exception as exc:
                raise WorkflowError(f"snakebatch: invalid config: {key}.{name}: {storage_error(path, exc)}") from None
    return ",".join(f"{k}={v}" for k, v in sorted(versions.items()))


def unfinished_markers(layout: RunLayout, shard_ids: list[str]) -> dict[str, str]:
    """The markers shards that stopped early left (snakebatch.infer.job.mark_unfinished), by
    shard id: the shards folder is read once, not once per shard job. Only read, so a dry run
    writes nothing."""
    try:
        names = set(os.listdir(layout.shards_dir))
    except OSError:  # no shard ran yet
        return {}
    markers = {}
    for shard in shard_ids:
        for marker in (layout.shard_unfinished(shard), layout.shard_unfinished(shard, alternate=True)):
            if os.path.basename(marker) in names:  # the first that exists (infer.job.mark_unfinished)
                markers[shard] = marker
                break
    return markers


def missing_manifests(layout: RunLayout, listing: str, shard_ids: list[str]) -> dict[str, str]:
    """The manifests, by shard id, the partition must (re)make although the listing exists: a
    manifest that is gone, or one of a shard count larger than last time. Only these are declared
    outputs of the partition (besides the listing) and inputs of their shard jobs, so the
    partition runs again: a job with one output per shard costs Snakemake time quadratic in the
    shards (each shard job's dependency is scanned output by output; 2-3 s of CPU in a 1,000-shard
    dry run). While the listing is missing the partition runs anyway, and writes every manifest."""
    if not os.path.exists(listing):
        return {}
    try:
        names = set(os.listdir(os.path.dirname(listing)))
    except OSError:
        names = set()
    manifests = {shard: layout.manifest(shard) for shard in shard_ids}
    return {shard: m for shard, m in manifests.items() if os.path.basename(m) not in names}


def input_by_shard(paths: dict[str, str]):
    """An input function for the shard jobs that gives each shard its path in ``paths`` (by
    shard id; ``[]`` for the others), or ``[]`` itself when ``paths`` is empty (the usual case):
    Snakemake calls an input function once per shard job, with a signature inspection each time."""
    if not paths:
        return []

    def shard_input(wildcards):
        path = paths.get(wildcards.shard)
        return [path] if path else []

    return shard_input


def run_folder(wildcards, output) -> str:
    """A params function: the run folder of a job, found from its last output (``_SUCCESS``), as
    the job sees it."""
    return RunLayout.of_run_file(output[-1]).root


def report_run_folder(wildcards, input) -> str:
    """A params function: the run folder of the report_files job, from its ``summary`` input."""
    return RunLayout.of_run_file(input.summary).root
