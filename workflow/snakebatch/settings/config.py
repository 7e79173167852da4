"""Derive the settings each stage needs from a validated config dict.

The JSON schema (``workflow/schemas/config.schema.yaml``) checks types, ranges and fills defaults;
this module checks what a schema cannot (values this version does not support, sizes given as
strings) and splits the config into one small frozen spec per stage, so a change re-runs only the
stages it concerns (``append_row_file_name``: gather only; ``mini_batch_size``: partition on).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass

from snakebatch.errors import ConfigError
from snakebatch.storage.layout import RunLayout
from snakebatch.storage.locations import is_local, local_path, secret_option

URL_SCHEMES = ("az://", "abfs://", "abfss://", "s3://", "gs://", "gcs://", "http://", "https://")


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


def is_url(path: str) -> bool:
    """True for an fsspec URL such as ``az://container/x`` (anything with ``scheme://``)."""
    return "://" in path


def describe_validation_error(error) -> str:
    """One line for a ``jsonschema.ValidationError``: the dotted key and what is wrong with it,
    e.g. ``config key 'run_max_try': 0 is less than the minimum of 1``. For ``oneOf`` failures the
    most relevant alternative's message is used."""
    from jsonschema.exceptions import best_match

    if error.context:  # oneOf/anyOf: the branch whose type matched says what is wrong
        typed = [e for e in error.context if e.validator != "type"]
        error = typed[0] if typed else best_match(error.context)
    key = ".".join(str(part) for part in error.absolute_path)
    return f"config key {key!r}: {error.message}" if key else f"config: {error.message}"


def _not_supported(key: str, value, hint: str) -> ConfigError:
    return ConfigError(f"config key {key!r}: value {value!r} is not supported yet; {hint}")


