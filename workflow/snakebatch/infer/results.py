"""Result records that cross a file boundary: a failed item, a mini-batch result and the shard trailer.

A shard job writes one ``MiniBatchResult`` per line (JSON) to its shard result file, in input
order, and a ``ShardTrailer`` line last when it stopped early; gather reads them back.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass


@dataclass(frozen=True)
class FailedItem:
    """One failed input item: ``item`` (its path; None when run() returned too few results and the
    failed items are unknown), ``mini_batch`` (index), ``error`` (``"ExceptionType: message"``;
    snakebatch's own causes are ``MiniBatchTimeout``, ``WorkerDied``, ``ResultTypeError`` and
    ``ResultCountError``), ``traceback`` (text, may be empty), ``tries`` (calls made for it) and
    ``shard`` (the shard the mini-batch belongs to; with balance_shards another shard job may have
    run it: its worker logs then hold the traceback too). Its errors.jsonl line (``to_json``) also splits
    ``error`` into ``exception`` and ``message``."""

    item: str | None
    mini_batch: int
    error: str
    traceback: str
    tries: int
    shard: int = 0

    @property
    def exception(self) -> str:
        """The exception's type name, e.g. ``ValueError``."""
        return self.error.split(":", 1)[0]

    @property
    def message(self) -> str:
        """The exception's message (``str(exc)``)."""
        return self.error.split(":", 1)[1].strip() if ":" in self.error else ""

    def to_dict(self) -> dict:
        """The errors.jsonl record (a dict; nested in a MiniBatchResult's JSON too)."""
        return {"item": self.item, "mini_batch": self.mini_batch, "shard": self.shard, "tries": self.tries,
                "exception": self.exception, "message": self.message, "error": self.error,
                "traceback": self.traceback}

    @classmethod
    def from_dict(cls, data: dict) -> FailedItem:
        """The FailedItem of a ``to_dict`` dict. Raises KeyError, TypeError, ValueError."""
        return cls(item=data["item"], mini_batch=int(data["mini_batch"]), error=data["error"],
                   traceback=data["traceback"], tries=int(data["tries"]), shard=int(data.get("shard", 0)))


@dataclass(frozen=True)
class MiniBatchResult:
    """The durable outcome of one mini-batch.

    ``index``/``key``/``first_item``: as in the manifest; ``item_count``: items in it;
    ``succeeded``: items that produced a result (min(len(result), item_count), summed over the
    bisected parts); ``lines``: the encoded append_row lines in item order; ``failures``: one
    FailedItem per failed item; ``tries``: run() calls made; ``duration_s``: wall seconds;
    ``cpu_s``: CPU seconds the worker spent in run() for it (all tries; 0 for a killed call);
    ``header``: the csv header line of its result (append_row_format csv); ``table_file``: the
    Parquet file holding its result table (append_row_format parquet);
    ``agent_name``: the worker; ``started_at``: Unix time it started; ``positional``: run() took
    the mini-batch context, so the result may depend on the mini-batch's position; ``reused``: True when taken from an earlier run.
    """

    index: int
    key: str
    first_item: int
    item_count: int
    succeeded: int
    lines: tuple[str, ...]
    failures: tuple[FailedItem, ...]
    tries: int
    duration_s: float
    agent_name: str
    started_at: float = 0.0
    positional: bool = False
    reused: bool = False
    cpu_s: float = 0.0
    header: str | None = None
    table_file: str | None = None

    @property
    def failed(self) -> int:
        """Failed items: item_count - succeeded."""
        return self.item_count - self.succeeded

    def to_json(self) -> str:
        """The record as one line of JSON; serialised once per record (the store and the shard
        file write the same text)."""
        return self._json

    @functools.cached_property
    def _json(self) -> str:
        return json.dumps({
            "index": self.index, "key": self.key, "first_item": self.first_item,
            "item_count": self.item_count, "succeeded": self.succeeded, "lines": list(self.lines),
            "failures": [f.to_dict() for f in self.failures], "tries": self.tries,
            "duration_s": round(self.duration_s, 6), "agent_name": self.agent_name,
            "started_at": round(self.started_at, 6), "positional": self.positional, "reused": self.reused,
            "cpu_s": round(self.cpu_s, 6), "header": self.header, "table_file": self.table_file,
        }, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> MiniBatchResult:
        """The MiniBatchResult of one ``to_json`` line. Raises ValueError, KeyError, TypeError."""
        data = json.loads(text)
        return cls(
            index=int(data["index"]), key=data["key"], first_item=int(data["first_item"]),
            item_count=int(data["item_count"]), succeeded=int(data["succeeded"]),
            lines=tuple(data["lines"]), failures=tuple(FailedItem.from_dict(f) for f in data["failures"]),
            tries=int(data["tries"]), duration_s=float(data["duration_s"]),
            agent_name=data["agent_name"], started_at=float(data.get("started_at", 0.0)),
            positional=bool(data.get("positional", False)), reused=bool(data.get("reused", False)),
            cpu_s=float(data.get("cpu_s", 0.0)), header=data.get("header"), table_file=data.get("table_file"),
        )


TRAILER_PREFIX = '{"stopped_early"'  # how a shard result file's trailer line starts (ShardTrailer.to_json)


@dataclass(frozen=True)
class ShardTrailer:
    """The last line of a shard result file whose shard stopped early: ``stopped_early`` (why: a
    threshold breach, or the entry script failing to start), ``total_mini_batches`` (of the whole
    input, for gather's message); when the entry script could not start, ``failure`` (its error in
    full), ``shard`` and ``shard_count``. Gather, the lifecycle and the status read it back."""

    stopped_early: str
    total_mini_batches: int
    failure: str | None = None
    shard: int | None = None
    shard_count: int | None = None

    def to_json(self) -> str:
        """One line of JSON starting with TRAILER_PREFIX; the start-failure fields only when set."""
        data = {"stopped_early": self.stopped_early, "total_mini_batches": self.total_mini_batches}
        if self.failure is not None:
            data.update(failure=self.failure, shard=self.shard, shard_count=self.shard_count)
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> ShardTrailer:
        """The trailer of ``to_json``'s text. Raises ValueError, KeyError or TypeError when it is not one."""
        data = json.loads(text)
        return cls(stopped_early=data["stopped_early"], total_mini_batches=data.get("total_mini_batches"),
                   failure=data.get("failure"), shard=data.get("shard"), shard_count=data.get("shard_count"))
