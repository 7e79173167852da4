"""The files ``snakemake --report`` embeds: a run's summary table, its throughput over time, the
time each shard took, the failed items and the config it used.

``python -m snakebatch.monitor.report --run-dir results/<run>`` writes, into ``results/<run>/report/``
(every file atomically): ``summary.html`` (summary.json as a table), ``throughput.svg`` (items
finished per second over the run's wall time, and the running total), ``shard_durations.svg``
(per shard: wall span from its first mini-batch's start to its last one's end, and busy time in
run()), ``failed_items.html`` (the first FAILED_ITEMS_SHOWN lines of errors.jsonl: item,
mini-batch, shard, tries, error) and ``config.yaml`` (``specs/config.yaml``, the config the run
used). The inputs are gather's reports: ``summary.json``, ``errors.jsonl`` and
``logs/sys/job_report/processed_mini-batches.csv`` (its ``started_at`` and ``duration_s``
columns). Reused mini-batches ran in an earlier run: they count in the summary, not in the plots.
A run that failed has a report too (its summary's verdict and cause, what gather reported; see
``write_report_files``). The workflow's ``report_files`` rule (``workflow/rules/report.smk``) declares them as ``report()``
outputs with the captions in ``workflow/report/``.
"""

from __future__ import annotations

import argparse
import csv
import html
import os
import sys

from snakebatch.gather.error_report import read_error_report
from snakebatch.monitor import aggregate
from snakebatch.errors import ManifestError, SnakebatchError
from snakebatch.storage.layout import RunLayout
from snakebatch.storage.atomic import atomic_open, write_text_atomic

FAILED_ITEMS_SHOWN = 100
REPORT_FILES = ("summary.html", "throughput.svg", "shard_durations.svg", "failed_items.html", "config.yaml")
_STYLE = ("<style>body{font-family:sans-serif;font-size:14px}table{border-collapse:collapse}"
          "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}"
          "th{background:#f0f0f0}td.n{text-align:right}pre{white-space:pre-wrap}</style>")


def read_processed(path: str) -> list[dict]:
    """The rows of ``processed_mini-batches.csv`` with numbers as numbers (``started_at`` None in
    a file written before it had that column). Raises ManifestError naming the file."""
    rows = []
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                rows.append({"mini_batch": int(row["mini_batch"]), "items": int(row["items"]),
                             "succeeded": int(row["succeeded"]), "failed": int(row["failed"]),
                             "duration_s": float(row["duration_s"]), "agent_name": row["agent_name"],
                             "reused": row["reused"] == "True",
                             "started_at": float(row["started_at"]) if row.get("started_at") else None})
    except FileNotFoundError:
        raise ManifestError(f"{path} does not exist: gather has not run for this run folder") from None
    except (KeyError, ValueError) as exc:
        raise ManifestError(f"{path} is corrupt: {exc}") from None
    return rows


