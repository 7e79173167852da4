# infer_shard: one job per shard; the runner supervises one worker that calls the entry script.
# Shards publish progress under results/{run}/progress/ and stop early on a threshold breach; the
# runner finds the run folder from its output and the invocation id in plan.json. The only rule
# that a cluster runs as jobs: partition and gather are localrules (common.smk).


rule infer_shard:
    input:
        # the partition's output; the shard's manifest (params.manifest) is written after it
        listing=RUN.listing,
        manifest=RUN.missing_manifest_input,
        runner_inputs=RUN.runner_inputs(),
    output:
        LAYOUT.shard_result("{shard}"),
    log:
        LAYOUT.shard_console_log("{shard}"),
    conda:
        "../envs/snakebatch.yaml"
    # threads_per_process CPUs and gpus_per_process GPUs per worker: the scheduler's share locally,
    # --cpus-per-task and --gpus on SLURM (snakebatch.infer.devices places the GPUs)
    threads: PLAN.runner.threads_per_process
    resources:
        gpu=PLAN.runner.gpus_per_process,
    params:
        # a changed spec reruns the jobs; they read it from the file onstart writes (a short command)
        spec=RUN.spec_digest["runner"],
        spec_file=LAYOUT.stage_spec("runner"),
        # a dry run shows shards that stopped early as to run (snakebatch.wiring.rerun)
        unfinished=RUN.unfinished_param,
        manifest=LAYOUT.manifest("{shard}"),
        remote_resources=RUN.remote_resources,
    shell:
        f"{SNAKEBATCH}.infer.job --spec-file {{params.spec_file:q}} --manifest {{params.manifest:q}}"
        " --output {output:q} > {log:q} 2>&1"
