"""Derive the settings each stage needs from a validated config dict.

The JSON schema (``workflow/schemas/config.schema.yaml``) checks types, ranges and fills defaults;
snakebatch.settings.validation checks what a schema cannot (values this version does not support);
this module reads sizes given as strings and splits the config into one small frozen spec per stage
(snakebatch.settings.specs), so a change re-runs only the stages it concerns
(``append_row_file_name``: gather only; ``mini_batch_size``: partition on).

The specs and ``describe_validation_error`` are importable from here too, under their old names.
"""

from __future__ import annotations

import os

from snakebatch.errors import ConfigError
from snakebatch.settings.specs import GatherSpec, PartitionSpec, RunnerSpec, RunPlan
from snakebatch.settings.validation import (URL_SCHEMES, check_arguments, check_storage_options, check_supported,
                                            check_url, describe_validation_error)
from snakebatch.storage.layout import RunLayout
from snakebatch.storage.locations import is_local, local_path

__all__ = [
    "ConfigError", "GatherSpec", "PartitionSpec", "RunnerSpec", "RunPlan", "URL_SCHEMES", "MAX_SHARDS",
    "check_arguments", "check_storage_options", "check_url", "describe_validation_error",
    "parse_mini_batch_size", "parse_prefetch_bytes", "plan_run", "resolve_entry_script", "shard_count",
]


def parse_mini_batch_size(value, input_type: str = "file") -> int:
    """Return ``mini_batch_size`` as a file count (``file``) or bytes (``tabular``).

    file: an int >= 1 or a string of digits (the seed passes ``"5"``); None means 10
    (ParallelRunStep's default for FileDataset). tabular: bytes as an int or ``"64KB"``, ``"1MB"``,
    ``"1GB"`` (1024-based); None means 1MB (see ``kinds.tables.formats.parse_byte_size``). Raises ConfigError
    naming the key otherwise.
    """
    if input_type == "tabular":
        from snakebatch.kinds.tables.formats import parse_byte_size

        try:
            return parse_byte_size(value)
        except ValueError as exc:
            raise ConfigError(f"config key 'mini_batch_size': {exc}") from None
    if value is None:
        return 10
    if isinstance(value, bool):
        raise ConfigError(f"config key 'mini_batch_size': {value!r} is not a file count")
    if isinstance(value, str):
        text = value.strip()
        if not text.isdigit():
            raise ConfigError(
                f"config key 'mini_batch_size': {value!r} is not a file count; for input.type 'file' "
                "it is a whole number of files such as 5 (byte sizes like '1MB' are for tabular input)"
            )
        value = int(text)
    if value < 1:
        raise ConfigError(f"config key 'mini_batch_size': {value!r} must be at least 1")
    return int(value)


def parse_prefetch_bytes(value) -> int:
    """``input.prefetch_bytes`` in bytes: an int >= 0 or ``"256MB"`` (1024-based). Raises
    ConfigError naming the key."""
    from snakebatch.kinds.tables.formats import parse_byte_size

    if value in (0, "0"):
        return 0
    try:
        return parse_byte_size(value)
    except ValueError as exc:
        raise ConfigError(f"config key 'input.prefetch_bytes': {exc}") from None


MAX_SHARDS = 10_000  # shard jobs (workers) of one run; each has its manifest, job and log files


def shard_count(config: dict, cores: int | None) -> int:
    """node_count x process_count_per_node; ``auto`` = ``cores`` (snakemake's --cores, at least 1).
    Raises ConfigError naming both keys when the product exceeds MAX_SHARDS."""
    per_node = config["process_count_per_node"]
    if per_node == "auto":
        per_node = max(1, int(cores or 1))
    shards = int(config["node_count"]) * int(per_node)
    if shards > MAX_SHARDS:
        raise ConfigError(f"config keys 'node_count' x 'process_count_per_node': {config['node_count']} x {per_node} = "
                          f"{shards} workers; at most {MAX_SHARDS} (one shard job and one manifest each)")
    return shards


def resolve_entry_script(entry_script: str, source_directory: str | None) -> tuple[str, str]:
    """Return (entry script path, source directory), both relative to the working directory or
    absolute. ParallelRunStep: the script is relative to ``source_directory`` when that is set;
    otherwise the source directory is the script's own folder."""
    if source_directory:
        script = entry_script if os.path.isabs(entry_script) else os.path.join(source_directory, entry_script)
        return os.path.normpath(script), os.path.normpath(source_directory)
    return os.path.normpath(entry_script), os.path.dirname(os.path.normpath(entry_script)) or "."



def _config_paths(config: dict) -> tuple[str, ...]:
    """``input.path`` as a tuple; file:// URLs become plain local paths here, so every stage sees
    (and names items by) the path."""
    given = config["input"]["path"]
    return tuple(local_path(p) if is_local(p) else p for p in (given if isinstance(given, list) else [given]))


