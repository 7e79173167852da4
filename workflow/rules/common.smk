# Load and validate the config; the runtime package derives what the rules share (snakebatch.wiring:
# the plan of this invocation, the shard ids, the dataset listing, the stages' spec digests).
import os
import sys

from snakemake.utils import validate

# This repository's folder, from this file's place in it: workflow.basedir is the folder of the
# Snakefile snakemake was started with, the user's own folder when this workflow is used as a module.
REPO_DIR = os.path.dirname(os.path.dirname(str(workflow.current_basedir)))
if os.path.join(REPO_DIR, "workflow") not in sys.path:
    sys.path.insert(0, os.path.join(REPO_DIR, "workflow"))

from snakebatch.wiring import hooks
from snakebatch.wiring.inputs import report_run_folder, run_folder
from snakebatch.wiring.facts import facts_of
from snakebatch.wiring.invocation import Invocation, apply_demo_defaults, freeze_parsed_objects
from snakebatch.wiring.schema import config_errors_named

# The demo's dataset-specific keys fill in only a config that gives no input (snakebatch.settings.demo).
apply_demo_defaults(config, REPO_DIR)

with config_errors_named():  # a schema complaint as one line naming the key
    validate(config, "../schemas/config.schema.yaml")

# The plan is resolved once, in the main snakemake process: a job's own snakemake (a cluster job)
# takes what the main process recorded in plan.json when it started (snakebatch.settings.plan).
RUN = Invocation.resolve(config, facts_of(workflow, sys.argv), REPO_DIR)
LAYOUT = RUN.layout
PLAN = RUN.plan
SNAKEBATCH = RUN.snakebatch


wildcard_constraints:
    shard=r"\d{5}",


# On a cluster only the shard jobs are submitted; the partition and gather run where snakemake runs.
localrules:
    partition,
    gather,
