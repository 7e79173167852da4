# snakebatch: ParallelRunStep-style batch inference as a Snakemake workflow.
# partition (one manifest per shard) -> infer_shard (one job per shard) -> gather -> results/{run_name}/
# The logic lives in the runtime package workflow/snakebatch; these files only wire it up.


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/examples.smk"
include: "workflow/rules/partition.smk"
include: "workflow/rules/infer.smk"
include: "workflow/rules/gather.smk"
include: "workflow/rules/report.smk"


RUN.check_paths_exist()  # every configured path exists or is made by a rule above


onstart:
    hooks.on_start(RUN, workflow)


onsuccess:
    hooks.on_success(RUN)


onerror:
    hooks.on_failure(RUN)


hooks.register_module_hooks(RUN, workflow)  # used as a module: the hooks above run too


rule all:
    default_target: True
    input:
        RUN.final_targets(),


freeze_parsed_objects()  # the garbage collector skips what parsing made (many shard jobs)