def throughput_series(rows: list[dict], bins: int | None = None) -> tuple[list[float], list[float], list[int]]:
    """(bin ends in seconds since the first computed mini-batch started, items/s in each bin,
    items finished by each bin end) over ``bins`` equal bins of the run's wall span (default:
    one per 4 computed mini-batches, 1 to 40, so a short run's bars are not one spike per
    mini-batch); a mini-batch's items count when it ends. Empty lists when no mini-batch was
    computed in this run."""
    timed = [r for r in rows if not r["reused"] and r["started_at"] is not None]
    if not timed:
        return [], [], []
    if bins is None:
        bins = max(1, min(40, len(timed) // 4))
    start = min(r["started_at"] for r in timed)
    ends = sorted((r["started_at"] + r["duration_s"] - start, r["items"]) for r in timed)
    span = max(ends[-1][0], 1e-3)
    width = span / bins
    counts = [0] * bins
    for end, items in ends:
        counts[min(bins - 1, int(end / width))] += items
    edges = [width * (i + 1) for i in range(bins)]
    total, cumulative = 0, []
    for count in counts:
        total += count
        cumulative.append(total)
    return edges, [c / width for c in counts], cumulative


def shard_spans(rows: list[dict]) -> list[tuple[str, float, float, int]]:
    """Per worker (``agent_name``, in name order): (name, wall span s from its first computed
    mini-batch's start to its last one's end, busy s summed over its mini-batches, mini-batches)."""
    by_agent: dict[str, list[dict]] = {}
    for row in rows:
        if not row["reused"] and row["started_at"] is not None:
            by_agent.setdefault(row["agent_name"], []).append(row)
    spans = []
    for name in sorted(by_agent):
        mine = by_agent[name]
        first = min(r["started_at"] for r in mine)
        last = max(r["started_at"] + r["duration_s"] for r in mine)
        spans.append((name, last - first, sum(r["duration_s"] for r in mine), len(mine)))
    return spans


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "snakebatch"  # the same run gives the same bytes
    plt.rcParams["svg.fonttype"] = "none"          # text stays text (searchable in the report)
    return plt


def _save(fig, path: str) -> None:
    with atomic_open(path) as handle:
        fig.savefig(handle, format="svg", metadata={"Date": None})


def plot_throughput(rows: list[dict], path: str, run_name: str,
                    empty: str = "no mini-batch computed in this run (all reused)") -> None:
    """``throughput.svg``: items/s per bin (bars) and items finished (line) over wall time;
    ``empty`` is written across it when no mini-batch was computed."""
    plt = _figure()
    edges, rates, cumulative = throughput_series(rows)
    fig, ax = plt.subplots(figsize=(8, 3.6))
    if edges:
        width = edges[0]
        ax.bar([e - width for e in edges], rates, width=width, align="edge", color="#4c78a8", label="items/s")
        twin = ax.twinx()
        twin.plot(edges, cumulative, color="#f58518", label="items finished")
        twin.set_ylabel("items finished")
        twin.set_ylim(bottom=0)
    else:
        ax.text(0.5, 0.5, empty, ha="center", transform=ax.transAxes)
    ax.set_xlabel("seconds since the first mini-batch started")
    ax.set_ylabel("items/s")
    ax.set_title(f"Throughput of run {run_name!r}")
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def plot_shard_durations(rows: list[dict], path: str, run_name: str,
                         empty: str = "no mini-batch computed in this run (all reused)") -> None:
    """``shard_durations.svg``: one bar per worker, its wall span and its busy time in run();
    ``empty`` is written across it when no mini-batch was computed."""
    plt = _figure()
    spans = shard_spans(rows)
    fig, ax = plt.subplots(figsize=(8, max(2.4, 0.45 * len(spans) + 1.4)))
    if spans:
        names = [f"{name} ({count} mini-batches)" for name, _, _, count in spans]
        positions = list(range(len(spans)))
        ax.barh(positions, [s[1] for s in spans], color="#bab0ac", label="wall span")
        ax.barh(positions, [s[2] for s in spans], height=0.4, color="#54a24b", label="busy in run()")
        ax.set_yticks(positions, names)
        ax.invert_yaxis()
        ax.legend(loc="lower right")
    else:
        ax.text(0.5, 0.5, empty, ha="center", transform=ax.transAxes)
    ax.set_xlabel("seconds")
    ax.set_title(f"Time per shard of run {run_name!r}")
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


SUMMARY_ROWS = (("status", "status"), ("items", "items"), ("succeeded", "succeeded"), ("failed", "failed"),
                ("mini_batches", "mini-batches"), ("failed_mini_batches", "failed mini-batches"),
                ("reused_mini_batches", "reused mini-batches"), ("computed_items", "items computed in this run"),
                ("reused_items", "items reused from earlier runs"), ("wall_s", "wall time (s)"),
                ("compute_s", "time in run() (s)"), ("items_per_s", "items/s"), ("output", "merged file"),
                ("output_uri", "uploaded to"), ("finished_at", "finished at"))
NOTHING_COMPUTED = "none computed in this run (all reused)"


def _cell(value) -> str:
    return f"<td{' class=n' if isinstance(value, (int, float)) else ''}>{html.escape(str(value))}</td>"


def summary_html(summary: dict, cause: str | None = None) -> str:
    """``summary.html``: the verdict as the heading (``Run NAME: failed``), then, for a run that
    failed, its cause (``cause``, else summary.json's ``error``, in full) and the shards whose
    entry script could not start; one row per SUMMARY_ROWS key present in ``summary``
    (summary.json; ``items/s`` of a run that computed nothing says so instead of ``None``, the
    merged file of a failed run is "none"), then the thresholds and their breaches."""
    rows = [(label, summary[key]) for key, label in SUMMARY_ROWS if key in summary]
    if summary.get("items_per_s") is None and summary.get("computed_items") == 0 and summary.get("items"):
        rows = [(label, NOTHING_COMPUTED if label == "items/s" else v) for label, v in rows]
    if summary.get("status") != "succeeded":
        rows = [(label, "none (the run failed)" if label == "merged file" and v is None else v) for label, v in rows]
    for name, value in (summary.get("thresholds") or {}).items():
        rows.append((name, "unset" if value is None else value))
    for breach in summary.get("threshold_breaches") or ():
        rows.append(("threshold exceeded", breach))
    body = "".join(f"<tr><th>{html.escape(str(label))}</th>{_cell(v)}</tr>" for label, v in rows)
    name = html.escape(str(summary.get("run_name", "")))
    status = html.escape(str(summary.get("status", "unknown")))
    text, cause = cause or summary.get("error"), ""
    if text:
        starts = "".join(f"<tr><td class=n>{html.escape(str(s.get('shard')))}</td><td><code>"
                         f"{html.escape(str(s.get('error', '')))}</code></td></tr>"
                         for s in summary.get("start_failures") or () if isinstance(s, dict))
        cause = (f"<h4>Cause</h4><pre id='cause'>{html.escape(str(text))}</pre>"
                 + (f"<table id='start_failures'><tr><th>shard</th><th>the entry script did not start</th></tr>"
                    f"{starts}</table>" if starts else ""))
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Summary of {name}</title>{_STYLE}</head>"
            f"<body><h3>Run {name}: {status}</h3>{cause}<table id='summary'>{body}</table></body></html>\n")


def failed_items_html(errors_path: str, limit: int = FAILED_ITEMS_SHOWN) -> str:
    """``failed_items.html``: the first ``limit`` failed items of ``errors.jsonl`` with their
    errors, and how many there are in all. Raises ManifestError naming the file."""
    report = read_error_report(errors_path, limit)
    rows, total = report.records, report.total
    shown = f"the first {len(rows)} of {total}" if total > len(rows) else f"all {total}"
    cells = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(r.get(k, '')))}</td>" for k in ("item", "mini_batch", "shard", "tries"))
        + f"<td><code>{html.escape(str(r.get('error', '')))}</code></td></tr>" for r in rows)
    table = ("<table id='failed'><tr><th>item</th><th>mini-batch</th><th>shard</th><th>tries</th><th>error</th></tr>"
             f"{cells}</table>") if rows else "<p>No item failed.</p>"
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Failed items</title>{_STYLE}</head><body>"
            f"<h3>Failed items: {shown}</h3>{table}<p>Every failed item with its traceback: errors.jsonl</p>"
            "</body></html>\n")


