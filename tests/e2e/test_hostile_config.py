"""`--config` strings that look like YAML tricks fail the dry run with the key's name and no
traceback (Snakemake parses each value as int, float, bool, then YAML's BaseLoader: every nested
scalar is a string, and no tag is ever constructed). Four dry runs (each costs seconds); every
other hostile value of every key goes through the same parse-time checks in
tests/properties/test_config_fuzz.py."""

import os

import pytest

from squares import setup

CASES = [
    (["run_invocation_timeout=nan"], "config key 'run_invocation_timeout': nan is not a number (give a finite value)"),
    (["run_name=../../etc"], "config key 'run_name': '../../etc' does not match '^[A-Za-z0-9][A-Za-z0-9._-]*$'"),
    (["input={'path': 'data', 'pattern': !!python/object/apply:os.system ['id']}"],
     "config key 'input.pattern': ['id'] is not of type 'string', 'null'"),
    (["input={'path': 'data'}", "input=5"], "config key 'input': 5 is not of type 'object'"),
]


@pytest.mark.slow
def test_config_strings_that_look_like_yaml_tricks_fail_the_dry_run_naming_the_key(workflow):
    setup(workflow)
    seen = []
    for args, message in CASES:
        proc = workflow.run("-n", "--config", *args, check=False)
        output = proc.stdout + proc.stderr
        assert proc.returncode == 1, (args, output)
        assert "snakebatch: invalid config: " + message in output, (args, output)
        assert "Traceback" not in output, (args, output)
        seen.append(args[-1])
    assert len(seen) == 4
    assert not os.path.exists(workflow.path("results", "sq"))   # a dry run writes nothing
