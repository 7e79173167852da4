"""The stage specs' text decides reruns (its sha256 is a param of the stage's jobs): the digest of
an unchanged config must stay what it was, or every stored run would rerun after an upgrade."""

import pytest

from helpers import validated
from snakebatch.settings.config import plan_run
from snakebatch.settings.specs import GatherSpec, PartitionSpec, RunnerSpec, spec_digest

MINIMAL = {"input": {"path": "data"}, "entry_script": "score.py"}
FULL = {"run_name": "r", "input": {"path": ["data", "file:///tmp/x"], "pattern": "*.png",
                                   "storage_options": {"anon": True}},
        "entry_script": "score.py", "source_directory": "src",
        "arguments": ["--k", 3, "--append_row_dataframe_header", "true"],
        "models": {"m": "models/m"}, "side_inputs": {"s": "side"}, "environment_variables": {"A": 1},
        "mini_batch_size": "5", "node_count": 2, "process_count_per_node": 3, "error_threshold": 4,
        "allowed_failed_count": 2, "run_max_try": 2, "output_uri": "file:///tmp/out"}

# computed before settings/config.py was split into specs, validation and derivation (issue 20)
PINNED = {
    ("minimal", "partition"): "0deeba4a69539e6c3605c211f3d70a67ba558e9818760bd805063f706d18776a",
    ("minimal", "runner"): "03247629ff87f7863a4c546db984926276f3af375779ad3ba9e0d7bf9ec90b7c",
    ("minimal", "gather"): "879a21d26324323263ab40f57b615e069569cd366f70ecca2bd5579ef1c363e0",
    ("full", "partition"): "2d0b598032c6695078697e64ab393a3aa88f3739c5789776bcd7019516806ad3",
    ("full", "runner"): "93cf82cf9191e67273a727cbeecd71da7988fde86521c2262c10d99956ca5073",
    ("full", "gather"): "2ba922d790f5a7ffc8eb79780a7e65b73ee39f9ce366b9d3e15eac4f852c4f0b",
}


@pytest.mark.parametrize("name,stage", sorted(PINNED))
def test_the_digest_of_an_unchanged_config_stays_the_same(name, stage):
    plan = plan_run(validated({"minimal": MINIMAL, "full": FULL}[name]), cores=3)
    assert spec_digest(dict(plan.stages)[stage]) == PINNED[name, stage]


def test_stages_name_each_spec_in_order():
    plan = plan_run(validated(MINIMAL), cores=1)
    assert [name for name, _ in plan.stages] == ["partition", "runner", "gather"]
    assert [type(spec) for _, spec in plan.stages] == [PartitionSpec, RunnerSpec, GatherSpec]


def test_spec_text_has_sorted_keys_and_tuples_come_back():
    spec = PartitionSpec(run_name="r", paths=("b", "a"), pattern=None, mini_batch_size=2, shard_count=1)
    text = spec.to_json()
    assert text.index('"input_type"') < text.index('"paths"') < text.index('"run_name"')
    assert PartitionSpec.from_json(text) == spec
    assert PartitionSpec.from_json(text).paths == ("b", "a")


def test_the_old_import_names_still_work():
    from snakebatch.settings import config

    assert config.RunnerSpec is RunnerSpec and config.GatherSpec is GatherSpec
    assert config.describe_validation_error.__module__ == "snakebatch.settings.validation"
