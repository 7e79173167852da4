# infer_shard: one job per shard; the runner supervises one worker that calls the entry script.
# Shards publish progress under results/{run}/progress/ and stop early on a threshold breach; the
# runner finds the run folder from its output and the invocation id in plan.json.


rule infer_shard:
    input:
        manifest=LAYOUT.manifest("{shard}"),
        runner_inputs=runner_inputs(),
        unfinished=unfinished_marker,
    output:
        LAYOUT.shard_result("{shard}"),
    log:
        LAYOUT.shard_console_log("{shard}"),
    conda:
        "../envs/snakebatch.yaml"
    threads: 1
    params:
        # a changed spec reruns the jobs; they read it from the file onstart writes (a short command)
        spec=PLAN.runner.to_json(),
        spec_file=LAYOUT.stage_spec("runner"),
    shell:
        f"{SNAKEBATCH}.runner --spec-file {{params.spec_file:q}} --manifest {{input.manifest:q}}"
        " --output {output:q} > {log:q} 2>&1"
