"""What runs when an invocation's jobs start, succeed or fail, and how it gets registered.

The Snakefile's ``onstart``/``onsuccess``/``onerror`` directives (Snakemake's public API) call
``on_start``, ``on_success`` and ``on_failure``. Snakemake runs only the main Snakefile's
directives, so when this workflow is a module of a user's Snakefile (``module snakebatch: ...;
use rule * from snakebatch``) ``register_module_hooks`` adds ours to the user's through
``chain_workflow_hooks``, the one place that touches Snakemake's private hook attributes
(tests/wiring/test_workflow_hooks.py checks them against the installed Snakemake).
"""

from __future__ import annotations

import json
import os

import yaml

from snakebatch.gather.job import restore_reports
from snakebatch.gather.lifecycle import remove_verdict_temps
from snakebatch.monitor import console, interrupts, live
from snakebatch.settings.plan import PlanRecord, oversubscription_warning, write_plan
from snakebatch.storage.atomic import remove_stale_temps, write_text_atomic
from snakebatch.wiring.facts import snakemake_cores
from snakebatch.wiring.invocation import Invocation

# Snakemake's Workflow keeps the main Snakefile's hooks in these attributes (Snakemake 9), each a
# function of the log file's path; there is no public way to add to them from a module.
PRIVATE_HOOKS = {"onstart": "_onstart", "onsuccess": "_onsuccess", "onerror": "_onerror"}


def gpu_pool(workflow) -> int | None:
    """The GPUs given with ``--resources gpu=N`` (the pool the shard jobs place their workers in,
    see snakebatch.infer.devices), or None."""
    value = workflow.global_resources.get("gpu")
    value = getattr(value, "value", value)
    return None if value is None else int(value)


def on_start(run: Invocation, workflow) -> None:
    """Remove what killed writers of earlier runs left (``remove_leftover_temps``), record the
    plan for the jobs (plan.json, the stages' specs, the config used; only a run that starts
    jobs gets here), say it, and start the live view on this process's console."""
    plan = run.plan
    record = PlanRecord(
        run_name=plan.run_name,
        process_count_per_node=run.process_count,
        shard_count=plan.shard_count,
        invocation=run.invocation,
        listing=os.path.basename(run.listing),
        gpu_pool=gpu_pool(workflow),
    )
    remove_leftover_temps(run)
    write_plan(run.layout.plan, record)
    for stage, spec in plan.stages:
        write_text_atomic(run.layout.stage_spec(stage), spec.to_json() + "\n")
    config = json.loads(json.dumps(dict(run.config)))
    write_text_atomic(run.layout.config_used, yaml.safe_dump(config, sort_keys=False))
    cores = snakemake_cores(workflow) if workflow.local_exec else None  # jobs on this machine
    warning = oversubscription_warning(plan.shard_count, cores, os.cpu_count() or 1)
    console.announce_start(plan, [warning] if warning else [])
    interrupts.forward_terminate()  # after Snakemake's scheduler set its SIGTERM handler
    # the live view: the shards' progress records added up, on this process's console
    live.start_live_view(run.layout.root, run.invocation, plan.shard_count, run.config["progress_interval"])


def remove_leftover_temps(run: Invocation) -> list[str]:
    """Remove the temporary files killed writers of earlier runs left next to the run folder's
    own files (the verdict: ``gather.lifecycle.remove_verdict_temps``; plan.json, the stages'
    specs, the config used). Called when jobs start, before any of this run's jobs writes;
    a temporary file whose writer still runs on this machine is kept. Returns the paths removed."""
    layout = run.layout
    merged = run.merged_output() if run.config["output_action"] == "append_row" else None
    removed = remove_verdict_temps(layout.root, merged)
    for path in (layout.plan, layout.config_used, *(layout.stage_spec(stage) for stage, _ in run.plan.stages)):
        removed += remove_stale_temps(path)
    return removed


def on_success(run: Invocation) -> None:
    """Stop the live view and say the verdict of a run whose jobs all succeeded."""
    live.stop_live_view("succeeded")
    console.announce_success(run.plan)


def on_failure(run: Invocation) -> None:
    """Stop the live view, put back a failed gather's summary and error report (removed by
    Snakemake with its failed outputs) and say why the run failed."""
    live.stop_live_view("failed")
    restore_reports(run.layout)
    console.announce_failure(run.plan)


def chain_workflow_hooks(workflow, ours: dict) -> None:
    """Run ``ours[name]()`` before the hook Snakemake's ``workflow`` already holds for ``name``
    (``onstart``, ``onsuccess``, ``onerror``: the user's, or Snakemake's no-op). Raises
    RuntimeError naming the attribute when this Snakemake keeps its hooks elsewhere (this relies
    on Snakemake 9's private ``Workflow._onstart`` etc.). A hook directive of the user's Snakefile
    that comes after ``use rule ... from snakebatch`` replaces the chain (Snakemake keeps one)."""
    for name, hook in ours.items():
        attribute = PRIVATE_HOOKS[name]
        theirs = getattr(workflow, attribute, None)
        if not callable(theirs):
            raise RuntimeError(f"snakebatch: this Snakemake keeps no {attribute} hook: cannot add our {name} "
                               "hook as a module (snakebatch needs snakemake>=9.19,<10)")

        def chained(log, hook=hook, theirs=theirs):
            hook()
            theirs(log)

        setattr(workflow, attribute, chained)


def register_module_hooks(run: Invocation, workflow) -> None:
    """When this workflow is a module of a user's Snakefile, add our hooks to the user's (theirs
    run after ours); as the main Snakefile nothing (its directives register them)."""
    if run.facts.main_snakefile:
        return
    chain_workflow_hooks(workflow, {
        "onstart": lambda: on_start(run, workflow),
        "onsuccess": lambda: on_success(run),
        "onerror": lambda: on_failure(run),
    })
