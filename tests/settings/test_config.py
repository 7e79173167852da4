import pytest

from helpers import validated
from snakebatch.settings.config import (GatherSpec, PartitionSpec, RunnerSpec, parse_mini_batch_size, plan_run,
                               resolve_entry_script)
from snakebatch.errors import ConfigError

MINIMAL = {"input": {"path": "data"}, "entry_script": "score.py"}


def test_minimal_config_gets_every_default():
    config = validated(MINIMAL)
    assert config["run_name"] == "mnist"
    assert config["input"] == {"path": "data", "type": "file", "pattern": None, "format": None,
                               "read_options": {}, "storage_options": {}, "prefetch_bytes": "256MB",
                               "partition_format": None}
    assert config["mini_batch_size"] is None
    assert config["output_uri"] is None
    assert config["error_threshold"] == -1
    assert config["run_max_try"] == 3
    assert config["run_invocation_timeout"] == 60
    assert config["append_row_file_name"] == "parallel_run_step.txt"
    assert config["process_count_per_node"] == "auto"
    assert config["allow_reuse"] is True


def test_plan_of_minimal_config():
    plan = plan_run(validated(MINIMAL), cores=3)
    assert plan.shard_count == 3
    assert plan.run_dir == "results/mnist"
    assert plan.partition == PartitionSpec(run_name="mnist", paths=("data",), pattern=None,
                                           mini_batch_size=10, shard_count=3)
    assert plan.runner.entry_script == "score.py"
    assert plan.runner.source_directory == "."
    assert plan.gather.error_threshold == -1


def test_shard_count_is_nodes_times_processes():
    plan = plan_run(validated({**MINIMAL, "node_count": 2, "process_count_per_node": 3}), cores=8)
    assert plan.shard_count == 6


def test_specs_round_trip_through_json():
    plan = plan_run(validated({**MINIMAL, "arguments": ["--x", 1], "models": {"m": "model"}}), cores=1)
    for spec, cls in ((plan.partition, PartitionSpec), (plan.runner, RunnerSpec), (plan.gather, GatherSpec)):
        assert cls.from_json(spec.to_json()) == spec
    assert plan.runner.arguments == ("--x", "1")


@pytest.mark.parametrize("value,expected", [(None, 10), (5, 5), ("5", 5), (" 7 ", 7)])
def test_mini_batch_size_file_counts(value, expected):
    assert parse_mini_batch_size(value) == expected


@pytest.mark.parametrize("value,message", [
    ("1MB", "config key 'mini_batch_size': '1MB' is not a file count; for input.type 'file' it is a whole "
            "number of files such as 5 (byte sizes like '1MB' are for tabular input)"),
    (0, "config key 'mini_batch_size': 0 must be at least 1"),
    (True, "config key 'mini_batch_size': True is not a file count"),
])
def test_mini_batch_size_rejects(value, message):
    with pytest.raises(ConfigError) as info:
        parse_mini_batch_size(value)
    assert str(info.value) == message


@pytest.mark.parametrize("override,message", [
    ({"input": {"path": "nosuch://container/images"}},
     "config key 'input.path': 'nosuch://container/images' has the unknown protocol 'nosuch'; use a local path or an "
     "fsspec URL (az://, abfs://, abfss://, s3://, gs://, gcs://, http://, https://)"),
    ({"input": {"path": "az://c/images", "storage_options": {"account_name": "a", "account_key": "k"}}},
     "config key 'input.storage_options.account_key': looks like a secret, and storage_options are recorded in "
     "plain text (job commands, .snakemake/); set the environment variable AZURE_STORAGE_ACCOUNT_KEY instead"),
    ({"partition_keys": ["a"]},
     "config key 'partition_keys': ['a'] on a file dataset needs input.partition_format, whose {name} fields name "
     "the keys (ParallelRunStep's partition per folder)"),
    ({"input": {"path": "data", "partition_format": "{user}/{genres}.wav"}, "partition_keys": ["user", "season"]},
     "config key 'partition_keys': 'season' is not a field of input.partition_format '{user}/{genres}.wav' "
     "(fields: user, genres)"),
    ({"input": {"path": "data", "partition_format": "{user}/{user}.wav"}},
     "config key 'input.partition_format': field {user} appears twice in '{user}/{user}.wav'"),
    ({"input": {"path": "data", "partition_format": "{date:yyyy/MM/dd}/x.wav"}},
     "config key 'input.partition_format': field {date:yyyy/MM/dd} in '{date:yyyy/MM/dd}/x.wav': datetime fields "
     "(ParallelRunStep's {name:yyyy/MM/dd}) are not supported; use plain {name} fields"),
    ({"input": {"path": "data", "partition_format": "user/genres.wav"}},
     "config key 'input.partition_format': 'user/genres.wav' has no {name} field"),
    ({"input": {"path": "data", "partition_format": "{user/x.wav"}},
     "config key 'input.partition_format': unbalanced brace in '{user/x.wav'"),
    ({"input": {"path": "data", "type": "tabular", "partition_format": "{user}.csv"}},
     "config key 'input.partition_format': '{user}.csv' is for file datasets (input.type: file); a tabular "
     "dataset partitions by its columns (partition_keys)"),
    ({"input": {"path": "data", "format": "csv"}},
     "config key 'input.format': 'csv' applies to tabular input only (set input.type: tabular, or remove the key)"),
    ({"input": {"path": "data", "type": "tabular"}, "mini_batch_size": "1 MiB"},
     "config key 'mini_batch_size': '1 MiB' is not a byte size such as 1024, '64KB', '1MB' or '1GB'"),
    ({"input": {"path": "data", "type": "tabular"}, "mini_batch_size": 0},
     "config key 'mini_batch_size': 0 must be at least 1 byte"),
    ({"models": {"m": "nosuch://bucket/model"}},
     "config key 'models.m': 'nosuch://bucket/model' has the unknown protocol 'nosuch'; use a local path or an "
     "fsspec URL (az://, abfs://, abfss://, s3://, gs://, gcs://, http://, https://)"),
])
def test_accepted_but_unsupported_values_fail_with_the_key(override, message):
    with pytest.raises(ConfigError) as info:
        plan_run(validated({**MINIMAL, **override}), cores=1)
    assert str(info.value) == message


