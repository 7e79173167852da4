"""Benchmark: rows/s of tabular input (CSV, Parquet) through a whole snakebatch run.

    python scripts/benchmark_tabular.py [--rows 10000000] [--cores N] [--mini-batch-size 16MB]
                                        [--files 4] [--no-txt] [--keep DIR]

Generates ``--rows`` rows (numpy, fixed seed: an int ``id`` 0..N-1, three float columns, a small
int column and a short string column) as ``--files`` CSV files and as many Parquet files (pyarrow's
default row groups) in a temporary folder, then for each case runs ``python -m snakemake --cores N``
in a temporary copy of the workflow (as ``tests/e2e`` does) with an identity entry script
(``run(mini_batch)`` returns the DataFrame it gets) and ``input.type: tabular``:

- CSV input -> ``append_row_format: csv``
- Parquet input -> ``append_row_format: parquet``
- CSV input -> ``append_row_format: txt`` (unless ``--no-txt``)

and times the whole ``snakemake`` command (wall clock, start-up and scheduling included). The
stages are split from the files they leave behind: partition ends when ``logs/partition.log`` was
last written, infer when the last ``shards/shard-*.jsonl`` was, gather when ``_SUCCESS`` was;
``summary.json``'s ``wall_s`` (first mini-batch start to last mini-batch end) and ``compute_s`` (sum
of mini-batch durations) come from the run itself.

The baseline is pandas in this one process: ``pd.read_csv`` / ``pd.read_parquet`` of the same
files, one after the other (read only; and read + write of the same output format, which is what
the identity run does end to end).

At the end each merged output is checked cheaply: its row count equals ``--rows`` and its ``id``
column is 0..N-1 in order (input order, exactly once). Figures, never assertions: a failed check
is printed, not raised.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COPIED = ["Snakefile", "workflow", "profiles", "scripts", "config"]
SEED = 20240601
WORDS = np.array(["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta", "iota", "kappa",
                  "lambda", "mu", "nu", "xi", "omicron", "pi", "rho", "sigma", "tau", "upsilon"])

IDENTITY = """
def init():
    pass


def run(mini_batch):
    return mini_batch
"""


# ------------------------------------------------------------------------------------- data
def make_table(rng: np.random.Generator, first: int, rows: int) -> pa.Table:
    """``rows`` rows with ids first..first+rows-1."""
    words = rng.integers(0, len(WORDS), rows)
    suffix = rng.integers(0, 1000, rows)
    return pa.table({
        "id": pa.array(np.arange(first, first + rows, dtype=np.int64)),
        "x": pa.array(rng.standard_normal(rows)),
        "y": pa.array(rng.uniform(0.0, 1000.0, rows).round(3)),
        "z": pa.array(rng.exponential(2.0, rows).astype(np.float32)),
        "count": pa.array(rng.integers(0, 100, rows, dtype=np.int32)),
        "label": pa.compute.binary_join_element_wise(
            pa.array(WORDS[words]), pa.array(suffix.astype(str)), "-"),
    })


def generate(folder: str, rows: int, files: int) -> tuple[str, str]:
    """Write ``rows`` rows as ``files`` CSV files and ``files`` Parquet files; return the two folders."""
    import pyarrow.compute  # noqa: F401 - pa.compute

    csv_dir, parquet_dir = os.path.join(folder, "csv"), os.path.join(folder, "parquet")
    os.makedirs(csv_dir)
    os.makedirs(parquet_dir)
    rng = np.random.default_rng(SEED)
    bounds = np.linspace(0, rows, files + 1).astype(np.int64)
    for index in range(files):
        first, last = int(bounds[index]), int(bounds[index + 1])
        table = make_table(rng, first, last - first)
        pacsv.write_csv(table, os.path.join(csv_dir, f"part-{index:03d}.csv"))
        pq.write_table(table, os.path.join(parquet_dir, f"part-{index:03d}.parquet"))
    return csv_dir, parquet_dir


def folder_bytes(folder: str) -> int:
    return sum(os.path.getsize(p) for p in glob.glob(os.path.join(folder, "*")))


# --------------------------------------------------------------------------------- snakebatch
def copy_workflow(root: str) -> None:
    os.makedirs(root)
    for name in COPIED:
        source = os.path.join(REPO, name)
        if os.path.isdir(source):
            shutil.copytree(source, os.path.join(root, name), ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, os.path.join(root, name))


# Runs its arguments as a command, then writes the peak RSS (KiB) of the largest process of that
# command's tree (snakemake, its job shells, runners and workers: ru_maxrss of waited-for children).
PEAK_RSS = """
import resource, subprocess, sys
code = subprocess.call(sys.argv[2:])
with open(sys.argv[1], "w") as handle:
    handle.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(code)
