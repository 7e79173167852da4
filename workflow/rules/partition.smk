# partition: cut the dataset listing into mini-batches, write one manifest per shard.
# The dataset is listed once per run, by the main snakemake process (common.smk, dataset_listing):
# the listing's file name is its fingerprint (paths, sizes, mtimes), so a changed dataset is a new
# listing, newer than the manifests. list_dataset makes a listing the main process did not write.


rule list_dataset:
    input:
        listing_inputs,
    output:
        LAYOUT.listing("{listing}"),
    log:
        LAYOUT.stage_log("list_dataset-{listing}"),
    conda:
        "../envs/snakebatch.yaml"
    threads: 1
    params:
        spec=PLAN.partition.to_json(),
    shell:
        f"{SNAKEBATCH}.partition --spec {{params.spec:q}} --list-to {{output:q}} 2>&1 | tee {{log:q}}"


rule partition:
    input:
        listing=LISTING,
    output:
        manifests=expand(LAYOUT.manifest("{shard}"), shard=SHARD_IDS),
    log:
        LAYOUT.stage_log("partition"),
    conda:
        "../envs/snakebatch.yaml"
    threads: 1
    params:
        spec=PLAN.partition.to_json(),
        nonce=REUSE_NONCE,
    shell:
        f"{SNAKEBATCH}.partition --spec {{params.spec:q}} --listing {{input.listing:q}} 2>&1 | tee {{log:q}}"