def _local(paths: dict) -> dict:
    """``paths`` (name -> location) sorted by name, file:// URLs as local paths."""
    return {k: local_path(v) if is_local(v) else v for k, v in sorted(paths.items())}


def partition_spec(config: dict, shards: int) -> PartitionSpec:
    """The partition's spec of a checked config, for ``shards`` shards."""
    inp = config["input"]
    return PartitionSpec(
        run_name=config["run_name"],
        paths=_config_paths(config),
        pattern=inp["pattern"],
        mini_batch_size=parse_mini_batch_size(config["mini_batch_size"], inp["type"]),
        shard_count=shards,
        input_type=inp["type"],
        format=inp.get("format"),
        read_options=dict(inp.get("read_options") or {}),
        partition_keys=tuple(config["partition_keys"]),
        storage_options=dict(inp.get("storage_options") or {}),
        partition_format=inp.get("partition_format") or None,
    )


def runner_spec(config: dict, arguments: list[str], dataframe_header: bool) -> RunnerSpec:
    """The shard jobs' spec of a checked config: ``arguments`` as strings, ``dataframe_header``
    from the key or the ``--append_row_dataframe_header`` argument."""
    inp = config["input"]
    script, source_dir = resolve_entry_script(config["entry_script"], config["source_directory"])
    return RunnerSpec(
        run_name=config["run_name"],
        entry_script=script,
        source_directory=source_dir,
        arguments=tuple(arguments),
        environment_variables={k: str(v) for k, v in sorted(config["environment_variables"].items())},
        models=_local(config["models"]),
        side_inputs=_local(config["side_inputs"]),
        output_action=config["output_action"],
        append_row_format=config["append_row_format"],
        run_invocation_timeout=float(config["run_invocation_timeout"]),
        run_max_try=int(config["run_max_try"]),
        logging_level=config["logging_level"],
        allow_reuse=bool(config["allow_reuse"]),
        error_threshold=int(config["error_threshold"]),
        allowed_failed_count=config["allowed_failed_count"],
        allowed_failed_percent=config["allowed_failed_percent"],
        input_type=inp["type"],
        read_options=dict(inp.get("read_options") or {}),
        append_row_dataframe_header=dataframe_header,
        init_timeout=float(config["init_timeout"]),
        threads_per_process=int(config["threads_per_process"]),
        gpus_per_process=int(config["gpus_per_process"]),
        storage_options=dict(inp.get("storage_options") or {}),
        prefetch_bytes=parse_prefetch_bytes(inp.get("prefetch_bytes", "256MB")),
        reuse_items=bool(config["reuse_items"]),
        balance_shards=bool(config["balance_shards"]),
    )


def gather_spec(config: dict, dataframe_header: bool) -> GatherSpec:
    """The gather's spec of a checked config (storage options only with an ``output_uri``)."""
    output_uri = config.get("output_uri") or None
    return GatherSpec(
        run_name=config["run_name"],
        output_action=config["output_action"],
        append_row_file_name=config["append_row_file_name"],
        append_row_format=config["append_row_format"],
        error_threshold=int(config["error_threshold"]),
        allowed_failed_count=config["allowed_failed_count"],
        allowed_failed_percent=config["allowed_failed_percent"],
        append_row_dataframe_header=dataframe_header,
        output_uri=output_uri,
        storage_options=dict(config["input"].get("storage_options") or {}) if output_uri else {},
    )


def plan_run(config: dict, cores: int | None) -> RunPlan:
    """Build the RunPlan of a schema-validated config (defaults already filled).

    ``cores`` is what ``process_count_per_node: auto`` stands for: resolved once, in the main
    snakemake process (see snakebatch.settings.plan).
    Raises ConfigError naming the key for values the schema accepts but this version cannot run.
    """
    check_supported(config)
    arguments = [str(a) for a in config["arguments"]]
    header_argument, warnings = check_arguments(arguments)
    dataframe_header = bool(config.get("append_row_dataframe_header", False)) or bool(header_argument)
    shards = shard_count(config, cores)
    if config["partition_keys"] and config["mini_batch_size"] is not None:
        warnings.append(f"partition_keys and mini_batch_size are both set; the keys win: one mini-batch per "
                        f"value of {', '.join(config['partition_keys'])} (mini_batch_size "
                        f"{config['mini_batch_size']!r} is ignored)")
    return RunPlan(
        warnings=tuple(warnings),
        run_name=config["run_name"],
        run_dir=RunLayout.for_run(config["run_name"]).root,
        shard_count=shards,
        partition=partition_spec(config, shards),
        runner=runner_spec(config, arguments, dataframe_header),
        gather=gather_spec(config, dataframe_header),
    )