"""


def run_snakebatch(root: str, run_name: str, data: str, output_format: str, cores: int,
                   mini_batch_size: str, script: str, log) -> dict:
    """Run the workflow copy in ``root`` once; return timings and where the merged file is."""
    name = {"csv": "merged.csv", "parquet": "merged.parquet", "txt": "merged.txt"}[output_format]
    config = {
        "run_name": run_name,
        "input": {"path": data, "type": "tabular"},
        "entry_script": script,
        "mini_batch_size": mini_batch_size,
        "append_row_format": output_format,
        "append_row_file_name": name,
        "logging_level": "WARNING",
    }
    with open(os.path.join(root, "config", "config.yaml"), "w", encoding="utf-8") as handle:
        yaml.safe_dump(config, handle)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    rss_file = os.path.join(root, f"peak-rss-{run_name}.txt")
    command = [sys.executable, "-c", PEAK_RSS, rss_file, sys.executable, "-m", "snakemake", "--cores", str(cores)]
    start_wall = time.time()
    start = time.perf_counter()
    proc = subprocess.run(command, check=False, cwd=root, capture_output=True, text=True, env=env)
    total = time.perf_counter() - start
    end_wall = time.time()
    with open(os.path.join(root, f"snakemake-{run_name}.log"), "w", encoding="utf-8") as handle:
        handle.write(proc.stdout + "\n--- stderr ---\n" + proc.stderr)
    run_dir = os.path.join(root, "results", run_name)
    out = {"ok": proc.returncode == 0, "total_s": total, "merged": os.path.join(run_dir, name),
           "returncode": proc.returncode}
    try:
        with open(rss_file, encoding="utf-8") as handle:
            out["peak_rss_mib"] = int(handle.read()) / 1024
    except (OSError, ValueError):
        pass
    if proc.returncode != 0:
        log(f"  snakemake failed ({proc.returncode}); last output:\n{(proc.stdout + proc.stderr)[-4000:]}")
        return out

    def mtime(path):
        return os.stat(path).st_mtime if os.path.exists(path) else None

    partition_end = mtime(os.path.join(run_dir, "logs", "partition.log"))
    shard_ends = [os.stat(p).st_mtime for p in glob.glob(os.path.join(run_dir, "shards", "shard-*.jsonl"))]
    infer_end = max(shard_ends) if shard_ends else None
    gather_end = mtime(os.path.join(run_dir, "_SUCCESS"))
    if None not in (partition_end, infer_end, gather_end):
        out["stages"] = {
            "start-up + partition": partition_end - start_wall,
            "infer": infer_end - partition_end,
            "gather": gather_end - infer_end,
            "shutdown": end_wall - gather_end,
        }
    try:
        with open(os.path.join(run_dir, "summary.json"), encoding="utf-8") as handle:
            summary = json.load(handle)
        out["summary"] = summary
    except (OSError, ValueError):
        pass
    try:
        with open(os.path.join(run_dir, "logs", "partition.log"), encoding="utf-8") as handle:
            out["partition_line"] = handle.read().strip().splitlines()[-1]
    except (OSError, IndexError):
        pass
    out["store_bytes"] = sum(os.path.getsize(p) for p in glob.glob(os.path.join(run_dir, "minibatches", "**", "*"),
                                                                   recursive=True) if os.path.isfile(p))
    out["shard_bytes"] = sum(os.path.getsize(p) for p in glob.glob(os.path.join(run_dir, "shards", "shard-*.jsonl")))
    out["merged_bytes"] = os.path.getsize(out["merged"]) if os.path.exists(out["merged"]) else 0
    return out


# ------------------------------------------------------------------------------------- pandas
def pandas_baseline(folder: str, fmt: str, output_format: str, scratch: str, write: bool) -> dict:
    files = sorted(glob.glob(os.path.join(folder, "*")))
    start = time.perf_counter()
    frames = [pd.read_csv(p) if fmt == "csv" else pd.read_parquet(p) for p in files]
    read_s = time.perf_counter() - start
    rows = sum(len(f) for f in frames)
    out = {"read_s": read_s, "rows": rows}
    if write:
        start = time.perf_counter()
        target = os.path.join(scratch, f"pandas-out.{output_format}")
        frame = pd.concat(frames, ignore_index=True)
        if output_format == "csv":
            frame.to_csv(target, index=False)
        elif output_format == "parquet":
            frame.to_parquet(target, index=False)
        else:
            frame.to_csv(target, sep=" ", header=False, index=False)
        out["write_s"] = time.perf_counter() - start
        os.unlink(target)
    return out


# --------------------------------------------------------------------------------- correctness
def check_output(path: str, output_format: str, rows: int) -> str:
    """Row count of the merged file, and whether its ids are 0..rows-1 in order."""
    if not os.path.exists(path):
        return "no merged file"
    if output_format == "parquet":
        count = pq.ParquetFile(path).metadata.num_rows
        ids = pq.read_table(path, columns=["id"]).column("id").to_numpy()
    elif output_format == "csv":
        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(include_columns=["id"]))
        count = table.num_rows
        ids = table.column("id").to_numpy()
    else:  # txt: space-separated, no header; id is the first field
        table = pacsv.read_csv(path, read_options=pacsv.ReadOptions(autogenerate_column_names=True),
                               parse_options=pacsv.ParseOptions(delimiter=" "),
                               convert_options=pacsv.ConvertOptions(include_columns=["f0"]))
        count = table.num_rows
        ids = table.column("f0").to_numpy()
    in_order = count == rows and bool(np.array_equal(ids, np.arange(rows, dtype=ids.dtype)))
    verdict = "OK" if count == rows and in_order else "MISMATCH"
    return f"{verdict}: {count} rows (expected {rows}), ids 0..N-1 in order: {in_order}"


# ---------------------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows of the dataset (default 10 million)")
    parser.add_argument("--cores", type=int, default=os.cpu_count(), help="snakemake --cores (default: all)")
    parser.add_argument("--mini-batch-size", default="16MB", help="tabular mini_batch_size (default 16MB)")
    parser.add_argument("--files", type=int, default=4, help="files per format (default 4)")
    parser.add_argument("--no-txt", action="store_true", help="skip the CSV -> txt run")
    parser.add_argument("--no-pandas-write", action="store_true", help="time pandas reading only")
    parser.add_argument("--keep", metavar="DIR", help="work in DIR (kept) instead of a temporary folder")
    args = parser.parse_args()

    def log(text):
        print(text, flush=True)

    tmp = args.keep or tempfile.mkdtemp(prefix="snakebatch-bench-")
    os.makedirs(tmp, exist_ok=True)
    try:
        log(f"machine: {os.cpu_count()} cores; snakemake --cores {args.cores}; rows {args.rows:,}; "
            f"mini_batch_size {args.mini_batch_size}; {args.files} files per format; work dir {tmp}")
        start = time.perf_counter()
        csv_dir, parquet_dir = generate(os.path.join(tmp, "data"), args.rows, args.files)
        log(f"data: generated in {time.perf_counter() - start:.1f} s: CSV {folder_bytes(csv_dir) / 2**20:.1f} MiB, "
            f"Parquet {folder_bytes(parquet_dir) / 2**20:.1f} MiB "
            f"({pq.ParquetFile(glob.glob(os.path.join(parquet_dir, '*'))[0]).metadata.num_row_groups} "
            f"row group(s) in the first file)")
        script = os.path.join(tmp, "identity.py")
        with open(script, "w", encoding="utf-8") as handle:
            handle.write(IDENTITY)
        root = os.path.join(tmp, "wf")
        copy_workflow(root)

        cases = [("CSV", "csv", csv_dir, "csv"), ("Parquet", "parquet", parquet_dir, "parquet")]
        if not args.no_txt:
            cases.append(("CSV", "csv", csv_dir, "txt"))
        rows_out = []
        for label, fmt, data, output_format in cases:
            run_name = f"bench-{fmt}-{output_format}"
            log(f"\n{label} -> {output_format}: snakemake --cores {args.cores} ...")
            sb = run_snakebatch(root, run_name, data, output_format, args.cores, args.mini_batch_size, script, log)
            log(f"  snakebatch: {sb['total_s']:.1f} s wall ({'ok' if sb['ok'] else 'FAILED'}); peak RSS of its "
                f"largest process {sb.get('peak_rss_mib', float('nan')):.0f} MiB")
            if "partition_line" in sb:
                log(f"  {sb['partition_line']}")
            for stage, seconds in sb.get("stages", {}).items():
                log(f"    {stage:<22} {seconds:8.1f} s")
            summary = sb.get("summary") or {}
            if "wall_s" in summary:
                log(f"    summary.json: infer wall_s {summary['wall_s']} (first mini-batch start to last end), "
                    f"compute_s {summary.get('compute_s')} (sum over mini-batches), "
                    f"items_per_s {summary.get('items_per_s')}")
            if sb["ok"]:
                log(f"    bytes: merged {sb['merged_bytes'] / 2**20:.1f} MiB, shard results "
                    f"{sb['shard_bytes'] / 2**20:.1f} MiB, mini-batch store {sb['store_bytes'] / 2**20:.1f} MiB")
            log(f"  pandas in one process: reading {label} ...")
            pd_times = pandas_baseline(data, fmt, output_format, tmp, not args.no_pandas_write)
            log(f"    read {pd_times['read_s']:.1f} s ({pd_times['rows']:,} rows)"
                + (f", + write {output_format} {pd_times['write_s']:.1f} s" if "write_s" in pd_times else ""))
            start = time.perf_counter()
            check = check_output(sb["merged"], output_format, args.rows) if sb["ok"] else "run failed"
            log(f"  check ({time.perf_counter() - start:.1f} s): {check}")
            rows_out.append((label, output_format, sb, pd_times, check))
            shutil.rmtree(os.path.join(root, "results", run_name), ignore_errors=True)  # disk

        log(f"\nrows {args.rows:,}, machine cores {os.cpu_count()}, snakemake --cores {args.cores}, "
            f"mini_batch_size {args.mini_batch_size}, identity entry script")
        header = (f"{'input':<8} {'output':<8} {'rows':>11} {'snakebatch s':>12} {'rows/s':>11} "
                  f"{'pandas read s':>13} {'rows/s':>11} {'ratio':>6} {'pandas r+w s':>12} {'ratio':>6}  check")
        log(header)
        log("-" * len(header))
        for label, output_format, sb, pd_times, check in rows_out:
            sb_s, read_s = sb["total_s"], pd_times["read_s"]
            rw_s = read_s + pd_times["write_s"] if "write_s" in pd_times else None
            log(f"{label:<8} {output_format:<8} {args.rows:>11,} {sb_s:>12.1f} {args.rows / sb_s:>11,.0f} "
                f"{read_s:>13.1f} {args.rows / read_s:>11,.0f} {sb_s / read_s:>5.1f}x "
                + (f"{rw_s:>12.1f} {sb_s / rw_s:>5.1f}x" if rw_s else f"{'-':>12} {'-':>6}")
                + f"  {check.split(':')[0]}")
        log("ratio = snakebatch seconds / pandas seconds (higher = snakebatch slower); "
            "snakebatch seconds = the whole snakemake command")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
