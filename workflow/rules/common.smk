# Load and validate the config, derive what the rules share (shard ids, run layout, specs).
import gc
import hashlib
import json
import os
import re
import shlex
import sys
import time
import uuid

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# This repository's folder, from this file's place in it: workflow.basedir is the folder of the
# Snakefile snakemake was started with, the user's own folder when this workflow is used as a module.
REPO_DIR = os.path.dirname(os.path.dirname(str(workflow.current_basedir)))
WORKFLOW_DIR = os.path.join(REPO_DIR, "workflow")
if WORKFLOW_DIR not in sys.path:
    sys.path.insert(0, WORKFLOW_DIR)

import jsonschema
import yaml

from snakebatch.settings.config import describe_validation_error, plan_run
from snakebatch.settings.demo import with_demo_defaults
from snakebatch.kinds.walk import is_glob, root_folders
from snakebatch.kinds.listing import watched_paths
from snakebatch.kinds import get_kind
from snakebatch.errors import ConfigError, DatasetError
from snakebatch.gather.job import restore_reports
from snakebatch.storage.layout import RunLayout
from snakebatch.storage.locations import is_url
from snakebatch.partition.manifest import shard_id
from snakebatch.partition.listing import encode as encode_listing
from snakebatch.partition.listing import gc_paused, write_chunks
from snakebatch.settings.plan import PlanRecord, auto_process_count, oversubscription_warning, read_plan, write_plan
from snakebatch.storage.atomic import write_text_atomic
from snakebatch.infer.store import known_modules
from snakebatch.monitor import live as monitor
from snakebatch.monitor import progress

# The demo's dataset-specific keys fill in only a config that gives no input (snakebatch.settings.demo).
DEMO_CONFIG = os.path.join(REPO_DIR, "config", "demo.yaml")
if os.path.exists(DEMO_CONFIG):
    with open(DEMO_CONFIG, encoding="utf-8") as _handle:
        _effective = with_demo_defaults(dict(config), yaml.safe_load(_handle))
    config.clear()
    config.update(_effective)

try:
    validate(config, "../schemas/config.schema.yaml")
except WorkflowError as exc:
    cause = exc.__cause__ or exc.__context__  # snakemake raises it while handling the ValidationError
    if not isinstance(cause, jsonschema.ValidationError):
        raise
    raise WorkflowError(f"snakebatch: invalid config: {describe_validation_error(cause)}") from None


def snakemake_cores():
    """(cores, given): the cores snakemake was given and whether the user gave them. Snakemake
    fills in 1 for a dry run without --cores; None when it has none (a cluster run)."""
    try:
        cores = workflow.cores
    except WorkflowError:
        return None, False
    flag = any(a in ("-c", "--cores") or a.startswith("--cores=") or re.fullmatch(r"-c\d+", a) for a in sys.argv)
    return cores, not DRYRUN or cores != 1 or flag


LAYOUT = RunLayout.for_run(config["run_name"])
DRYRUN = workflow.output_settings.dryrun
# snakemake --report FILE: no job runs; the report's files are made from the run folder (report.smk)
REPORTING = workflow.is_main_process and any(a == "--report" or a.startswith("--report=") for a in sys.argv)
# The plan is resolved once, in the main snakemake process (snakebatch.settings.plan): a job's own
# snakemake (a cluster job) takes what the main process recorded in plan.json when it started.
RECORDED_PLAN = read_plan(LAYOUT.plan)
if workflow.is_main_process:
    if not DRYRUN:
        progress.watch_for_interrupt()  # a Ctrl-C is reported as the user's, not as a kill
    PROCESS_COUNT = auto_process_count(*snakemake_cores(), DRYRUN, RECORDED_PLAN)
    INVOCATION = uuid.uuid4().hex
elif RECORDED_PLAN is not None:
    PROCESS_COUNT = RECORDED_PLAN.process_count_per_node
    INVOCATION = RECORDED_PLAN.invocation
else:
    raise WorkflowError(
        f"snakebatch: {LAYOUT.plan} is missing: a job's snakemake takes the plan the main "
        "snakemake process records when it starts jobs (was it run with --no-hooks?)"
    )

try:
    PLAN = plan_run(config, PROCESS_COUNT)
except ConfigError as exc:
    raise WorkflowError(f"snakebatch: invalid config: {exc}") from None

