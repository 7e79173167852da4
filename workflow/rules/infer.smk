# infer_shard: one job per shard; the runner supervises one worker that calls the entry script.
# Shards publish progress under results/{run}/progress/ and stop early on a threshold breach.


rule infer_shard:
    input:
        manifest=f"{RUN_DIR}/partition/shard-{{shard}}.json",
        runner_inputs=runner_inputs(),
    output:
        f"{RUN_DIR}/shards/shard-{{shard}}.jsonl",
    log:
        f"{RUN_DIR}/logs/sys/node/shard-{{shard}}.console.log",
    params:
        spec=PLAN.runner.to_json(),
        run_dir=RUN_DIR,
    threads: 1
    shell:
        SNAKEBATCH + ".runner --spec {params.spec:q} --manifest {input.manifest:q}"
        " --output {output:q} --run-dir {params.run_dir:q} 2>&1 | tee {log:q}"