def test_object_store_urls_are_planned_as_given_with_their_storage_options():
    options = {"account_name": "devstoreaccount1"}
    plan = plan_run(validated({**MINIMAL, "input": {"path": ["az://sampledata/mnist/", "s3://bucket/x.png"],
                                                    "storage_options": options}}), cores=1)
    assert plan.partition.paths == ("az://sampledata/mnist/", "s3://bucket/x.png")
    assert plan.partition.storage_options == options
    assert plan.runner.storage_options == options


def test_file_urls_are_accepted_and_planned_as_local_paths():
    plan = plan_run(validated({**MINIMAL, "input": {"path": ["file:///data/images", "file://rel/x.png", "plain"]},
                               "models": {"m": "file:///models/m.keras"}, "side_inputs": {"s": "file://side"}}),
                    cores=1)
    assert plan.partition.paths == ("/data/images", "rel/x.png", "plain")
    assert plan.runner.models == {"m": "/models/m.keras"}
    assert plan.runner.side_inputs == {"s": "side"}


@pytest.mark.parametrize("override,fragment", [
    ({"run_max_try": 0}, "0 is less than the minimum of 1"),
    ({"error_threshold": -2}, "-2 is less than the minimum of -1"),
    ({"output_action": "append"}, "'append' is not one of ['append_row', 'summary_only']"),
    ({"process_count_per_node": "many"}, "'many'"),
    ({"mini_batch_sise": 5}, "Additional properties are not allowed ('mini_batch_sise' was unexpected)"),
])
def test_schema_rejects_bad_values(override, fragment):
    with pytest.raises(Exception) as info:
        validated({**MINIMAL, **override})
    assert fragment in str(info.value)


def test_schema_requires_input_and_entry_script():
    with pytest.raises(Exception) as info:
        validated({"input": {"path": "x"}})
    assert "'entry_script' is a required property" in str(info.value)


def test_entry_script_is_relative_to_source_directory():
    assert resolve_entry_script("score.py", "src") == ("src/score.py", "src")
    assert resolve_entry_script("/abs/score.py", "src") == ("/abs/score.py", "src")
    assert resolve_entry_script("scripts/score.py", None) == ("scripts/score.py", "scripts")
    assert resolve_entry_script("score.py", None) == ("score.py", ".")


def _properties(schema, prefix=""):
    for name, prop in schema.get("properties", {}).items():
        yield prefix + name, prop
        yield from _properties(prop, prefix + name + ".")


def test_every_key_has_a_description_and_all_but_the_required_ones_a_default():
    import yaml

    from helpers import SCHEMA

    with open(SCHEMA) as handle:
        schema = yaml.safe_load(handle)
    keys = dict(_properties(schema))
    assert {k for k, p in keys.items() if "description" not in p} == set()
    assert {k for k, p in keys.items() if "default" not in p} == {"input", "input.path", "entry_script"}
    spec_keys = {"run_name", "input.type", "input.path", "input.pattern", "input.format", "input.read_options",
                 "input.storage_options", "side_inputs", "entry_script", "source_directory", "arguments",
                 "environment_variables", "models", "mini_batch_size", "partition_keys", "error_threshold",
                 "allowed_failed_count", "allowed_failed_percent", "output_action", "append_row_file_name",
                 "append_row_format", "run_invocation_timeout", "run_max_try", "node_count",
                 "process_count_per_node", "gpus_per_process", "threads_per_process", "logging_level", "output_uri"}
    # beyond SPEC §3: init_timeout, allow_reuse, reuse_items, append_row_dataframe_header,
    # input.prefetch_bytes, input.partition_format (issue 12: ParallelRunStep's partition per folder),
    # progress_interval (the live view's, issue 13), balance_shards (issue 14: work stealing)
    assert spec_keys <= set(keys)
    assert set(keys) - spec_keys == {"input", "allow_reuse", "reuse_items", "append_row_dataframe_header",
                                     "init_timeout", "input.prefetch_bytes", "input.partition_format",
                                     "progress_interval", "balance_shards"}


