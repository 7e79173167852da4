# partition: list the dataset, cut it into mini-batches, write one manifest per shard.
# It re-runs when a root's mtime is newer, or when the listing's fingerprint (paths, sizes,
# mtimes) differs from the one it recorded: then the dataset stamp among its inputs is renewed.


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
        nonce=REUSE_NONCE,
    threads: 1
    shell:
        SNAKEBATCH + ".partition --spec {params.spec:q} --out-dir {params.out_dir:q} 2>&1 | tee {log:q}"
