"""Config fuzzing: every key of the schema (``workflow/schemas/config.schema.yaml``) given a wrong
type, a negative, a huge value, NaN or infinity, a path-like string, or an unknown key next to
it. Each config goes through what the Snakefile does at parse time (``common.smk``: the schema
with its defaults, then ``config.plan_run``): it is refused with a message naming the key, or it
runs with values that make sense (finite timeouts, a bounded shard count, results inside
``results/``). Any other exception is a traceback the user would see: a defect."""

import math
import os

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from helpers import SCHEMA
from snakebatch.settings.config import describe_validation_error, plan_run
from snakebatch.errors import ConfigError

with open(SCHEMA, encoding="utf-8") as _handle:
    _SCHEMA = yaml.safe_load(_handle)


def _keys(schema, prefix=()):
    for name, sub in schema.get("properties", {}).items():
        yield prefix + (name,)
        if sub.get("type") == "object" and "properties" in sub:
            yield from _keys(sub, prefix + (name,))


KEYS = sorted(_keys(_SCHEMA))
_VALIDATOR = __import__("jsonschema").validators.validator_for(_SCHEMA)(_SCHEMA)
BASE = {"input": {"path": "data"}, "entry_script": "score.py"}
HOSTILE = [None, True, False, 0, -1, -(10 ** 30), 10 ** 30, 2 ** 63, 1.5, -0.5, float("nan"), float("inf"),
           float("-inf"), "", " ", "x", "-1", "1e3", "0x10", "nan", "../..", "/etc", "a/b", "a\nb", "a\x00b",
           "${HOME}", "`id`", "; rm -rf /", "!!python/object:os.system", [], [1], [None], ["a", {"b": 1}], {},
           {"a": 1}, {"a": {"b": None}}, {"__proto__": 1}]


def parse_time(config):
    """What the Snakefile does with a config: ('ok', RunPlan) or ('error', message). Any other
    exception propagates (it would be a traceback on the console)."""
    import json

    import jsonschema
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    config = json.loads(json.dumps(config))   # YAML/--config values are plain data
    error = next(_VALIDATOR.iter_errors(config), None)   # what snakemake's validate raises first
    if error is not None:
        return "error", describe_validation_error(error)
    try:
        validate(config, SCHEMA)   # fills the defaults
    except WorkflowError as exc:
        cause = exc.__cause__ or exc.__context__
        if not isinstance(cause, jsonschema.ValidationError):
            raise
        return "error", describe_validation_error(cause)
    try:
        return "ok", plan_run(config, 2)
    except ConfigError as exc:
        return "error", str(exc)


def _with(config, key, value):
    import copy

    config = copy.deepcopy(config)
    target = config
    for part in key[:-1]:
        if not isinstance(target.get(part), dict):
            target[part] = {}
        target = target[part]
    target[key[-1]] = value
    return config


def _check_sane(plan):
    runner = plan.runner
    assert math.isfinite(runner.run_invocation_timeout) and runner.run_invocation_timeout > 0
    assert math.isfinite(runner.init_timeout) and runner.init_timeout > 0
    assert runner.allowed_failed_percent is None or 0 <= runner.allowed_failed_percent <= 100
    assert 1 <= plan.shard_count <= 10_000
    assert 1 <= runner.threads_per_process <= 4096 and 0 <= runner.gpus_per_process <= 4096
    assert os.path.dirname(os.path.normpath(plan.run_dir)) == "results"
    name = plan.gather.append_row_file_name
    assert name == os.path.basename(name) and name not in (".", "..")
    assert 1 <= plan.partition.mini_batch_size


def _refused_naming_or_sane(config, key):
    outcome, result = parse_time(config)
    if outcome == "error":
        assert ".".join(key) in result or key[-1] in result, result
    else:
        _check_sane(result)
    return outcome


@pytest.mark.parametrize("input_type", ["file", "tabular"])
def test_every_hostile_value_of_every_key_is_refused_naming_the_key_or_makes_sense(input_type):
    base = _with(BASE, ("input", "type"), input_type)
    outcomes = {}
    for key in KEYS:
        for value in HOSTILE:
            config = _with(base if key != ("input", "type") else BASE, key, value)
            outcomes[key, repr(value)] = _refused_naming_or_sane(config, key)
    refused = sum(1 for o in outcomes.values() if o == "error")
    assert len(outcomes) == len(KEYS) * len(HOSTILE) == 38 * 37
    assert refused >= 1000   # most hostile values are wrong for most keys
    # the NaN and the huge values a JSON schema cannot bound by itself
    for key in ("run_invocation_timeout", "init_timeout", "allowed_failed_percent"):
        assert outcomes[(key,), "nan"] == "error"
    for key in ("node_count", "process_count_per_node", "threads_per_process", "gpus_per_process"):
        assert outcomes[(key,), repr(10 ** 30)] == "error"


@settings(max_examples=300)
@given(first=st.sampled_from(KEYS), second=st.sampled_from(KEYS), a=st.sampled_from(HOSTILE),
       b=st.sampled_from(HOSTILE))
def test_two_hostile_values_at_once_are_refused_naming_one_of_the_keys_or_make_sense(first, second, a, b):
    outcome, result = parse_time(_with(_with(BASE, first, a), second, b))
    if outcome == "error":
        assert any(".".join(k) in result or k[-1] in result for k in (first, second)), result
    else:
        _check_sane(result)


def test_node_count_times_process_count_is_bounded_naming_both_keys():
    outcome, message = parse_time({**BASE, "node_count": 200, "process_count_per_node": 100})
    assert (outcome, message) == ("error", "config keys 'node_count' x 'process_count_per_node': 200 x 100 = 20000 "
                                           "workers; at most 10000 (one shard job and one manifest each)")
    assert parse_time({**BASE, "run_invocation_timeout": float("nan")}) == (
        "error", "config key 'run_invocation_timeout': nan is not a number (give a finite value)")


@settings(max_examples=200)
@given(parent=st.sampled_from([()] + [k for k in KEYS if _SCHEMA["properties"].get(k[0], {}).get("properties")
                                       and len(k) == 1]),
       name=st.text(st.sampled_from(list("abz_-.$ 1")), min_size=1, max_size=8))
def test_an_unknown_key_is_refused_naming_it(parent, name):
    known = {k[-1] for k in KEYS if k[:-1] == parent}
    if name in known:
        return
    outcome, message = parse_time(_with(BASE, parent + (name,), 1))
    assert outcome == "error"
    assert repr(name) in message and "unexpected" in message, message


def test_every_schema_key_is_fuzzed():
    assert len(KEYS) == 38


NAME_TEXT = st.text(st.sampled_from(list("aZ09._-/\\ $`;\n") + ["é", "\x00"]), min_size=0, max_size=12)


@given(run_name=NAME_TEXT, file_name=NAME_TEXT)
def test_run_name_and_append_row_file_name_never_escape_results(run_name, file_name):
    outcome, result = parse_time({**BASE, "run_name": run_name, "append_row_file_name": file_name})
    if outcome == "ok":
        _check_sane(result)
        merged = os.path.normpath(os.path.join(result.run_dir, result.gather.append_row_file_name))
        assert os.path.dirname(merged) == os.path.join("results", run_name)
    else:
        assert "'run_name'" in result or "'append_row_file_name'" in result, result
