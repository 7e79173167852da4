# Load and validate the config, derive what the rules share (shard ids, run folder, specs).
import os
import shlex
import sys
import time

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

WORKFLOW_DIR = os.path.join(workflow.basedir, "workflow")
if WORKFLOW_DIR not in sys.path:
    sys.path.insert(0, WORKFLOW_DIR)
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (WORKFLOW_DIR, os.environ.get("PYTHONPATH")) if p)

from snakebatch.config import plan_run
from snakebatch.datasets import is_glob, watched_paths
from snakebatch.errors import ConfigError
from snakebatch.manifest import shard_id
from snakebatch import progress

validate(config, "../schemas/config.schema.yaml")

try:
    _cores = workflow.cores
except WorkflowError:
    _cores = None

try:
    PLAN = plan_run(config, _cores)
except ConfigError as exc:
    raise WorkflowError(f"snakebatch: invalid config: {exc}") from None

# The runtime package, run with the interpreter that runs snakemake.
SNAKEBATCH = shlex.quote(sys.executable) + " -m snakebatch"
PYTHON = shlex.quote(sys.executable)
RUN_DIR = PLAN.run_dir
SHARD_IDS = [shard_id(i) for i in range(PLAN.shard_count)]
# allow_reuse: false -> a parameter that differs on every invocation, so everything reruns.
REUSE_NONCE = "" if PLAN.runner.allow_reuse else str(time.time_ns())

wildcard_constraints:
    shard=r"\d{5}",


def check_paths_exist(produced):
    """Fail the dry run, naming the key, for a local path that neither exists nor is made by a rule."""
    produced = {os.path.normpath(p) for p in produced}
    checks = [("input.path", p) for p in PLAN.partition.paths if not is_glob(p)]
    checks.append(("entry_script", PLAN.runner.entry_script))
    checks += [(f"models.{k}", v) for k, v in PLAN.runner.models.items()]
    checks += [(f"side_inputs.{k}", v) for k, v in PLAN.runner.side_inputs.items()]
    for key, path in checks:
        if not os.path.exists(path) and os.path.normpath(path) not in produced:
            raise WorkflowError(f"snakebatch: invalid config: {key}: {path!r} does not exist")


def dataset_inputs():
    """The dataset's folders and files, so an added, removed or rewritten file re-runs partition.
    Listed by the main snakemake process only: a job's own sub-process (cluster) needs just the roots."""
    if workflow.is_main_process:
        return watched_paths(PLAN.partition.paths, PLAN.partition.pattern)
    return [p for p in PLAN.partition.paths if not is_glob(p)]


def runner_inputs():
    """Files whose change must re-run the shard jobs: the entry script, and the folders and files
    of every model and side input (a folder's own mtime misses a file rewritten inside it)."""
    paths = [*PLAN.runner.models.values(), *PLAN.runner.side_inputs.values()]
    return [PLAN.runner.entry_script, *(watched_paths(paths) if paths else [])]


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
