"""The run's verdict ``results/{run}/summary.json``: ``RunSummary``, built here and only here.

Three writers share it: gather (``RunSummary.of_gather`` when it read every shard result;
``RunSummary.failed_run`` when it could not), the main snakemake process when no stage wrote a verdict
(``RunSummary.failed_run`` with status ``failed`` or ``interrupted``) and ``gather.lifecycle`` when a
newer run starts (``stale``). The live view, the status command and the HTML report read it with
``read_summary``.

The file is ``to_json()`` plus a newline: a JSON object indented by 2, its keys in this order,
each present only when set (a summary read from an older or partial file keeps what it had, keys
it does not know after the known ones)::

    run_name status error items succeeded failed mini_batches failed_mini_batches
    reused_mini_batches thresholds threshold_breaches stopped_early output_action output
    computed_items reused_items compute_s wall_s items_per_s finished_at output_uri
    start_failures note
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass

from snakebatch.errors import ManifestError
from snakebatch.storage.atomic import write_text_atomic

STALE_NOTE = "a newer run started; this summary describes the run before it"


class _Absent:
    """The value of a summary field the file does not have (falsy; not written)."""

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = _Absent()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


@dataclass(frozen=True)
class Thresholds:
    """The error thresholds a run was checked against (``settings.config.GatherSpec``'s):
    ``error_threshold`` (failed items; -1: not checked), ``allowed_failed_count`` (failed
    mini-batches) and ``allowed_failed_percent`` (percent of all mini-batches), None: not checked."""

    error_threshold: int
    allowed_failed_count: int | None
    allowed_failed_percent: float | None

    @classmethod
    def of(cls, spec) -> Thresholds:
        """The thresholds of ``spec`` (a GatherSpec)."""
        return cls(spec.error_threshold, spec.allowed_failed_count, spec.allowed_failed_percent)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Thresholds:
        return cls(data.get("error_threshold", -1), data.get("allowed_failed_count"), data.get("allowed_failed_percent"))


@dataclass(frozen=True)
class StartFailure:
    """A shard whose entry script could not start: its number and the error's first line."""

    shard: int
    error: str

    def to_dict(self) -> dict:
        return {"shard": self.shard, "error": self.error}

    @classmethod
    def from_dict(cls, data: dict) -> StartFailure:
        return cls(data["shard"], data["error"])


@dataclass(frozen=True)
class RunTiming:
    """The times of the mini-batches computed in this run (reused ones ran earlier):
    ``computed_items`` and ``reused_items`` (items of computed and of reused mini-batches),
    ``compute_s`` (seconds in their run() calls, summed), ``wall_s`` (first start to last end)
    and ``items_per_s`` (computed items over ``wall_s``; None when nothing was computed)."""

    computed_items: int
    reused_items: int
    compute_s: float
    wall_s: float
    items_per_s: float | None


@dataclass(frozen=True)
class RunSummary:
    """``summary.json`` (see the module doc for the file). ``status``: ``succeeded``,
    ``failed``, ``interrupted`` or ``stale``; ``output``: the merged file (None when the run
    failed or has none); ``error``: why a run failed before its counts were known. A field the
    file does not have is ``ABSENT`` (falsy); ``get`` reads a field like ``dict.get``. ``extra``:
    keys this class does not know, as ``(key, value)`` pairs, kept as read."""

    run_name: str = ABSENT
    status: str = ABSENT
    error: str = ABSENT
    items: int = ABSENT
    succeeded: int = ABSENT
    failed: int = ABSENT
    mini_batches: int = ABSENT
    failed_mini_batches: int = ABSENT
    reused_mini_batches: int = ABSENT
    thresholds: Thresholds = ABSENT
    threshold_breaches: tuple[str, ...] = ABSENT
    stopped_early: bool = ABSENT
    output_action: str = ABSENT
    output: str | None = ABSENT
    computed_items: int = ABSENT
    reused_items: int = ABSENT
    compute_s: float = ABSENT
    wall_s: float = ABSENT
    items_per_s: float | None = ABSENT
    finished_at: str = ABSENT
    output_uri: str = ABSENT
    start_failures: tuple[StartFailure, ...] = ABSENT
    note: str = ABSENT
    extra: tuple[tuple[str, object], ...] = ()

    # ------------------------------------------------------------------------------ builders
    @classmethod
    def of_gather(cls, spec, tally, breaches: list[str], stopped_early: bool, merged: str | None,
                  timing: RunTiming) -> RunSummary:
        """The verdict of a gather that read every shard result: ``spec`` (GatherSpec), ``tally``
        (``thresholds.Tally`` of the run), ``breaches`` (thresholds exceeded; status ``failed``
        when any, and no ``output`` nor ``output_uri``), ``merged`` (the merged file's path, None for summary_only), ``timing``."""
        return cls(
            run_name=spec.run_name, status="failed" if breaches else "succeeded",
            items=tally.items, succeeded=tally.succeeded, failed=tally.failed, mini_batches=tally.mini_batches,
            failed_mini_batches=tally.failed_mini_batches, reused_mini_batches=tally.reused_mini_batches,
            thresholds=Thresholds.of(spec), threshold_breaches=tuple(breaches), stopped_early=stopped_early,
            output_action=spec.output_action, output=merged if not breaches else None,
            **dataclasses.asdict(timing), finished_at=_now(),
            output_uri=spec.output_uri if spec.output_uri and not breaches else ABSENT)

    @classmethod
    def failed_run(cls, run_name: str, error: str, status: str = "failed",
                   start_failures: tuple[StartFailure, ...] = ()) -> RunSummary:
        """A run that failed (or was ``interrupted``) before its counts were known: ``error``
        says why, in full; ``start_failures`` names the shards whose entry script could not start."""
        return cls(run_name=run_name, status=status, error=error, output=None, finished_at=_now(),
                   start_failures=tuple(start_failures) or ABSENT)

    def stale(self) -> RunSummary:
        """This summary marked ``stale``: a newer run started."""
        return dataclasses.replace(self, status="stale", note=STALE_NOTE)

    # --------------------------------------------------------------------------------- access
    def get(self, name: str, default=None):
        """The field (or extra key) ``name``; ``default`` when the summary does not have it."""
        if name in _FIELDS:
            value = getattr(self, name)
            return default if value is ABSENT else value
        return dict(self.extra).get(name, default)

    def to_dict(self) -> dict:
        """The JSON object: the fields that are set, in order, then ``extra``."""
        out = {}
        for name in _FIELDS:
            value = getattr(self, name)
            if value is ABSENT:
                continue
            if name == "note":
                out.update(self.extra)
            if isinstance(value, Thresholds):
                value = value.to_dict()
            elif isinstance(value, tuple):
                value = [v.to_dict() if isinstance(v, StartFailure) else v for v in value]
            out[name] = value
        if self.note is ABSENT:
            out.update(self.extra)
        return out

    def to_json(self) -> str:
        """The JSON text of ``summary.json`` (indented by 2, no final newline)."""
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict) -> RunSummary:
        values, extra = {}, []
        for key, value in data.items():
            if key not in _FIELDS:
                extra.append((key, value))
            elif key == "thresholds" and isinstance(value, dict):
                values[key] = Thresholds.from_dict(value)
            elif key == "start_failures" and isinstance(value, list):
                values[key] = tuple(StartFailure.from_dict(v) if isinstance(v, dict) else v for v in value)
            elif key == "threshold_breaches" and isinstance(value, list):
                values[key] = tuple(value)
            else:
                values[key] = value
        return cls(**values, extra=tuple(extra))

    @classmethod
    def from_json(cls, text: str) -> RunSummary:
        """The summary in ``text``; ValueError when it is not a JSON object."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"not a JSON object but {type(data).__name__}")
        return cls.from_dict(data)


_FIELDS = tuple(f.name for f in dataclasses.fields(RunSummary) if f.name != "extra")


def read_summary(path: str) -> RunSummary:
    """The summary in ``path`` (``summary.json``). Raises ManifestError naming the file when it
    is missing ("no run finished here") or not a JSON object."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise ManifestError(f"the summary {path!r} does not exist: no run finished here") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"the summary {path!r} cannot be read: {exc}") from None
    try:
        return RunSummary.from_json(text)
    except ValueError as exc:
        raise ManifestError(f"the summary {path!r} is corrupt: {exc}") from None


def write_summary(path: str, summary: RunSummary) -> None:
    """Write ``summary`` to ``path`` atomically (``to_json()`` and a newline)."""
    write_text_atomic(path, summary.to_json() + "\n")