# The runtime package, run with the interpreter that runs snakemake, from this workflow's folder.
PYTHON = shlex.quote(sys.executable)
# PYTHONPATH is set for each job's command (an empty one adds the working directory, which
# ``python -m`` puts first anyway); nothing is inherited from this process.
# An unset one is no error under the shell's set -u (braces doubled for the rules' shell formatting).
INHERITED_PYTHONPATH = "${{PYTHONPATH:-}}"
SNAKEBATCH = f"PYTHONPATH={shlex.quote(WORKFLOW_DIR)}:{INHERITED_PYTHONPATH} {PYTHON} -m snakebatch"
SHARD_IDS = [shard_id(i) for i in range(PLAN.shard_count)]
# Each stage's spec, serialised once, as a digest: a param of its jobs, so a changed spec reruns them
# (they read the spec itself from the file onstart writes). A plain string, not a function called per
# shard job, and without braces (which a string param would take for wildcards).
SPEC_DIGEST = {
    stage: hashlib.sha256(spec.to_json().encode("utf-8")).hexdigest()
    for stage, spec in (("partition", PLAN.partition), ("runner", PLAN.runner), ("gather", PLAN.gather))
}
# allow_reuse: false -> a parameter that differs on every invocation, so everything reruns.
REUSE_NONCE = "" if PLAN.runner.allow_reuse else str(time.time_ns())
# The name of the listing when the main process cannot list: the data does not exist yet.
UNLISTED = "unlisted"


wildcard_constraints:
    shard=r"\d{5}",


# On a cluster only the shard jobs are submitted; the partition and gather run where snakemake runs.
localrules:
    partition,
    gather,


# Paths that rules of this workflow make (the demo's and the examples' data and models): a config
# may point at them before they exist. Rule files add theirs; the Snakefile checks once, after
# every include (check_paths_exist).
PRODUCED_PATHS = []


def check_paths_exist():
    """Fail the dry run, naming the key, for a local path that neither exists nor is made by a rule
    (one of PRODUCED_PATHS)."""
    produced = {os.path.normpath(p) for p in PRODUCED_PATHS}
    checks = [("input.path", p) for p in PLAN.partition.paths if not is_url(p) and not is_glob(p)]
    checks.append(("entry_script", PLAN.runner.entry_script))
    checks += [(f"models.{k}", v) for k, v in PLAN.runner.models.items()]
    checks += [(f"side_inputs.{k}", v) for k, v in PLAN.runner.side_inputs.items()]
    for key, path in checks:
        if is_url(path):  # listed (inputs) or fetched (models, side inputs) through fsspec
            continue
        if not os.path.exists(path) and os.path.normpath(path) not in produced:
            where = (
                "" if os.path.isabs(path) else f" (a relative path is read from the working directory {os.getcwd()})"
            )
            raise WorkflowError(f"snakebatch: invalid config: {key}: {path!r} does not exist{where}")


def plain_paths(paths):
    """Snakemake reads ``{name}`` in any input path as a wildcard and cannot escape it, so a file
    named like ``x{y}.txt`` is left out of the tracked inputs. The partition still lists it, and
    the dataset listing (see dataset_listing) still notices when it changes."""
    return [p for p in paths if not re.search(r"\{[^{}]*\}", p)]


def dataset_listing():
    """The listing the partition makes (its output): named by the dataset's fingerprint (the
    digest of the listing's bytes: paths, sizes, mtimes), so a missing one means a changed
    dataset and a partition to run. The dataset is listed once per run, here, as a stream of
    encoded chunks (snakebatch.partition.listing; no Item is kept): a real run hands the listing to the
    partition job (``listed-{fingerprint}.list``), a dry run writes nothing. A dataset that does
    not exist yet (a rule makes it) is listed by the partition job itself. An empty or unreadable
    dataset fails the dry run here. A job's own snakemake takes the name the main process recorded."""
    if not workflow.is_main_process:
        return LAYOUT.partition_file(RECORDED_PLAN.listing)
    if not all(is_url(p) or os.path.exists(p) for p in PLAN.partition.paths if not is_glob(p)):
        return LAYOUT.listing(UNLISTED)
    try:
        with gc_paused():
            fingerprint, chunks = encode_listing(get_kind(PLAN.partition.input_type).list(PLAN.partition))
    except DatasetError as exc:
        raise WorkflowError(f"snakebatch: invalid input: {exc}") from None
    path = LAYOUT.listing(fingerprint)
    if not DRYRUN and not os.path.exists(path) and not os.path.exists(LAYOUT.listed(fingerprint)):
        write_chunks(LAYOUT.listed(fingerprint), chunks)
    return path


LISTING = dataset_listing()


