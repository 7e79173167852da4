# partition: cut the dataset listing into mini-batches, write one manifest per shard.
# The dataset is listed once per run, by the main snakemake process (common.smk, dataset_listing).
# The listing is an output named by the dataset's fingerprint (paths, sizes, mtimes): a changed
# dataset is a missing output, so the partition runs again.


rule partition:
    input:
        dataset_roots(),
    output:
        manifests=expand(LAYOUT.manifest("{shard}"), shard=SHARD_IDS),
        listing=LISTING,
    log:
        LAYOUT.stage_log("partition"),
    conda:
        "../envs/snakebatch.yaml"
    threads: 1
    params:
        spec=lambda wildcards: PLAN.partition.to_json(),  # a function: braces in it are no wildcards
        spec_file=LAYOUT.stage_spec("partition"),
        nonce=REUSE_NONCE,
    shell:
        f": > {{log:q}}; {SNAKEBATCH}.partition --spec-file {{params.spec_file:q}} --listing {{output.listing:q}}"
        " 2>> {log:q} | tee -a {log:q}"