def parse_mini_batch_size(value, input_type: str = "file") -> int:
    """Return ``mini_batch_size`` as a file count (``file``) or bytes (``tabular``).

    file: an int >= 1 or a string of digits (the seed passes ``"5"``); None means 10
    (ParallelRunStep's default for FileDataset). tabular: bytes as an int or ``"64KB"``, ``"1MB"``,
    ``"1GB"`` (1024-based); None means 1MB (see ``tabular.parse_byte_size``). Raises ConfigError
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


def _only_for_tabular(key: str, value) -> ConfigError:
    return ConfigError(f"config key {key!r}: {value!r} applies to tabular input only "
                       "(set input.type: tabular, or remove the key)")


LOCAL_ONLY = "this version reads local paths and file:// URLs only"


def check_url(key: str, location: str) -> None:
    """Raise ConfigError naming ``key`` when ``location`` is a URL of a protocol fsspec does not
    know, or whose fsspec implementation (adlfs, s3fs, gcsfs, aiohttp) is not installed."""
    if is_local(location):
        return
    import importlib

    from fsspec.registry import known_implementations, registry

    protocol = location.split("://", 1)[0].lower()
    if protocol not in known_implementations and protocol not in registry:
        raise ConfigError(f"config key {key!r}: {location!r} has the unknown protocol {protocol!r}; "
                          f"use a local path or an fsspec URL ({', '.join(URL_SCHEMES)})")
    if protocol in registry:
        return
    module = known_implementations[protocol]["class"].rsplit(".", 1)[0]
    try:
        importlib.import_module(module)
    except ImportError:
        hint = known_implementations[protocol].get("err") or f"install {module.split('.')[0]}"
        raise ConfigError(f"config key {key!r}: {location!r} needs the package for {protocol}:// ({hint}; "
                          "pip install -e '.[storage]' installs adlfs and s3fs)") from None


def check_storage_options(options: dict) -> None:
    """Raise ConfigError naming the key when ``input.storage_options`` holds something that looks
    like a secret (``account_key``, ``sas_token``, ``secret``, ...): the options travel on the
    shell command lines Snakemake records, so credentials must come from the environment."""
    found = secret_option(options or {})
    if found:
        key, hint = found
        raise ConfigError(f"config key 'input.storage_options.{key}': looks like a secret, and storage_options "
                          f"are recorded in plain text (job commands, .snakemake/); {hint}")


# Number keys whose range the schema states: NaN passes every JSON-schema bound (each comparison
# with it is false), so a NaN from YAML (``.nan``) or ``--config key=nan`` is refused here.
NUMBER_KEYS = ("run_invocation_timeout", "init_timeout", "allowed_failed_percent")


def check_numbers(config: dict) -> None:
    """Raise ConfigError naming the key when a number key of ``config`` (``NUMBER_KEYS``) is NaN."""
    for key in NUMBER_KEYS:
        value = config.get(key)
        if isinstance(value, float) and math.isnan(value):
            raise ConfigError(f"config key {key!r}: nan is not a number (give a finite value)")


def _check_supported(config: dict) -> None:
    check_numbers(config)
    inp = config["input"]
    paths = inp["path"] if isinstance(inp["path"], list) else [inp["path"]]
    for path in paths:
        check_url("input.path", path)
    check_storage_options(inp.get("storage_options") or {})
    if config.get("output_uri"):
        check_url("output_uri", config["output_uri"])
    if inp["type"] == "file":
        if inp.get("format") is not None:
            raise _only_for_tabular("input.format", inp["format"])
        if inp.get("read_options"):
            raise _only_for_tabular("input.read_options", inp["read_options"])
        if inp.get("partition_format"):
            from snakebatch.kinds.files.partition_format import PartitionFormat

            PartitionFormat.parse(inp["partition_format"]).check_keys(config["partition_keys"])
        elif config["partition_keys"]:
            raise ConfigError(f"config key 'partition_keys': {list(config['partition_keys'])!r} on a file dataset "
                              "needs input.partition_format, whose {name} fields name the keys (ParallelRunStep's "
                              "partition per folder)")
    elif inp.get("partition_format"):
        raise ConfigError(f"config key 'input.partition_format': {inp['partition_format']!r} is for file datasets "
                          "(input.type: file); a tabular dataset partitions by its columns (partition_keys)")
    for key in ("side_inputs", "models"):
        for name, path in config[key].items():
            check_url(f"{key}.{name}", path)


# ParallelRunStep's own settings: an entry-script argument with one of these names is rejected, as
# ParallelRunStep does, because the value belongs in the config (the key in the second column).
RESERVED_ARGUMENTS = {
    "--mini_batch_size": "mini_batch_size", "--error_threshold": "error_threshold",
    "--allowed_failed_count": "allowed_failed_count", "--allowed_failed_percent": "allowed_failed_percent",
    "--output_action": "output_action", "--append_row_file_name": "append_row_file_name",
    "--logging_level": "logging_level", "--run_invocation_timeout": "run_invocation_timeout",
    "--run_max_try": "run_max_try", "--process_count_per_node": "process_count_per_node",
    "--node_count": "node_count", "--partition_keys": "partition_keys", "--entry_script": "entry_script",
    "--scoring_module_name": "entry_script", "--output": "append_row_file_name",
    "--client_sdk_version": None,
}
# ParallelRunStep's tuning arguments: accepted in ``arguments`` (and left in sys.argv) so a
# migrated config runs; they tune ParallelRunStep's agents, which snakebatch has not.
PRS_TUNING_ARGUMENTS = (
    "--task_overhead_timeout", "--progress_update_timeout", "--first_task_creation_timeout",
    "--resource_monitor_interval", "--copy_logs_to_parent", "--metrics_name_prefix",
    "--push_metrics_to_parent", "--append_row_dataframe_header",
)


def check_arguments(arguments: list[str]) -> tuple[bool | None, list[str]]:
    """Check the entry script's ``arguments`` like ParallelRunStep does.

    Returns (append_row_dataframe_header given as ``--append_row_dataframe_header X`` or None,
    warnings for tuning arguments snakebatch ignores). Raises ConfigError naming a reserved
    argument (``--mini_batch_size`` ...) and the config key to set instead."""
    header, warnings = None, []
    for position, argument in enumerate(arguments):
        name = argument.split("=", 1)[0]
        if name in RESERVED_ARGUMENTS:
            key = RESERVED_ARGUMENTS[name]
            instead = f"set the config key {key!r} instead" if key else "snakebatch sets it itself"
            raise ConfigError(f"config key 'arguments': {name!r} is reserved by ParallelRunStep for its own "
                              f"setting; {instead} (arguments are for the entry script's own options)")
        if name in PRS_TUNING_ARGUMENTS:
            following = arguments[position + 1] if position + 1 < len(arguments) else None
            value = argument.split("=", 1)[1] if "=" in argument else (
                following if following is not None and not following.startswith("--") else "true")
            if name == "--append_row_dataframe_header":
                header = str(value).strip().lower() in ("true", "1", "yes")
            else:
                warnings.append(f"arguments: {name} tunes ParallelRunStep's agents; snakebatch has none and "
                                "ignores it (it stays in the entry script's sys.argv)")
    return header, warnings


def resolve_entry_script(entry_script: str, source_directory: str | None) -> tuple[str, str]:
    """Return (entry script path, source directory), both relative to the working directory or
    absolute. ParallelRunStep: the script is relative to ``source_directory`` when that is set;
    otherwise the source directory is the script's own folder."""
    if source_directory:
        script = entry_script if os.path.isabs(entry_script) else os.path.join(source_directory, entry_script)
        return os.path.normpath(script), os.path.normpath(source_directory)
    return os.path.normpath(entry_script), os.path.dirname(os.path.normpath(entry_script)) or "."


