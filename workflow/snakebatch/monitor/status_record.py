"""The status of a run as a typed record: what ``snakebatch status`` prints, and ``--json`` as is.

``RunStatus`` (with one ``ShardStatus`` per reporting shard, ``ErrorCount`` and ``FirstFailure``
lists) is made by ``snakebatch.monitor.status.run_status``; ``to_json`` is the ``--json`` output
(field names and order: README "Watch a run"), ``from_json`` reads it back.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorCount:
    """One of the run's most frequent error messages (the first line of each failed item's
    error) and the items that failed with it."""

    message: str
    count: int


@dataclass(frozen=True)
class FirstFailure:
    """The first failure of ``shard`` (``"item: error"``), or the first line of the error of a
    shard whose entry script did not start; ``shard`` None when the summary names none."""

    shard: int | None
    failure: str


@dataclass(frozen=True)
class ShardStatus:
    """One shard of the status: ``state`` (running, done, stopped, failed, interrupted, or lost:
    its runner process is gone without a last word), ``stalled`` (running with no finished
    mini-batch for longer than its run_invocation_timeout + the stall margin), counts
    ``done_mini_batches`` of ``shard_mini_batches``, ``done_items`` of ``shard_items``,
    ``failed_items``; ``host`` and ``pid`` of its runner; ``quiet_s`` seconds since its last
    finished mini-batch; the mini-batch in run() now: ``running_mini_batch``,
    ``running_items`` (items of that call), ``running_s`` (seconds since it started; None, 0,
    None when none); ``stolen_mini_batches`` and ``stolen_items`` (computed for busy shards,
    in its counts) and ``adopted_mini_batches`` (its own that another shard job computed and
    counts: ``balance_shards``)."""

    shard: int
    state: str
    stalled: bool
    done_mini_batches: int
    shard_mini_batches: int
    done_items: int
    shard_items: int
    failed_items: int
    host: str
    pid: int
    quiet_s: float
    running_mini_batch: int | None
    running_items: int
    running_s: float | None
    stolen_mini_batches: int
    stolen_items: int
    adopted_mini_batches: int


@dataclass(frozen=True)
class RunStatus:
    """The status of the run in ``run_dir`` (``results/{run_name}``) at one moment.

    ``run_name``, ``invocation`` (plan.json's id), ``state`` (``waiting``: no shard has
    reported; ``running``: a shard runs; ``incomplete``: none runs and gather has not written a
    verdict in this invocation - it was killed, or shards still queue; else gather's or the
    console's verdict: ``succeeded``, ``failed``, ``interrupted``), ``shard_count``,
    ``shards_reporting``; counts ``done_mini_batches``, ``total_mini_batches``,
    ``reused_mini_batches``, ``done_items``, ``total_items``, ``succeeded_items``,
    ``failed_items``, ``percent`` (of mini-batches); ``reused_items`` (done items of reused
    mini-batches) and ``computed_items`` (the other done items); ``running_mini_batches`` and
    ``running_items`` (mini-batches in a run() call now, and their items); ``started_at``,
    ``updated_at`` (epoch seconds of the first shard start and the newest record, None without
    records), ``elapsed_s`` (to now while running, else to the newest record), ``items_per_s``
    (computed items over elapsed: reused mini-batches take no time), ``eta_s`` (None when
    unknown or not running), ``finished`` (the state is neither running nor waiting);
    ``stall_after_s`` (the margin added to each shard's run_invocation_timeout) and
    ``stalled_shards`` (shard numbers); ``shards``: one ShardStatus per reporting shard (a lost
    shard's counts are those of its durable results in the mini-batch store when they are
    more); ``top_errors``: up to 10 ErrorCount by count (errors.jsonl once gathered, else the
    shards' records, each of which keeps its 5 most frequent); ``first_failures``: the shards'
    first failed items (in shard order), and for each shard whose entry script did not start
    (summary.json's ``start_failures``) the first line of its error; ``error``: the cause in
    summary.json of this invocation (a failed run: the start failures with their traceback, a
    failed shard job, ...), None otherwise. Seconds and percent are rounded to 3 decimals."""

    run_dir: str
    run_name: str
    invocation: str
    state: str
    shard_count: int
    shards_reporting: int
    done_mini_batches: int
    total_mini_batches: int
    reused_mini_batches: int
    reused_items: int
    computed_items: int
    running_mini_batches: int
    running_items: int
    done_items: int
    total_items: int
    succeeded_items: int
    failed_items: int
    percent: float
    started_at: float | None
    updated_at: float | None
    elapsed_s: float
    items_per_s: float
    eta_s: float | None
    finished: bool
    stall_after_s: float
    stalled_shards: tuple[int, ...]
    shards: tuple[ShardStatus, ...]
    top_errors: tuple[ErrorCount, ...]
    first_failures: tuple[FirstFailure, ...]
    error: str | None

    def to_dict(self) -> dict:
        """The status as JSON-ready fields in the order above (lists for the tuples, a dict per
        shard, error count and first failure)."""
        data = dataclasses.asdict(self)
        return {key: list(value) if isinstance(value, tuple) else value for key, value in data.items()}

    @classmethod
    def from_dict(cls, data: dict) -> RunStatus:
        """The status of ``to_dict``'s fields. Raises KeyError or TypeError for a dict that
        lacks or mistypes one."""
        return cls(**{**data, "stalled_shards": tuple(data["stalled_shards"]),
                      "shards": tuple(ShardStatus(**s) for s in data["shards"]),
                      "top_errors": tuple(ErrorCount(**e) for e in data["top_errors"]),
                      "first_failures": tuple(FirstFailure(**f) for f in data["first_failures"])})

    def to_json(self) -> str:
        """The ``snakebatch status --json`` text: one JSON object, indented by 2."""
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> RunStatus:
        """The status of ``to_json``'s text. Raises ValueError (not JSON), KeyError or TypeError
        (not a status)."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise TypeError(f"a run status is a JSON object, not {type(data).__name__}")
        return cls.from_dict(data)
