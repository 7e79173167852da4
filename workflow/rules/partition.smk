# partition: cut the dataset listing into mini-batches, write one manifest per shard.
# The dataset is listed once per run, by the main snakemake process (snakebatch.wiring.inputs.dataset_listing).
# The listing is an output named by the dataset's fingerprint (paths, sizes, mtimes): a changed
# dataset is a missing output, so the partition runs again.


rule partition:
    input:
        RUN.dataset_roots(),
    # The listing is written first, then one manifest per shard (partition/shard-NNNNN.json), read
    # by the shard jobs, which depend on the listing; a manifest is a declared output (and an input
    # of its shard job) only when it is missing while the listing exists (missing_manifests in
    # snakebatch.wiring.inputs), so the partition runs again.
    output:
        listing=RUN.listing,
        manifests=list(RUN.missing_manifests.values()),
    log:
        LAYOUT.stage_log("partition"),
    conda:
        "../envs/snakebatch.yaml"
    threads: 1
    params:
        spec=RUN.spec_digest["partition"],
        spec_file=LAYOUT.stage_spec("partition"),
        nonce=RUN.reuse_nonce,
    shell:
        f": > {{log:q}}; {SNAKEBATCH}.partition.job --spec-file {{params.spec_file:q}} --listing {{output.listing:q}}"
        " 2>> {log:q} | tee -a {log:q}"