def dataset_roots():
    """The inputs of the partition. While a job of this workflow still has to make the dataset's
    roots, the roots (so that job runs first); else none, as the listing's name already tells a
    changed dataset, and a root's newer mtime alone (a file added and removed again) changes nothing."""
    if LISTING != LAYOUT.listing(UNLISTED):
        return []
    return plain_paths(root_folders(PLAN.partition.paths))


def runner_inputs():
    """Files whose change must re-run the shard jobs: the entry script, the helper modules it
    imported from source_directory last time, and the folders and files of every model and side
    input (a folder's own mtime misses a file rewritten inside it)."""
    # (by URL: the runner fingerprints their objects' etags, which reuse follows)
    paths = [p for p in [*PLAN.runner.models.values(), *PLAN.runner.side_inputs.values()] if not is_url(p)]
    modules = [m for m in known_modules(LAYOUT.root) if os.path.exists(m)]
    return plain_paths([PLAN.runner.entry_script, *modules, *(watched_paths(paths) if paths else [])])


def remote_resources():
    """The versions of the models and side inputs given by URL (a digest of their objects' etags,
    read once per run here): a param of the shard jobs, so a rewritten object reruns them (the
    store then reuses what it can). Empty when none is given by URL."""
    from snakebatch.storage.locations import remote_fingerprint, storage_error

    if not workflow.is_main_process:  # a job's own snakemake: params are the main process's business
        return ""
    versions = {}
    for key in ("models", "side_inputs"):
        for name, path in getattr(PLAN.runner, key).items():
            if not is_url(path):
                continue
            try:
                versions[f"{key}.{name}"] = remote_fingerprint(path, PLAN.runner.storage_options)[:16]
            except Exception as exc:
                raise WorkflowError(f"snakebatch: invalid config: {key}.{name}: {storage_error(path, exc)}") from None
    return ",".join(f"{k}={v}" for k, v in sorted(versions.items()))


REMOTE_RESOURCES = remote_resources()


def unfinished_markers():
    """The markers shards that stopped early left (snakebatch.infer.job.mark_unfinished), by shard id:
    the shards folder is read once, not once per shard job."""
    try:
        names = os.listdir(LAYOUT.shards_dir)
    except OSError:  # no shard ran yet
        return {}
    markers = {}
    for shard in SHARD_IDS:
        marker = LAYOUT.shard_unfinished(shard)
        if os.path.basename(marker) in names:
            markers[shard] = marker
    return markers


UNFINISHED = unfinished_markers()


def unfinished_marker(wildcards):
    """The marker a shard that stopped early left: newer than the shard's result, it makes the
    shard run again. Only read here, so a dry run writes nothing."""
    marker = UNFINISHED.get(wildcards.shard)
    return [marker] if marker else []


# No input function at all while no shard left a marker (the usual case): Snakemake calls one per
# shard job, with a signature inspection each time.
UNFINISHED_INPUT = unfinished_marker if UNFINISHED else []


def missing_manifests():
    """The manifests, by shard id, the partition must (re)make although the listing exists: a
    manifest that is gone, or one of a shard count larger than last time. Only these are declared
    outputs of the partition (besides the listing) and inputs of their shard jobs, so the
    partition runs again: a job with one output per shard costs Snakemake time quadratic in the
    shards (each shard job's dependency is scanned output by output; 2-3 s of CPU in a 1,000-shard
    dry run). While the listing is missing the partition runs anyway, and writes every manifest."""
    if not os.path.exists(LISTING):
        return {}
    try:
        names = set(os.listdir(os.path.dirname(LISTING)))
    except OSError:
        names = set()
    manifests = {shard: LAYOUT.manifest(shard) for shard in SHARD_IDS}
    return {shard: m for shard, m in manifests.items() if os.path.basename(m) not in names}


MISSING_MANIFESTS = missing_manifests()


def missing_manifest(wildcards):
    """The shard's manifest when it is missing while the listing exists (see missing_manifests)."""
    manifest = MISSING_MANIFESTS.get(wildcards.shard)
    return [manifest] if manifest else []


MISSING_MANIFEST_INPUT = missing_manifest if MISSING_MANIFESTS else []


def merged_output():
    return LAYOUT.merged(config["append_row_file_name"])


