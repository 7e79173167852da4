# partition: list the dataset, cut it into mini-batches, write one manifest per shard.
# Inputs are the dataset's folders and files, so an added, removed or rewritten file re-runs it.


rule partition:
    input:
        dataset=dataset_inputs(),
    output:
        manifests=expand(f"{RUN_DIR}/partition/shard-{{shard}}.json", shard=SHARD_IDS),
    log:
        f"{RUN_DIR}/logs/partition.log",
    params:
        spec=PLAN.partition.to_json(),
        out_dir=f"{RUN_DIR}/partition",
        nonce=REUSE_NONCE,
    threads: 1
    shell:
        SNAKEBATCH + ".partition --spec {params.spec:q} --out-dir {params.out_dir:q} 2>&1 | tee {log:q}"
