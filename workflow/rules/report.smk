# report_files: what `snakemake --report report.html` embeds besides the merged output (gather's):
# the summary table, the throughput and per-shard plots, the failed items and the config used,
# made by snakebatch.monitor.report from gather's reports. With --report no job runs: the files are
# made here, while the workflow is parsed, from the run folder (a run does not pay for plots).
# A failed run gets its report too: the summary with the verdict and the cause, and no merged
# output (gather_outputs does not mark a missing merged file for the report).

REPORT_FILES = [
    LAYOUT.report_file(name)
    for name in ("summary.html", "throughput.svg", "shard_durations.svg", "failed_items.html", "config.yaml")
]


rule report_files:
    input:
        summary=LAYOUT.summary,
        errors=LAYOUT.errors,
        processed=LAYOUT.processed_mini_batches,
    output:
        summary=report(REPORT_FILES[0], caption="../report/summary.rst", category="1. Summary"),
        throughput=report(REPORT_FILES[1], caption="../report/throughput.rst", category="2. Plots"),
        shards=report(REPORT_FILES[2], caption="../report/shard_durations.rst", category="2. Plots"),
        failed=report(REPORT_FILES[3], caption="../report/failed_items.rst", category="3. Failed items"),
        config=report(REPORT_FILES[4], caption="../report/config.rst", category="4. Config"),
    log:
        LAYOUT.stage_log("report_files"),
    conda:
        "../envs/snakebatch.yaml"
    threads: 1
    params:
        run_dir=lambda wildcards, input: RunLayout.of_run_file(input.summary).root,
    shell:
        f"{SNAKEBATCH}.monitor.report --run-dir {{params.run_dir:q}} > {{log:q}} 2>&1"


if REPORTING:
    from snakebatch.errors import SnakebatchError
    from snakebatch.monitor.report import write_report_files

    try:
        write_report_files(LAYOUT.root)
    except SnakebatchError as exc:
        raise WorkflowError(f"snakebatch: cannot make the report of {LAYOUT.root}: {exc}") from None
