"""Shard progress records: what shard jobs tell each other, the live view and the status command.

Shard jobs publish a ShardProgress record when they start, after each mini-batch and when they
end (``progress/shard-NNNNN.json``), so every shard can stop early once the failures of this run
exceed a threshold, and the run's progress can be added up (snakebatch.monitor.aggregate).
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
from dataclasses import dataclass

from snakebatch.monitor.once import warn_once
from snakebatch.storage.layout import RunLayout
from snakebatch.storage.atomic import replace_text_unsynced

INVOCATION_ENV = "SNAKEBATCH_INVOCATION"


def invocation_id() -> str:
    """The invocation id of a ShardRunner used on its own (tests, benchmarks): ``INVOCATION_ENV``
    when set, else a fresh one per process. A shard job of the workflow gets its invocation's id
    from ``plan.json`` instead (infer.job.run_shard, snakebatch.settings.plan)."""
    global _OWN_INVOCATION
    value = os.environ.get(INVOCATION_ENV)
    if value:
        return value
    if _OWN_INVOCATION is None:
        import uuid

        _OWN_INVOCATION = uuid.uuid4().hex
    return _OWN_INVOCATION


_OWN_INVOCATION: str | None = None


SHARD_STATES = ("running", "done", "stopped", "failed", "interrupted")


@dataclass(frozen=True)
class ShardProgress:
    """What one shard job has done in this invocation, published by the runner when it starts,
    after every mini-batch and when it ends (``progress/shard-NNNNN.json``).

    Counts: ``done_mini_batches`` of ``shard_mini_batches`` (this shard's), ``reused_mini_batches``
    among the done ones, ``done_items`` of ``shard_items``, ``succeeded_items`` and
    ``failed_items`` among the done ones, ``failed_mini_batches``; ``total_items`` and
    ``total_mini_batches`` are the whole run's (from the manifest), so any one record tells the
    run's size. ``first_failure`` is ``"item: error"``; ``top_errors`` the most frequent error
    messages of this shard as ``(message, count)`` pairs, most frequent first (at most
    TOP_ERRORS). ``state`` is one of SHARD_STATES. Times are ``time.time()`` seconds:
    ``started_at`` (shard start), ``progress_at`` (the last finished mini-batch, or the start),
    ``updated_at`` (this record). ``host`` and ``pid`` name the runner process;
    ``run_invocation_timeout`` (seconds) is what the status command's stall rule is based on.
    ``reused_items``: the items of the reused mini-batches (done without any run(); the rate of
    the live view and the status is of the others). The mini-batch in ``run()`` when the record
    was written (the worker's ``started`` Event of its Run; a shard has one worker):
    ``running_mini_batch`` (its index, -1 for none), ``running_items`` (items given to that
    run() call: fewer than the mini-batch's while it is bisected) and ``running_since`` (the
    Event's time; 0.0 for none).

    With ``balance_shards`` a record counts the work its shard job did: ``stolen_mini_batches``
    and ``stolen_items`` are those it computed (or reused) for busy shards, included in the
    ``done_*``, ``succeeded_items``, ``failed_*``, ``reused_*`` counts; the owner takes their
    results into its shard file without counting them again (``adopted_mini_batches``), so the
    sums over the records of an invocation count every mini-batch once and end at the run's
    totals."""

    invocation: str
    shard: int
    done_mini_batches: int
    shard_mini_batches: int
    failed_items: int
    failed_mini_batches: int
    first_failure: str = ""
    done_items: int = 0
    shard_items: int = 0
    succeeded_items: int = 0
    reused_mini_batches: int = 0
    total_items: int = 0
    total_mini_batches: int = 0
    state: str = "running"
    started_at: float = 0.0
    progress_at: float = 0.0
    updated_at: float = 0.0
    host: str = ""
    pid: int = 0
    run_invocation_timeout: float = 0.0
    top_errors: tuple[tuple[str, int], ...] = ()
    reused_items: int = 0
    running_mini_batch: int = -1
    running_items: int = 0
    running_since: float = 0.0
    stolen_mini_batches: int = 0
    stolen_items: int = 0
    adopted_mini_batches: int = 0

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "ShardProgress":
        """Parse a record; keys this version does not know are ignored. Raises ValueError or
        TypeError for text that is not a record (not an object, a field of the wrong type: the
        readers add the counts up)."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise TypeError(f"a progress record is a JSON object, not {type(data).__name__}")
        known = {f.name: f.type for f in dataclasses.fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        for name, value in data.items():
            wanted = _FIELD_TYPES.get(known[name])
            if wanted is not None and (not isinstance(value, wanted) or isinstance(value, bool)):
                raise TypeError(f"progress record field {name!r} is {type(value).__name__}, not {known[name]}")
        data["top_errors"] = tuple((str(m), int(c)) for m, c in data.get("top_errors", ()))
        return cls(**data)


_FIELD_TYPES = {"int": int, "float": (int, float), "str": str}  # a record field's annotation -> JSON types

TOP_ERRORS = 5  # error messages a progress record keeps per shard


def progress_path(run_dir: str, shard: int) -> str:
    """``results/{run}/progress/shard-NNNNN.json``."""
    return RunLayout(run_dir).progress(shard)


def write_progress(run_dir: str, record: ShardProgress) -> None:
    """Publish ``record`` for the other shards, the live view and the status command: a
    temporary file renamed over the record, so a reader sees the old record or the new one. Not
    fsynced (it is written after every mini-batch; the durable truth is the mini-batch store):
    a machine crash may lose the last record, never tear one."""
    replace_text_unsynced(progress_path(run_dir, record.shard), record.to_json() + "\n")


def read_progress(run_dir: str) -> list[ShardProgress]:
    """Every readable progress record in ``run_dir``, in shard order, of any invocation."""
    records = []
    for path in sorted(glob.glob(RunLayout(run_dir).progress("*"))):
        try:
            with open(path, encoding="utf-8") as handle:
                records.append(ShardProgress.from_json(handle.read()))
        except FileNotFoundError:  # removed since it was listed (a new invocation cleans up)
            continue
        except (OSError, ValueError, TypeError) as exc:  # unreadable: says nothing about the run
            warn_once(f"reading the progress record {path}", exc, trace=False)
            continue
    return records


def invocation_progress(run_dir: str, invocation: str) -> list[ShardProgress]:
    """The progress records of every shard of ``invocation`` (records of earlier invocations,
    or unreadable ones, are skipped: they say nothing about this run)."""
    return [record for record in read_progress(run_dir) if record.invocation == invocation]
