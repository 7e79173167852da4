"""The plan of one invocation and what its rules declare (snakebatch.wiring.invocation)."""

import os
import sys

import pytest
from snakemake.exceptions import WorkflowError

from helpers import REPO, SCHEMA, validated, write
from snakebatch.monitor.report import REPORT_FILES
from snakebatch.settings.plan import PlanRecord
from snakebatch.settings.specs import spec_digest
from snakebatch.wiring.facts import InvocationFacts
from snakebatch.wiring.invocation import Invocation, apply_demo_defaults, resolve_process_count
from snakebatch.wiring.schema import config_errors_named

RECORD = PlanRecord(run_name="r", process_count_per_node=3, shard_count=3, invocation="inv", listing="")


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("a.txt", "b.txt"):
        write(tmp_path / "data" / name, name)
    write(tmp_path / "score.py", "def run(b):\n    return b\n")
    return tmp_path


def config(**keys):
    return validated({"run_name": "r", "input": {"path": "data"}, "entry_script": "score.py",
                      "process_count_per_node": "auto", **keys})


def resolve(facts=InvocationFacts(dryrun=True, cores=2), **keys):
    return Invocation.resolve(config(**keys), facts, "/repo")


def test_the_main_process_resolves_auto_and_starts_a_new_invocation():
    count, invocation = resolve_process_count(InvocationFacts(cores=4), RECORD, "results/r/plan.json")
    assert count == 4 and len(invocation) == 32
    assert resolve_process_count(InvocationFacts(cores=4), RECORD, "p")[1] != invocation


def test_a_dry_run_without_cores_plans_what_the_last_run_did():
    facts = InvocationFacts(dryrun=True, cores=1, cores_given=False)
    assert resolve_process_count(facts, RECORD, "p")[0] == 3


def test_a_jobs_snakemake_takes_the_recorded_plan():
    job = InvocationFacts(is_main_process=False, cores=16)
    assert resolve_process_count(job, RECORD, "p") == (3, "inv")
    with pytest.raises(WorkflowError, match=r"^snakebatch: results/r/plan.json is missing: .*--no-hooks"):
        resolve_process_count(job, None, "results/r/plan.json")


def test_what_the_rules_declare(project):
    run = resolve()
    assert run.shard_ids == ["00000", "00001"]
    assert run.spec_digest == {stage: spec_digest(spec) for stage, spec in run.plan.stages}
    assert run.reuse_nonce == ""
    assert run.snakebatch == f"PYTHONPATH=/repo/workflow:${{{{PYTHONPATH:-}}}} {sys.executable} -m snakebatch"
    assert run.script("scripts", "demo_data.py") == f"{sys.executable} /repo/scripts/demo_data.py"
    assert run.unfinished_markers == {} and run.unfinished_param == "" and run.missing_manifest_input == [] and run.remote_resources == ""
    assert list(run.report_files) == list(REPORT_FILES)
    assert run.report_files["summary.html"] == "results/r/report/summary.html"
    assert resolve(allow_reuse=False).reuse_nonce.isdigit()


def test_a_config_this_version_cannot_run_is_one_line_naming_the_key(project):
    with pytest.raises(WorkflowError, match=r"^snakebatch: invalid config: config key 'arguments': '--output'"):
        resolve(arguments=["--output", "x"])


def test_the_targets_are_gathers_outputs_and_the_listing(project):
    run = resolve()
    layout = run.layout
    assert run.gather_outputs() == [layout.merged("parallel_run_step.txt"), layout.summary, layout.errors,
                                    layout.processed_mini_batches, layout.success_marker]
    assert run.final_targets() == run.gather_outputs() + [run.listing]
    reporting = resolve(InvocationFacts(reporting=True))
    assert reporting.final_targets()[-len(REPORT_FILES):] == list(reporting.report_files.values())
    assert resolve(output_action="summary_only").gather_outputs()[0] == layout.summary


def test_the_demo_scores_its_accuracy_only_on_demo_images(project):
    write(project / "resources" / "demo" / "mnist" / "0.png")
    demo = resolve(input={"path": "resources/demo/mnist"})
    assert demo.demo_input_used() and demo.layout.demo_accuracy in demo.final_targets()
    assert not resolve().demo_input_used()


def test_a_missing_path_names_its_key_unless_a_rule_makes_it(project):
    run = resolve(models={"m": "models/m"})
    with pytest.raises(WorkflowError, match=r"^snakebatch: invalid config: models\.m: 'models/m' does not exist "
                                            r"\(a relative path is read from the working directory "):
        run.check_paths_exist()
    run.add_produced_paths("models/m/")
    run.check_paths_exist()


def test_prepare_report_does_nothing_without_report(project):
    resolve().prepare_report()
    assert not os.path.exists("results/r/report")
    with pytest.raises(WorkflowError, match=r"^snakebatch: cannot make the report of results/r: "):
        resolve(InvocationFacts(reporting=True)).prepare_report()


def test_the_demo_keys_fill_only_a_config_without_input():
    given = {"run_name": "x"}
    apply_demo_defaults(given, REPO)
    assert given["input"]["path"].startswith("resources/demo") and given["run_name"] == "x"
    own = {"input": {"path": "data"}}
    apply_demo_defaults(own, REPO)
    assert own == {"input": {"path": "data"}}


def test_a_schema_complaint_is_one_line_naming_the_key():
    from snakemake.utils import validate

    with pytest.raises(WorkflowError) as caught:
        with config_errors_named():
            validate({"input": {"path": "data"}, "entry_script": "s.py", "run_max_try": 0}, SCHEMA)
    assert str(caught.value).startswith("snakebatch: invalid config: config key 'run_max_try': 0 is less than")
    with pytest.raises(WorkflowError, match="other"):   # not the schema's: unchanged
        with config_errors_named():
            raise WorkflowError("other")