def gather_outputs(merged_caption=None):
    """Gather's outputs: the merged file, its reports, the success marker last (see run_folder).
    With ``merged_caption`` (gather's own rule, a path relative to its file) the merged file is
    marked for the report, unless ``--report`` finds none (the run failed: its report shows why,
    snakebatch.monitor.report). A failed gather's reports are put back after Snakemake removed them
    (announce_failure)."""
    outputs = [LAYOUT.summary, LAYOUT.errors, LAYOUT.processed_mini_batches, LAYOUT.success_marker]
    if config["output_action"] == "append_row":
        merged = merged_output()
        if merged_caption is not None and not (REPORTING and not os.path.exists(merged)):
            merged = report(merged, caption=merged_caption, category="5. Merged output")
        outputs.insert(0, merged)
    return outputs


def run_folder(wildcards, output):
    """The run folder of a job, found from its last output (``_SUCCESS``), as the job sees it."""
    return RunLayout.of_run_file(output[-1]).root


def demo_input_used():
    """True when the run reads demo images, so the accuracy against their labels can be scored."""
    demo = os.path.abspath(DEMO_IMAGES)
    return config["output_action"] == "append_row" and any(
        os.path.abspath(p).startswith(demo) for p in PLAN.partition.paths
    )


# Targets of `rule all` besides gather's outputs (the demo adds its accuracy score).
EXTRA_TARGETS = []


def final_targets():
    """The inputs of the default target, all: gather's outputs, the extra targets, and the listing; a
    changed dataset is a listing not made yet, and only a missing file something asks for makes
    Snakemake run its job (a workflow that uses this one as a module asks for it too). With
    ``--report`` or ``--report-after-run`` also the report's files (report.smk)."""
    reporting = REPORTING or "--report-after-run" in sys.argv
    return gather_outputs() + EXTRA_TARGETS + [LISTING] + (REPORT_FILES if reporting else [])


def gpu_pool():
    """The GPUs given with ``--resources gpu=N`` (the pool the shard jobs place their workers in,
    see snakebatch.infer.devices), or None."""
    value = workflow.global_resources.get("gpu")
    value = getattr(value, "value", value)
    return None if value is None else int(value)


def announce_start():
    """Record the plan for the jobs (only a run that starts jobs gets here), then say it."""
    record = PlanRecord(
        run_name=PLAN.run_name,
        process_count_per_node=PROCESS_COUNT,
        shard_count=PLAN.shard_count,
        invocation=INVOCATION,
        listing=os.path.basename(LISTING),
        gpu_pool=gpu_pool(),
    )
    write_plan(LAYOUT.plan, record)
    for stage, spec in (("partition", PLAN.partition), ("runner", PLAN.runner), ("gather", PLAN.gather)):
        write_text_atomic(LAYOUT.stage_spec(stage), spec.to_json() + "\n")
    write_text_atomic(LAYOUT.config_used, yaml.safe_dump(json.loads(json.dumps(dict(config))), sort_keys=False))
    cores = snakemake_cores()[0] if workflow.local_exec else None  # jobs on this machine
    warning = oversubscription_warning(PLAN.shard_count, cores, os.cpu_count() or 1)
    progress.announce_start(PLAN, [warning] if warning else [])
    progress.forward_terminate()  # after Snakemake's scheduler set its SIGTERM handler
    # the live view: the shards' progress records added up, on this process's console
    monitor.start_live_view(LAYOUT.root, INVOCATION, PLAN.shard_count, config["progress_interval"])


def announce_success():
    monitor.stop_live_view("succeeded")
    progress.announce_success(PLAN)


def announce_failure():
    monitor.stop_live_view("failed")
    restore_reports(LAYOUT)  # a failed gather's summary and error report, removed by Snakemake
    progress.announce_failure(PLAN)


def register_hooks_as_module():
    """Snakemake runs only the main Snakefile's onstart/onsuccess/onerror: when this workflow is a
    module of a user's Snakefile (``module snakebatch: ...; use rule * from snakebatch``), add ours
    to the user's (theirs run after ours; Snakemake 9's Workflow keeps them in _onstart etc.)."""
    if workflow.modifier.is_main_snakefile():
        return
    for name, ours in (("_onstart", announce_start), ("_onsuccess", announce_success), ("_onerror", announce_failure)):
        theirs = getattr(workflow, name)

        def hook(log, ours=ours, theirs=theirs):
            ours()
            theirs(log)

        setattr(workflow, name, hook)


def freeze_parsed_objects():
    """Exempt every object made while the workflow was parsed (about 170,000: Snakemake's and
    our modules, the config, the rules) from Python's cyclic garbage collector, which otherwise
    walks them again at each full collection while Snakemake builds one job per shard: about 1 s
    of CPU in a 1,000-shard dry run (the collector still runs for what is made afterwards; freed
    objects are still freed)."""
    gc.freeze()
