# gather: merge the shard results in input order, write summary and error report, check thresholds.


rule gather:
    input:
        expand(f"{RUN_DIR}/shards/shard-{{shard}}.jsonl", shard=SHARD_IDS),
    output:
        gather_outputs(),
    log:
        f"{RUN_DIR}/logs/gather.log",
    params:
        spec=PLAN.gather.to_json(),
        run_dir=RUN_DIR,
    threads: 1
    shell:
        SNAKEBATCH + ".gather --spec {params.spec:q} --run-dir {params.run_dir:q} {input:q} 2>&1 | tee {log:q}"
