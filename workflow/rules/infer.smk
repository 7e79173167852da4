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
        spec=PLAN.runner.to_json(),
        remote_resources=REMOTE_RESOURCES,
    shell:
        f"{SNAKEBATCH}.runner --spec {{params.spec:q}} --manifest {{input.manifest:q}}"
        " --output {output:q} 2>&1 | tee {log:q}"
