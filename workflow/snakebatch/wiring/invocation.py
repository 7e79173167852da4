"""One snakemake invocation of snakebatch: its plan and every value the rules declare.

``Invocation.resolve`` runs once, while ``workflow/rules/common.smk`` is parsed, after the
config was validated against the schema: it resolves the plan (``process_count_per_node: auto``
in the main process, plan.json in a job's own snakemake; snakebatch.settings.plan), derives the
stages' specs (snakebatch.settings.config) and their digests, lists the dataset (inputs.py) and
reads the few files the rules' inputs depend on. The rule files read its attributes and call its
methods; none of them computes anything itself.
"""

from __future__ import annotations

import gc
import os
import shlex
import sys
import time
import uuid

import yaml
from snakemake.exceptions import WorkflowError

from snakebatch.errors import ConfigError
from snakebatch.kinds.walk import is_glob
from snakebatch.monitor import interrupts
from snakebatch.monitor.report import REPORT_FILES
from snakebatch.settings.config import plan_run
from snakebatch.settings.demo import DEMO_IMAGES, with_demo_defaults
from snakebatch.settings.plan import PlanRecord, auto_process_count, read_plan
from snakebatch.settings.specs import RunPlan, spec_digest
from snakebatch.storage.layout import RunLayout, shard_id
from snakebatch.storage.locations import is_url
from snakebatch.wiring import inputs
from snakebatch.wiring.facts import InvocationFacts
from snakebatch.wiring.rerun import drop_incomplete_gather_outputs, drop_unfinished_results, unfinished_param
from snakebatch.wiring.run_folder import check_run_folder, run_folder_errors

# PYTHONPATH is set for each job's command (an empty one adds the working directory, which
# ``python -m`` puts first anyway); nothing is inherited from this process. An unset one is no
# error under the shell's set -u (braces doubled for the rules' shell formatting).
INHERITED_PYTHONPATH = "${{PYTHONPATH:-}}"


def apply_demo_defaults(config: dict, repo_dir: str) -> None:
    """Fill in ``config`` (Snakemake's config dict, changed in place) with the demo's keys from
    ``{repo_dir}/config/demo.yaml`` when it gives no input (snakebatch.settings.demo)."""
    demo_config = os.path.join(repo_dir, "config", "demo.yaml")
    if not os.path.exists(demo_config):
        return
    with open(demo_config, encoding="utf-8") as handle:
        effective = with_demo_defaults(dict(config), yaml.safe_load(handle))
    config.clear()
    config.update(effective)


def resolve_process_count(facts: InvocationFacts, recorded: PlanRecord | None, plan_path: str) -> tuple[int, str]:
    """(process_count_per_node, invocation id) of this invocation: resolved by the main process
    (a new id), taken from ``recorded`` (plan.json at ``plan_path``) by a job's own snakemake.
    Raises WorkflowError when a job's snakemake finds no plan.json."""
    if facts.is_main_process:
        return auto_process_count(facts.cores, facts.cores_given, facts.dryrun, recorded), uuid.uuid4().hex
    if recorded is not None:
        return recorded.process_count_per_node, recorded.invocation
    raise WorkflowError(
        f"snakebatch: {plan_path} is missing: a job's snakemake takes the plan the main "
        "snakemake process records when it starts jobs (was it run with --no-hooks?)"
    )


