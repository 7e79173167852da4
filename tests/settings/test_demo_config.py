"""The demo's config fills in only a config without its own input (snakebatch.settings.demo)."""

import os

import yaml

from snakebatch.settings.demo import uses_demo, with_demo_defaults

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
with open(os.path.join(REPO, "config", "demo.yaml"), encoding="utf-8") as handle:
    DEMO = yaml.safe_load(handle)
with open(os.path.join(REPO, "config", "config.yaml"), encoding="utf-8") as handle:
    SHIPPED = yaml.safe_load(handle)


def test_the_shipped_config_runs_the_demo():
    assert "input" not in SHIPPED and "entry_script" not in SHIPPED and "models" not in SHIPPED
    merged = with_demo_defaults(SHIPPED, DEMO)
    assert merged["input"] == {"type": "file", "path": "resources/demo/mnist", "pattern": "*.png"}
    assert (merged["entry_script"], merged["source_directory"], merged["models"]) == (
        "digit_identification.py", "scripts", {"mnist": "resources/demo/model"})
    assert (merged["run_name"], merged["mini_batch_size"], merged["process_count_per_node"]) == ("mnist", 5, "auto")


def test_a_users_config_merged_over_the_shipped_one_gets_no_demo_key():
    # what `--configfile mine.yaml` without --replace-workflow-config gives the workflow
    mine = {**SHIPPED, "input": {"path": "data", "type": "tabular"}, "entry_script": "score.py"}
    assert not uses_demo(mine)
    assert with_demo_defaults(mine, DEMO) == mine
    assert "pattern" not in with_demo_defaults(mine, DEMO)["input"] and "models" not in mine


def test_a_resubmit_on_one_demo_image_keeps_the_demo_settings():
    merged = with_demo_defaults({**SHIPPED, "input": {"path": "resources/demo/mnist/0.png"}, "mini_batch_size": 1}, DEMO)
    assert merged["input"] == {"type": "file", "path": "resources/demo/mnist/0.png", "pattern": "*.png"}
    assert (merged["entry_script"], merged["mini_batch_size"], merged["models"]) == (
        "digit_identification.py", 1, {"mnist": "resources/demo/model"})