def _of_this_run(path: str, layout: RunLayout) -> bool:
    """Was ``path`` written by the invocation that wrote ``summary.json``, not left by an earlier
    one? (Not older than ``plan.json``, written when that invocation started its jobs; True
    without a plan.)"""
    try:
        return os.path.getmtime(path) >= os.path.getmtime(layout.plan) - 1
    except FileNotFoundError:
        return os.path.exists(path)


def _verdict_text(layout: RunLayout) -> str | None:
    """The root cause a failed run's console ended with, from ``logs/job_result.txt`` (written
    by gather, or by the workflow's ``onerror`` when no stage could): without its first lines
    (status, items, mini-batches: the table has them). None when that file is missing or left
    by an earlier run."""
    if not _of_this_run(layout.job_result, layout):
        return None
    with open(layout.job_result, encoding="utf-8", errors="replace") as handle:
        lines = handle.read().strip().split("\n")
    body = [line for line in lines if not line.startswith(("status: ", "items: ", "mini-batches: "))]
    return "\n".join(body) or None


def _no_error_report_html(summary: dict) -> str:
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Failed items</title>{_STYLE}</head><body>"
            "<h3>Failed items: no error report</h3><p>The run failed before gather counted its items: no error "
            "report was written in this run. The cause is in the summary"
            + (f": <code>{html.escape(str(summary['error']).split(chr(10), 1)[0])}</code>" if summary.get("error")
               else "") + ".</p></body></html>\n")


def write_report_files(run_dir: str) -> list[str]:
    """Write every file of REPORT_FILES into ``results/<run>/report/`` (see module doc); returns
    their paths in that order. A run that failed gets them too: the summary with its verdict and
    cause, the failed items gather reported; plots and failed items are empty, saying why, when
    gather wrote no report in that run (an entry script that did not start, a shard job that
    failed: reports older than ``plan.json`` belong to an earlier run and are left out). Raises
    ManifestError naming a missing summary (no run finished here) or a corrupt input."""
    layout = RunLayout(run_dir)
    summary = aggregate.read_summary(layout.summary)
    failed = summary.get("status") != "succeeded"
    fresh = not failed or _of_this_run(layout.processed_mini_batches, layout)
    rows = read_processed(layout.processed_mini_batches) if fresh else []
    run_name = str(summary.get("run_name", os.path.basename(os.path.normpath(run_dir))))
    paths = [layout.report_file(name) for name in REPORT_FILES]
    os.makedirs(layout.report_dir, exist_ok=True)
    write_text_atomic(paths[0], summary_html(summary, _verdict_text(layout) if failed else None))
    empty = "no mini-batch computed in this run (all reused)" if fresh else "no mini-batch finished in this run"
    plot_throughput(rows, paths[1], run_name, empty)
    plot_shard_durations(rows, paths[2], run_name, empty)
    if failed and not _of_this_run(layout.errors, layout):
        write_text_atomic(paths[3], _no_error_report_html(summary))
    else:
        write_text_atomic(paths[3], failed_items_html(layout.errors))
    try:
        with open(layout.config_used, encoding="utf-8") as handle:
            config_text = handle.read()
    except FileNotFoundError:
        config_text = f"# {layout.config_used} is missing: the run started before snakebatch recorded its config\n"
    write_text_atomic(paths[4], config_text)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m snakebatch.monitor.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", required=True, help="results/{run_name}")
    args = parser.parse_args(argv)
    try:
        paths = write_report_files(args.run_dir)
    except SnakebatchError as exc:
        print(f"snakebatch reporting: error: {exc}", file=sys.stderr)
        return 1
    print("snakebatch reporting: wrote " + ", ".join(paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
