# partition: list the dataset, cut it into mini-batches, write one manifest per shard.
# It re-runs when a root's mtime is newer, or when the listing's fingerprint (paths, sizes,
# mtimes) differs from the one it recorded: the `dataset` parameter.


rule partition:
    input:
        dataset=dataset_inputs(),
    output:
        manifests=expand(f"{RUN_DIR}/partition/shard-{{shard}}.json", shard=SHARD_IDS),
    log:
        f"{RUN_DIR}/logs/partition.log",
    params:
        spec=PLAN.partition.to_json(),
        out_dir=PARTITION_DIR,
        dataset=dataset_param(),
        nonce=REUSE_NONCE,
    threads: 1
    shell:
        SNAKEBATCH + ".partition --spec {params.spec:q} --out-dir {params.out_dir:q}"
        " --dataset-param={params.dataset} 2>&1 | tee {log:q}"