@pytest.mark.parametrize("override,fragment", [
    ({"append_row_file_name": "summary.json"}, "should not be valid under"),
    ({"append_row_file_name": ".."}, "does not match"),
    ({"append_row_file_name": "a/b.txt"}, "does not match"),
    ({"run_invocation_timeout": 1e9}, "is greater than the maximum of 604800"),
    ({"progress_interval": 0}, "0 is less than or equal to the minimum of 0"),
    ({"environment_variables": {"A=B": "x"}}, "'A=B' does not match"),
])
def test_schema_rejects_names_and_values_the_run_cannot_use(override, fragment):
    with pytest.raises(Exception) as info:
        validated({**MINIMAL, **override})
    assert fragment in str(info.value)
    validated({**MINIMAL, "append_row_file_name": "out.v2.txt", "environment_variables": {"_OK1": 1}})


@pytest.mark.parametrize("value,size", [
    (None, 1024 ** 2), (20, 20), ("512", 512), ("64KB", 64 * 1024), ("1MB", 1024 ** 2), ("1 mb", 1024 ** 2),
    ("1GB", 1024 ** 3), ("3B", 3),
])
def test_tabular_mini_batch_size_is_bytes_1024_based(value, size):
    assert parse_mini_batch_size(value, "tabular") == size


def test_a_tabular_plan_carries_format_read_options_and_partition_keys():
    config = validated({**MINIMAL, "input": {"path": "data", "type": "tabular", "format": "tsv",
                                             "read_options": {"na_values": ["-"]}},
                        "partition_keys": ["country"], "append_row_format": "parquet"})
    plan = plan_run(config, cores=2)
    assert (plan.partition.input_type, plan.partition.format, plan.partition.read_options,
            plan.partition.partition_keys, plan.partition.mini_batch_size) == (
        "tabular", "tsv", {"na_values": ["-"]}, ("country",), 1024 ** 2)
    assert (plan.runner.input_type, plan.runner.read_options, plan.runner.append_row_format) == (
        "tabular", {"na_values": ["-"]}, "parquet")
    assert type(plan.partition).from_json(plan.partition.to_json()) == plan.partition


@pytest.mark.parametrize("argument,message", [
    ("--mini_batch_size", "config key 'arguments': '--mini_batch_size' is reserved by ParallelRunStep for its own "
                          "setting; set the config key 'mini_batch_size' instead (arguments are for the entry "
                          "script's own options)"),
    ("--error_threshold=5", "config key 'arguments': '--error_threshold' is reserved by ParallelRunStep for its own "
                            "setting; set the config key 'error_threshold' instead (arguments are for the entry "
                            "script's own options)"),
    ("--client_sdk_version", "config key 'arguments': '--client_sdk_version' is reserved by ParallelRunStep for its "
                             "own setting; snakebatch sets it itself (arguments are for the entry script's own options)"),
])
def test_parallelrunsteps_reserved_arguments_are_rejected(argument, message):
    with pytest.raises(ConfigError) as info:
        plan_run(validated({**MINIMAL, "arguments": ["--model_name", "m", argument, "3"]}), cores=1)
    assert str(info.value) == message


def test_parallelrunsteps_tuning_arguments_are_kept_and_the_dataframe_header_applies():
    plan = plan_run(validated({**MINIMAL, "arguments": [
        "--progress_update_timeout", "600", "--append_row_dataframe_header", "True", "--model_name", "m"]}), cores=1)
    assert plan.runner.arguments == ("--progress_update_timeout", "600", "--append_row_dataframe_header", "True",
                                     "--model_name", "m")
    assert plan.runner.append_row_dataframe_header and plan.gather.append_row_dataframe_header
    assert plan.warnings == ("arguments: --progress_update_timeout tunes ParallelRunStep's agents; snakebatch has "
                             "none and ignores it (it stays in the entry script's sys.argv)",)
    assert not plan_run(validated(MINIMAL), cores=1).gather.append_row_dataframe_header


def test_a_bare_append_row_dataframe_header_flag_does_not_swallow_the_next_option():
    plan = plan_run(validated({**MINIMAL, "arguments": ["--append_row_dataframe_header", "--foo", "bar"]}), cores=1)
    assert plan.gather.append_row_dataframe_header
    assert plan.runner.arguments == ("--append_row_dataframe_header", "--foo", "bar")
