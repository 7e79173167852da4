"""The frozen specs of one run: what each stage needs, split from the config (snakebatch.settings.config).

Each stage's spec is serialised once per invocation (``to_json``: sorted keys, stable text) and its
sha256 is a param of the stage's jobs, so a changed spec reruns them and an unchanged config keeps
its digests (tests/settings/test_specs.py pins some). A job reads its spec back with ``from_json``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

from snakebatch.storage.layout import RunLayout


def _json_spec(cls):
    """Give a frozen dataclass ``to_json()`` and ``from_json(text)`` (sorted keys, stable text)."""

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(klass, text: str):
        data = json.loads(text)
        for f in dataclasses.fields(klass):
            if f.name in data and isinstance(data[f.name], list):
                data[f.name] = tuple(data[f.name])
        return klass(**data)

    cls.to_json = to_json
    cls.from_json = from_json
    return cls


@_json_spec
@dataclass(frozen=True)
class PartitionSpec:
    """What the partition stage needs.

    paths: dataset roots as given (folders, globs, files), relative to the working directory.
    pattern: file-name glob filter or None. mini_batch_size: files per mini-batch (``file``) or
    bytes (``tabular``), >= 1. shard_count: number of shard manifests (= workers = infer jobs),
    >= 1. input_type: ``file`` or ``tabular``; format (None = from each file's extension),
    read_options: tabular only. partition_keys: tabular columns, or (file) fields of
    partition_format, ParallelRunStep's ``Dataset.File.from_files(partition_format=...)``.
    """

    run_name: str
    paths: tuple[str, ...]
    pattern: str | None
    mini_batch_size: int
    shard_count: int
    input_type: str = "file"
    format: str | None = None
    read_options: dict = dataclasses.field(default_factory=dict)
    partition_keys: tuple[str, ...] = ()
    storage_options: dict = dataclasses.field(default_factory=dict)
    partition_format: str | None = None


@_json_spec
@dataclass(frozen=True)
class RunnerSpec:
    """What one shard job (the runner and its worker) needs.

    Paths are as given in the config, relative to the working directory; ``entry_script`` is
    already joined with ``source_directory``. ``run_invocation_timeout`` and ``init_timeout`` are in
    seconds. The
    thresholds (as in GatherSpec) let shards stop early once the failures of this run exceed them.
    """

    run_name: str
    entry_script: str
    source_directory: str
    arguments: tuple[str, ...]
    environment_variables: dict
    models: dict
    side_inputs: dict
    output_action: str
    append_row_format: str
    run_invocation_timeout: float
    run_max_try: int
    logging_level: str
    allow_reuse: bool
    error_threshold: int = -1
    allowed_failed_count: int | None = None
    allowed_failed_percent: float | None = None
    input_type: str = "file"
    read_options: dict = dataclasses.field(default_factory=dict)
    append_row_dataframe_header: bool = False
    init_timeout: float = 600.0
    threads_per_process: int = 1
    gpus_per_process: int = 0
    storage_options: dict = dataclasses.field(default_factory=dict)
    prefetch_bytes: int = 256 * 1024 ** 2
    reuse_items: bool = True
    balance_shards: bool = True


@_json_spec
@dataclass(frozen=True)
class GatherSpec:
    """What the gather stage needs: output naming and the error thresholds (ParallelRunStep:
    error_threshold counts failed items, -1 = ignore; allowed_failed_count / _percent count failed
    mini-batches, None = unset)."""

    run_name: str
    output_action: str
    append_row_file_name: str
    append_row_format: str
    error_threshold: int
    allowed_failed_count: int | None
    allowed_failed_percent: float | None
    append_row_dataframe_header: bool = False
    output_uri: str | None = None
    storage_options: dict = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class RunPlan:
    """The whole run: where results go, how many shards, and one spec per stage."""

    run_name: str
    run_dir: str
    shard_count: int
    partition: PartitionSpec
    runner: RunnerSpec
    gather: GatherSpec
    warnings: tuple[str, ...] = ()

    @property
    def layout(self) -> RunLayout:
        """The paths of ``run_dir``."""
        return RunLayout(self.run_dir)

    @property
    def stages(self) -> tuple[tuple[str, PartitionSpec | RunnerSpec | GatherSpec], ...]:
        """(stage name, spec) of each stage: ``partition``, ``runner``, ``gather`` (the names of
        their spec files, RunLayout.stage_spec)."""
        return (("partition", self.partition), ("runner", self.runner), ("gather", self.gather))


def spec_digest(spec) -> str:
    """The sha256 (64 hex digits) of ``spec.to_json()``: a param of the stage's jobs, so a changed
    spec reruns them. Unchanged text, unchanged digest: stored results stay current."""
    return hashlib.sha256(spec.to_json().encode("utf-8")).hexdigest()