def plan_run(config: dict, cores: int | None) -> RunPlan:
    """Build the RunPlan of a schema-validated config (defaults already filled).

    ``cores`` is what ``process_count_per_node: auto`` stands for: resolved once, in the main
    snakemake process (see snakebatch.settings.plan).
    Raises ConfigError naming the key for values the schema accepts but this version cannot run.
    """
    _check_supported(config)
    arguments = [str(a) for a in config["arguments"]]
    header_argument, argument_warnings = check_arguments(arguments)
    dataframe_header = bool(config.get("append_row_dataframe_header", False)) or bool(header_argument)
    inp = config["input"]
    # file:// URLs become plain local paths here, so every stage sees (and names items by) the path
    paths = tuple(local_path(p) if is_local(p) else p
                  for p in (inp["path"] if isinstance(inp["path"], list) else [inp["path"]]))
    storage_options = dict(inp.get("storage_options") or {})
    run_name = config["run_name"]
    shards = shard_count(config, cores)
    script, source_dir = resolve_entry_script(config["entry_script"], config["source_directory"])
    partition = PartitionSpec(
        run_name=run_name,
        paths=paths,
        pattern=inp["pattern"],
        mini_batch_size=parse_mini_batch_size(config["mini_batch_size"], inp["type"]),
        shard_count=shards,
        input_type=inp["type"],
        format=inp.get("format"),
        read_options=dict(inp.get("read_options") or {}),
        partition_keys=tuple(config["partition_keys"]),
        storage_options=storage_options,
        partition_format=inp.get("partition_format") or None,
    )
    runner = RunnerSpec(
        run_name=run_name,
        entry_script=script,
        source_directory=source_dir,
        arguments=tuple(arguments),
        environment_variables={k: str(v) for k, v in sorted(config["environment_variables"].items())},
        models={k: local_path(v) if is_local(v) else v for k, v in sorted(config["models"].items())},
        side_inputs={k: local_path(v) if is_local(v) else v for k, v in sorted(config["side_inputs"].items())},
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
        storage_options=storage_options,
        prefetch_bytes=parse_prefetch_bytes(inp.get("prefetch_bytes", "256MB")),
        reuse_items=bool(config["reuse_items"]),
        balance_shards=bool(config["balance_shards"]),
    )
    gather = GatherSpec(
        run_name=run_name,
        output_action=config["output_action"],
        append_row_file_name=config["append_row_file_name"],
        append_row_format=config["append_row_format"],
        error_threshold=int(config["error_threshold"]),
        allowed_failed_count=config["allowed_failed_count"],
        allowed_failed_percent=config["allowed_failed_percent"],
        append_row_dataframe_header=dataframe_header,
        output_uri=config.get("output_uri") or None,
        storage_options=storage_options if config.get("output_uri") else {},
    )
    warnings = list(argument_warnings)
    if config["partition_keys"] and config["mini_batch_size"] is not None:
        warnings.append(f"partition_keys and mini_batch_size are both set; the keys win: one mini-batch per "
                        f"value of {', '.join(config['partition_keys'])} (mini_batch_size "
                        f"{config['mini_batch_size']!r} is ignored)")
    return RunPlan(
        warnings=tuple(warnings),
        run_name=run_name,
        run_dir=RunLayout.for_run(run_name).root,
        shard_count=shards,
        partition=partition,
        runner=runner,
        gather=gather,
    )
