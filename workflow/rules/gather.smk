# gather: merge the shard results in input order, write summary and error report, check thresholds.


rule gather:
    input:
        expand(LAYOUT.shard_result("{shard}"), shard=SHARD_IDS),
    output:
        gather_outputs(),
    log:
        LAYOUT.stage_log("gather"),
    conda:
        "../envs/snakebatch.yaml"
    threads: 1
    params:
        spec=PLAN.gather.to_json(),
        run_dir=run_folder,
    shell:
        f"{SNAKEBATCH}.gather --spec {{params.spec:q}} --run-dir {{params.run_dir:q}} {{input:q}} 2>&1 | tee {{log:q}}"
