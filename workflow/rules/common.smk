# Load and validate the config, derive what the rules share (shard ids, run folder, specs).
import os
import re
import shlex
import sys
import time
import uuid

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

WORKFLOW_DIR = os.path.join(workflow.basedir, "workflow")
if WORKFLOW_DIR not in sys.path:
    sys.path.insert(0, WORKFLOW_DIR)
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (WORKFLOW_DIR, os.environ.get("PYTHONPATH")) if p)

import jsonschema

from snakebatch.config import describe_validation_error, plan_run
from snakebatch.datasets import is_glob, list_files, listing_fingerprint, root_folders, watched_paths
from snakebatch.errors import ConfigError, DatasetError
from snakebatch.lifecycle import drop_stopped_shard_results
from snakebatch.manifest import shard_id
from snakebatch.partition import DATASET_STAMP, mark_dataset_changes
from snakebatch.store import known_modules
from snakebatch import progress

try:
    validate(config, "../schemas/config.schema.yaml")
except WorkflowError as exc:
    cause = exc.__cause__ or exc.__context__  # snakemake raises it while handling the ValidationError
    if not isinstance(cause, jsonschema.ValidationError):
        raise
    raise WorkflowError(f"snakebatch: invalid config: {describe_validation_error(cause)}") from None

try:
    _cores = workflow.cores
except WorkflowError:  # a dry run without --cores: plan as for --cores all
    _cores = os.cpu_count()

try:
    PLAN = plan_run(config, _cores)
except ConfigError as exc:
    raise WorkflowError(f"snakebatch: invalid config: {exc}") from None

# One id per snakemake invocation, inherited by its shard jobs: they count each other's failures
# to stop early (snakebatch.progress). Not a param, so it never re-runs a job. A shard result that
# stopped early in an earlier invocation is unfinished: removed, so its shard runs again.
if workflow.is_main_process:
    os.environ[progress.INVOCATION_ENV] = uuid.uuid4().hex
    drop_stopped_shard_results(os.path.join(PLAN.run_dir, "shards"))

# The runtime package, run with the interpreter that runs snakemake.
SNAKEBATCH = shlex.quote(sys.executable) + " -m snakebatch"
PYTHON = shlex.quote(sys.executable)
RUN_DIR = PLAN.run_dir
PARTITION_DIR = os.path.join(RUN_DIR, "partition")
SHARD_IDS = [shard_id(i) for i in range(PLAN.shard_count)]
# allow_reuse: false -> a parameter that differs on every invocation, so everything reruns.
REUSE_NONCE = "" if PLAN.runner.allow_reuse else str(time.time_ns())

wildcard_constraints:
    shard=r"\d{5}",


# Paths that rules of this workflow make (the demo's and the examples' data and models): a config
# may point at them before they exist. Rule files add theirs; the Snakefile checks once, after
# every include (check_paths_exist).
PRODUCED_PATHS = []


def check_paths_exist():
    """Fail the dry run, naming the key, for a local path that neither exists nor is made by a rule
    (one of PRODUCED_PATHS)."""
    produced = {os.path.normpath(p) for p in PRODUCED_PATHS}
    checks = [("input.path", p) for p in PLAN.partition.paths if not is_glob(p)]
    checks.append(("entry_script", PLAN.runner.entry_script))
    checks += [(f"models.{k}", v) for k, v in PLAN.runner.models.items()]
    checks += [(f"side_inputs.{k}", v) for k, v in PLAN.runner.side_inputs.items()]
    for key, path in checks:
        if not os.path.exists(path) and os.path.normpath(path) not in produced:
            raise WorkflowError(f"snakebatch: invalid config: {key}: {path!r} does not exist")


def plain_paths(paths):
    """Snakemake reads ``{name}`` in any input path as a wildcard and cannot escape it, so a file
    named like ``x{y}.txt`` is left out of the tracked inputs. The partition still lists it, and
    the dataset fingerprint (see dataset_inputs) still notices when it changes."""
    return [p for p in paths if not re.search(r"\{[^{}]*\}", p)]


def dataset_inputs():
    """The dataset's roots (so Snakemake runs the demo rule that makes a missing one) and the
    dataset stamp, rewritten when the listing differs from what the last partition saw (see
    snakebatch.partition.mark_dataset_changes). An empty or unreadable dataset fails the dry run
    here, unless a rule still has to make it. A job's own sub-process (cluster) lists nothing."""
    roots = plain_paths(root_folders(PLAN.partition.paths))
    stamp = os.path.join(PARTITION_DIR, DATASET_STAMP)
    if not workflow.is_main_process:
        return roots + [stamp]
    current = None
    if all(os.path.exists(p) for p in PLAN.partition.paths if not is_glob(p)):
        try:
            current = listing_fingerprint(list_files(PLAN.partition.paths, PLAN.partition.pattern))
        except DatasetError as exc:
            raise WorkflowError(f"snakebatch: invalid input: {exc}") from None
    return roots + [mark_dataset_changes(PARTITION_DIR, current)]


def runner_inputs():
    """Files whose change must re-run the shard jobs: the entry script, the helper modules it
    imported from source_directory last time, and the folders and files of every model and side
    input (a folder's own mtime misses a file rewritten inside it)."""
    paths = [*PLAN.runner.models.values(), *PLAN.runner.side_inputs.values()]
    modules = [m for m in known_modules(RUN_DIR) if os.path.exists(m)]
    return plain_paths([PLAN.runner.entry_script, *modules, *(watched_paths(paths) if paths else [])])


def merged_output():
    return os.path.join(RUN_DIR, config["append_row_file_name"])


def gather_outputs():
    outputs = [os.path.join(RUN_DIR, "_SUCCESS")]
    if config["output_action"] == "append_row":
        outputs.insert(0, merged_output())
    return outputs


# Targets of `rule all` besides gather's outputs (the demo adds its accuracy score).
EXTRA_TARGETS = []


def final_targets():
    return gather_outputs() + EXTRA_TARGETS


def announce_start():
    progress.announce_start(PLAN)


def announce_success():
    progress.announce_success(PLAN)


def announce_failure():
    progress.announce_failure(PLAN)
