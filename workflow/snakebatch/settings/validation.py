"""What the config schema cannot check: values this version cannot run, named by their key.

The JSON schema (``workflow/schemas/config.schema.yaml``) checks types and ranges and fills the
defaults; ``describe_validation_error`` turns its first complaint into one line naming the key.
``check_supported`` refuses what passes the schema but cannot run here (NaN numbers, unknown URL
protocols, secrets in storage options, tabular-only keys on a file dataset); ``check_arguments``
refuses ParallelRunStep's reserved entry-script arguments. Each raises ConfigError naming the key.
"""

from __future__ import annotations

import math

from snakebatch.errors import ConfigError
from snakebatch.storage.locations import is_local, secret_option

URL_SCHEMES = ("az://", "abfs://", "abfss://", "s3://", "gs://", "gcs://", "http://", "https://")


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


def _only_for_tabular(key: str, value) -> ConfigError:
    return ConfigError(f"config key {key!r}: {value!r} applies to tabular input only "
                       "(set input.type: tabular, or remove the key)")


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


def check_supported(config: dict) -> None:
    """Raise ConfigError naming the key for a value of ``config`` (schema-validated, defaults
    filled) that this version cannot run (see module doc)."""
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
