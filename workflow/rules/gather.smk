# gather: merge the shard results in input order, write summary and error report, check thresholds.


rule gather:
    input:
        expand(LAYOUT.shard_result("{shard}"), shard=RUN.shard_ids),
    output:
        RUN.gather_outputs(merged_caption="../report/merged.rst"),
    log:
        LAYOUT.stage_log("gather"),
    conda:
        "../envs/snakebatch.yaml"
    threads: 1
    params:
        spec=RUN.spec_digest["gather"],
        spec_file=LAYOUT.stage_spec("gather"),
        # more shards than last time: new shard results gather needs, which only a change of
        # gather itself makes Snakemake look for (fewer shards change the partition's spec)
        shard_count=PLAN.shard_count,
        run_dir=run_folder,
    shell:
        f"{SNAKEBATCH}.gather.job --spec-file {{params.spec_file:q}} --run-dir {{params.run_dir:q}} {{input:q}} > {{log:q}} 2>&1"
