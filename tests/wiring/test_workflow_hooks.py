"""What runs when the jobs start, succeed or fail, and the adapter that adds our hooks to a user's
Snakefile that uses this workflow as a module (Snakemake's private Workflow._onstart etc.)."""

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
import yaml

from helpers import REPO, validated, write
from snakebatch.settings.plan import read_plan
from snakebatch.wiring import hooks
from snakebatch.wiring.facts import InvocationFacts
from snakebatch.wiring.invocation import Invocation


class Hooked:
    """Stands for Snakemake's Workflow: the hooks it holds, each a function of the log's path."""

    def __init__(self, calls):
        self._onstart = lambda log: calls.append(("theirs onstart", log))
        self._onsuccess = lambda log: calls.append(("theirs onsuccess", log))
        self._onerror = lambda log: calls.append(("theirs onerror", log))


def test_ours_run_before_theirs_with_their_log():
    calls = []
    workflow = Hooked(calls)
    hooks.chain_workflow_hooks(workflow, {"onstart": lambda: calls.append(("ours onstart", None)),
                                          "onerror": lambda: calls.append(("ours onerror", None))})
    workflow._onstart("log.txt")
    workflow._onsuccess("log.txt")
    workflow._onerror(None)
    assert calls == [("ours onstart", None), ("theirs onstart", "log.txt"), ("theirs onsuccess", "log.txt"),
                     ("ours onerror", None), ("theirs onerror", None)]


def test_a_snakemake_without_the_private_hooks_is_named():
    with pytest.raises(RuntimeError, match="keeps no _onstart hook.*snakemake>=9.19,<10"):
        hooks.chain_workflow_hooks(SimpleNamespace(), {"onstart": lambda: None})


MODULE = """
import sys
sys.path.insert(0, {workflow_dir!r})
from snakebatch.wiring.hooks import chain_workflow_hooks

chain_workflow_hooks(workflow, {{
    "onstart": lambda: print("module onstart", file=sys.stderr),
    "onsuccess": lambda: print("module onsuccess", file=sys.stderr),
}})

rule made:
    output: "made.txt"
    shell: "touch {{output}}"
"""

# the user's hooks come first: a hook directive after ``use rule`` replaces what the module added
USER = """
onstart:
    print("user onstart", file=sys.stderr)

onsuccess:
    print("user onsuccess", file=sys.stderr)

module m:
    snakefile: "module/Snakefile"

use rule * from m
"""


def test_the_adapter_works_with_the_installed_snakemake(tmp_path):
    """Snakemake runs only the main Snakefile's onstart/onsuccess: a module's hooks get added
    through the private attributes, and they still exist and are still called in this Snakemake."""
    write(tmp_path / "module" / "Snakefile", MODULE.format(workflow_dir=os.path.join(REPO, "workflow")))
    write(tmp_path / "Snakefile", USER)
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", "made.txt"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.endswith(("onstart", "onsuccess"))]
    assert lines == ["module onstart", "user onstart", "module onsuccess", "user onsuccess"]


@pytest.fixture
def run(tmp_path, monkeypatch):
    """An invocation of a two-shard run in ``tmp_path``; the console, signal and live-view side
    effects of the hooks are recorded instead."""
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "data" / "a.txt", "a")
    write(tmp_path / "score.py", "def run(b):\n    return b\n")
    said = []
    monkeypatch.setattr(hooks.console, "announce_start", lambda plan, warnings: said.append(("start", warnings)))
    monkeypatch.setattr(hooks.console, "announce_success", lambda plan: said.append("succeeded"))
    monkeypatch.setattr(hooks.console, "announce_failure", lambda plan: said.append("failed"))
    monkeypatch.setattr(hooks.interrupts, "forward_terminate", lambda: said.append("forward"))
    monkeypatch.setattr(hooks.live, "start_live_view", lambda *args: said.append(("live", args)))
    monkeypatch.setattr(hooks.live, "stop_live_view", lambda outcome: said.append(("stop", outcome)))
    config = validated({"run_name": "r", "input": {"path": "data"}, "entry_script": "score.py",
                        "process_count_per_node": 2})
    invocation = Invocation.resolve(config, InvocationFacts(cores=2), REPO)
    return SimpleNamespace(invocation=invocation, said=said)


def test_on_start_records_the_plan_the_specs_and_the_config(run):
    workflow = SimpleNamespace(global_resources={"gpu": 2, "_cores": 2}, local_exec=True, cores=2)
    hooks.on_start(run.invocation, workflow)
    layout = run.invocation.layout
    record = read_plan(layout.plan)
    assert (record.process_count_per_node, record.shard_count, record.gpu_pool) == (2, 2, 2)
    assert record.invocation == run.invocation.invocation
    assert record.listing == os.path.basename(run.invocation.listing)
    for stage, spec in run.invocation.plan.stages:
        with open(layout.stage_spec(stage), encoding="utf-8") as handle:
            assert handle.read() == spec.to_json() + "\n"
    with open(layout.config_used, encoding="utf-8") as handle:
        assert yaml.safe_load(handle) == json.loads(json.dumps(dict(run.invocation.config)))
    assert run.said == [("start", []), "forward", ("live", (layout.root, record.invocation, 2, 30))]


def test_on_success_and_on_failure_stop_the_live_view_and_say_the_verdict(run):
    hooks.on_success(run.invocation)
    hooks.on_failure(run.invocation)
    assert run.said == [("stop", "succeeded"), "succeeded", ("stop", "failed"), "failed"]


def test_the_main_snakefile_registers_nothing(run):
    workflow = SimpleNamespace()
    hooks.register_module_hooks(run.invocation, workflow)   # no private attribute touched
    assert vars(workflow) == {}


def test_gpu_pool_of_the_resources():
    assert hooks.gpu_pool(SimpleNamespace(global_resources={})) is None
    assert hooks.gpu_pool(SimpleNamespace(global_resources={"gpu": SimpleNamespace(value=4)})) == 4


def test_a_run_that_starts_removes_the_temporary_files_killed_writers_left_in_its_folder(tmp_path):
    """issue 21 point 8: the next run removes them when its jobs start (before any job writes)."""
    import types

    from snakebatch.storage.atomic import temp_prefix
    from snakebatch.storage.layout import RunLayout
    from snakebatch.wiring.hooks import remove_leftover_temps

    layout = RunLayout(str(tmp_path / "run"))
    run = types.SimpleNamespace(layout=layout, config={"output_action": "append_row"},
                                merged_output=lambda: layout.merged("out.txt"),
                                plan=types.SimpleNamespace(stages=(("gather", None),)))
    left = [layout.summary, layout.success_marker, layout.job_result, layout.merged("out.txt"), layout.plan,
            layout.stage_spec("gather")]
    for path in left:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(os.path.join(os.path.dirname(path), f".tmp-{os.path.basename(path)}-p999999999-ab12cd34"), "w"):
            pass
    live = os.path.join(os.path.dirname(layout.summary), temp_prefix(layout.summary) + "ab12cd34")
    open(live, "w").close()
    assert len(remove_leftover_temps(run)) == len(left)
    assert [n for _, _, names in os.walk(tmp_path) for n in names if n.startswith(".tmp-")] == [os.path.basename(live)]
