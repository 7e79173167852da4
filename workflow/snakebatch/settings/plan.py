"""The plan of one invocation, resolved once in the main snakemake process.

``process_count_per_node: auto`` depends on the cores snakemake was given, which differ between
the main process, a dry run without ``--cores`` and a cluster job's own snakemake (``--cores all``
on a compute node). So the main process resolves it (``auto_process_count``) and, when it starts
jobs, records the result in ``results/{run}/plan.json`` (``PlanRecord``, written by the
``onstart`` hook, never by a dry run). A job's own snakemake and a later dry run without
``--cores`` read it back instead of resolving again; shard jobs read the invocation id from it
(the id the shards of one invocation share to stop early together).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass

from snakebatch.storage.atomic import write_text_atomic


@dataclass(frozen=True)
class PlanRecord:
    """``plan.json``: the resolved ``process_count_per_node`` (workers per node, >= 1), the
    shard count (node_count x that), the id of the invocation that started jobs, the file
    name of the dataset listing it partitions (``listing-{fingerprint}.jsonl``) and the GPU pool
    (``--resources gpu=N``; None when not given)."""

    run_name: str
    process_count_per_node: int
    shard_count: int
    invocation: str
    listing: str = ""
    # the run's GPU pool (snakemake --resources gpu=N), None when not given: shard jobs take their
    # workers' device indices from it (snakebatch.infer.devices)
    gpu_pool: int | None = None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PlanRecord:
        data = json.loads(text)
        return cls(run_name=str(data["run_name"]), process_count_per_node=int(data["process_count_per_node"]),
                   shard_count=int(data["shard_count"]), invocation=str(data["invocation"]),
                   listing=str(data.get("listing", "")),
                   gpu_pool=None if data.get("gpu_pool") is None else int(data["gpu_pool"]))


def read_plan(path: str) -> PlanRecord | None:
    """The record at ``path``; None when it is missing or unreadable."""
    try:
        with open(path, encoding="utf-8") as handle:
            return PlanRecord.from_json(handle.read())
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_plan(path: str, record: PlanRecord) -> None:
    """Write ``record`` atomically (shard jobs may read it at any time)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    write_text_atomic(path, record.to_json() + "\n")


def auto_process_count(cores: int | None, cores_given: bool, dryrun: bool,
                       recorded: PlanRecord | None) -> int:
    """What ``process_count_per_node: auto`` means in the main process: the cores given to
    snakemake (``cores``, with ``cores_given`` True when the user set them); in a dry run without
    ``--cores`` the value the last run that started jobs recorded (``recorded``), so the dry run
    plans what that run did; else ``os.cpu_count()`` (the cores ``--cores all`` would give)."""
    if cores_given and cores:
        return max(1, int(cores))
    if dryrun and recorded is not None:
        return recorded.process_count_per_node
    return max(1, os.cpu_count() or 1)


def oversubscription_warning(shard_count: int, cores: int | None, cpu_count: int) -> str | None:
    """The warning for a local run whose shards running at once (``shard_count``, at most the
    ``cores`` given to snakemake) exceed the machine's ``cpu_count`` cores: each is a worker with
    its own copy of the model. None when they fit, or without ``cores`` (a cluster run)."""
    if not cores:
        return None
    at_once = min(shard_count, int(cores))
    if at_once <= cpu_count:
        return None
    return (f"{at_once} shards run at once (--cores {cores}) on this machine's {cpu_count} cores: each is a "
            "worker with its own copy of the model in memory, and they share the cores; "
            f"--cores {cpu_count} (or process_count_per_node: {cpu_count}) matches the machine")