class Invocation:
    """The plan of one snakemake invocation and what its rules declare.

    Attributes the rules read: ``layout`` (RunLayout of results/{run}), ``plan`` (RunPlan),
    ``shard_ids`` (``"00000"``...), ``listing`` (the partition's output), ``spec_digest`` (stage ->
    sha256 of its spec: a param, so a changed spec reruns the stage), ``reuse_nonce`` (differs on
    every invocation with ``allow_reuse: false``), ``remote_resources``, ``missing_manifests``,
    the shard jobs' input function ``missing_manifest_input``, ``unfinished_markers`` (shard id ->
    marker) and their params function ``unfinished_param``,
    ``report_files`` (name -> path), ``snakebatch`` (the shell prefix that runs the package).
    """

    def __init__(self, config: dict, facts: InvocationFacts, repo_dir: str, plan: RunPlan,
                 process_count: int, invocation: str, recorded: PlanRecord | None):
        self.config, self.facts, self.repo_dir, self.plan = config, facts, repo_dir, plan
        self.layout = RunLayout.for_run(config["run_name"])
        self.process_count, self.invocation = process_count, invocation
        self.python = shlex.quote(sys.executable)
        workflow_dir = shlex.quote(os.path.join(repo_dir, "workflow"))
        self.snakebatch = f"PYTHONPATH={workflow_dir}:{INHERITED_PYTHONPATH} {self.python} -m snakebatch"
        self.shard_ids = [shard_id(i) for i in range(plan.shard_count)]
        # each stage's spec serialised once, as a digest: a plain string per stage, without braces
        self.spec_digest = {stage: spec_digest(spec) for stage, spec in plan.stages}
        self.reuse_nonce = "" if plan.runner.allow_reuse else str(time.time_ns())
        self.listing = inputs.dataset_listing(plan, self.layout, facts.is_main_process, facts.dryrun,
                                              recorded.listing if recorded else "")
        self.remote_resources = inputs.remote_resources(plan, facts.is_main_process)
        self.unfinished_markers = inputs.unfinished_markers(self.layout, self.shard_ids)
        # a shard that stopped early runs again: its result is removed (a dry run: a changed param)
        drop_unfinished_results(self.layout, self.unfinished_markers, facts.is_main_process and not facts.reporting,
                                facts.dryrun)
        self.unfinished_param = unfinished_param(self.unfinished_markers, facts.dryrun)
        self.missing_manifests = inputs.missing_manifests(self.layout, self.listing, self.shard_ids)
        self.missing_manifest_input = inputs.input_by_shard(self.missing_manifests)
        self.report_files = {name: self.layout.report_file(name) for name in REPORT_FILES}
        self.produced_paths: list[str] = []

    @classmethod
    def resolve(cls, config: dict, facts: InvocationFacts, repo_dir: str) -> Invocation:
        """The invocation of a schema-validated ``config`` (defaults filled), started as ``facts``
        say, from the repository at ``repo_dir``. The main process of a real run also starts
        watching for Ctrl-C. Raises WorkflowError (``snakebatch: invalid config: ...``) for a
        config this version cannot run, a missing plan.json in a job's snakemake, or an
        unreadable dataset, or a results folder that cannot be used (``wiring.run_folder``)."""
        layout = RunLayout.for_run(config["run_name"])
        if facts.is_main_process and not facts.dryrun:
            check_run_folder(layout.root)  # one line naming the path and the cause (issue 21)
        recorded = read_plan(layout.plan)
        if facts.is_main_process and not facts.dryrun:
            interrupts.watch_for_interrupt()  # a Ctrl-C is reported as the user's, not as a kill
        process_count, invocation = resolve_process_count(facts, recorded, layout.plan)
        try:
            plan = plan_run(config, process_count)
        except ConfigError as exc:
            raise WorkflowError(f"snakebatch: invalid config: {exc}") from None
        with run_folder_errors(layout.root):  # the dataset listing is written there
            run = cls(config, facts, repo_dir, plan, process_count, invocation, recorded)
            # a gather killed with snakemake: its outputs run again, without --rerun-incomplete
            drop_incomplete_gather_outputs(run.gather_outputs(), facts.is_main_process and not facts.reporting,
                                           facts.dryrun)
        return run

    def script(self, *parts: str) -> str:
        """The shell prefix that runs the repository's script ``parts`` (``"scripts",
        "demo_data.py"``) with the interpreter that runs snakemake."""
        return f"{self.python} {shlex.quote(os.path.join(self.repo_dir, *parts))}"

    def dataset_roots(self) -> list[str]:
        """The partition's inputs (inputs.dataset_roots)."""
        return inputs.dataset_roots(self.plan, self.layout, self.listing)

    def runner_inputs(self) -> list[str]:
        """The shard jobs' tracked inputs (inputs.runner_inputs)."""
        return inputs.runner_inputs(self.plan, self.layout)

    def merged_output(self) -> str:
        """The merged results file, ``results/{run}/{append_row_file_name}``."""
        return self.layout.merged(self.config["append_row_file_name"])

    def gather_outputs(self, merged_caption: str | None = None) -> list:
        """Gather's outputs: the merged file (append_row), its reports, the success marker last
        (see inputs.run_folder). With ``merged_caption`` (gather's own rule, a path relative to its
        file) the merged file is marked for the report, unless ``--report`` finds none (the run
        failed: its report shows why, snakebatch.monitor.report). A failed gather's reports are
        put back after Snakemake removed them (hooks.on_failure)."""
        layout = self.layout
        outputs = [layout.summary, layout.errors, layout.processed_mini_batches, layout.success_marker]
        if self.config["output_action"] == "append_row":
            merged = self.merged_output()
            if merged_caption is not None and not (self.facts.reporting and not os.path.exists(merged)):
                from snakemake.io import report

                merged = report(merged, caption=merged_caption, category="5. Merged output")
            outputs.insert(0, merged)
        return outputs

    def demo_input_used(self) -> bool:
        """True when the run reads the demo's images, so its accuracy against their labels is
        scored (the demo_accuracy rule)."""
        demo = os.path.abspath(DEMO_IMAGES)
        return self.config["output_action"] == "append_row" and any(
            os.path.abspath(p).startswith(demo) for p in self.plan.partition.paths
        )

    def final_targets(self) -> list[str]:
        """The inputs of the default target, all: gather's outputs, the demo's accuracy (when
        demo_input_used), and the listing; a changed dataset is a listing not made yet, and only a
        missing file something asks for makes Snakemake run its job (a workflow that uses this one
        as a module asks for it too). With ``--report`` or ``--report-after-run`` also the
        report's files (report.smk)."""
        targets = self.gather_outputs()
        if self.demo_input_used():
            targets.append(self.layout.demo_accuracy)
        targets.append(self.listing)
        if self.facts.reporting or self.facts.report_after_run:
            targets += list(self.report_files.values())
        return targets

    def add_produced_paths(self, *paths: str) -> None:
        """Paths that rules of this workflow make (the demo's and the examples' data and
        models): a config may point at them before they exist (check_paths_exist)."""
        self.produced_paths.extend(paths)

    def check_paths_exist(self) -> None:
        """Raise WorkflowError naming the key for a local path of the config that neither exists
        nor is made by a rule (add_produced_paths); called once, after every include."""
        produced = {os.path.normpath(p) for p in self.produced_paths}
        runner = self.plan.runner
        checks = [("input.path", p) for p in self.plan.partition.paths if not is_url(p) and not is_glob(p)]
        checks.append(("entry_script", runner.entry_script))
        checks += [(f"models.{k}", v) for k, v in runner.models.items()]
        checks += [(f"side_inputs.{k}", v) for k, v in runner.side_inputs.items()]
        for key, path in checks:
            if is_url(path):  # listed (inputs) or fetched (models, side inputs) through fsspec
                continue
            if not os.path.exists(path) and os.path.normpath(path) not in produced:
                where = "" if os.path.isabs(path) else (
                    f" (a relative path is read from the working directory {os.getcwd()})")
                raise WorkflowError(f"snakebatch: invalid config: {key}: {path!r} does not exist{where}")

    def prepare_report(self) -> None:
        """With ``snakemake --report FILE`` (no job runs): make the report's files now, from the
        run folder (a run does not pay for plots); else nothing. Raises WorkflowError when the run
        folder cannot give them."""
        if not self.facts.reporting:
            return
        from snakebatch.errors import SnakebatchError
        from snakebatch.monitor.report import write_report_files

        try:
            write_report_files(self.layout.root)
        except SnakebatchError as exc:
            raise WorkflowError(f"snakebatch: cannot make the report of {self.layout.root}: {exc}") from None


def freeze_parsed_objects() -> None:
    """Exempt every object made while the workflow was parsed (about 170,000: Snakemake's and
    our modules, the config, the rules) from Python's cyclic garbage collector, which otherwise
    walks them again at each full collection while Snakemake builds one job per shard: about 1 s
    of CPU in a 1,000-shard dry run (the collector still runs for what is made afterwards; freed
    objects are still freed). Called last, after every rule is declared."""
    gc.freeze()
