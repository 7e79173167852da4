# report_files: what `snakemake --report report.html` embeds besides the merged output (gather's):
# the summary table, the throughput and per-shard plots, the failed items and the config used,
# made by snakebatch.monitor.report from gather's reports. With --report no job runs: the files are
# made here, while the workflow is parsed, from the run folder (a run does not pay for plots).
# A failed run gets its report too: the summary with the verdict and the cause, and no merged
# output (gather_outputs does not mark a missing merged file for the report).

# The report's files, by name (snakebatch.monitor.report.REPORT_FILES).
REPORT_FILES = RUN.report_files


rule report_files:
    input:
        summary=LAYOUT.summary,
        errors=LAYOUT.errors,
        processed=LAYOUT.processed_mini_batches,
    output:
        summary=report(REPORT_FILES["summary.html"], caption="../report/summary.rst", category="1. Summary"),
        throughput=report(REPORT_FILES["throughput.svg"], caption="../report/throughput.rst", category="2. Plots"),
        shards=report(REPORT_FILES["shard_durations.svg"], caption="../report/shard_durations.rst", category="2. Plots"),
        failed=report(
            REPORT_FILES["failed_items.html"], caption="../report/failed_items.rst", category="3. Failed items"
        ),
        config=report(REPORT_FILES["config.yaml"], caption="../report/config.rst", category="4. Config"),
    log:
        LAYOUT.stage_log("report_files"),
    conda:
        "../envs/snakebatch.yaml"
    threads: 1
    params:
        run_dir=report_run_folder,
    shell:
        f"{SNAKEBATCH}.monitor.report --run-dir {{params.run_dir:q}} > {{log:q}} 2>&1"


RUN.prepare_report()  # with --report: the report's files, made now from the run folder
