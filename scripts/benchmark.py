"""Benchmark: snakebatch against the jobs it replaces, side by side in one invocation (issue 14).

    python scripts/benchmark.py images    [--images 20000] [--repeat 2] [--cores 2] [--mini-batch-size 500]
    python scripts/benchmark.py tables    [--rows 10000000] [--files 4] [--repeat 2] [--cores 2]
    python scripts/benchmark.py partition [--files 1000000] [--cores 2]
    python scripts/benchmark.py gather    [--lines 10000000] [--cores 2]
    python scripts/benchmark.py skew      [--items 240] [--mini-batch-size 10] [--repeat 2] [--cores 2]
    python scripts/benchmark.py shards    [--shards 1000] [--files-per-shard 2] [--cores 2] [--no-run]
    (every sub-command: [--json FILE] [--keep DIR] [--peers a,b,c])

Each sub-command generates its data in a temporary folder (``--keep DIR``: in DIR, kept), runs its
cases alternating (case 1, case 2, ..., case 1, case 2, ...) ``--repeat`` times, prints a Markdown
table of the medians and writes every figure as JSON (``--json``, default
``benchmark-{sub-command}.json`` in the working directory). Figures, never assertions.

- ``images``: ``--images`` 28x28 grayscale PNG digits (the demo's UCI digits, cycled) and the demo's
  Keras MLP 784-300-100-10 (``scripts/demo_data.py model``). Cases: **snakebatch** (``python -m
  snakemake --cores N`` in a temporary copy of the workflow, the demo entry script
  ``scripts/digit_identification.py``, ``threads_per_process: 1``, ``allow_reuse: false``, results
  folder removed before each run: listing, partition, shards and gather every time); **loop** (one
  process: decode, ``model(images)`` ``--mini-batch-size`` at a time, write the lines; the numeric
  libraries' default thread pools); **split** (the ideal split: ``--cores`` processes of that loop,
  each over its contiguous part of the sorted files, one thread each, outputs concatenated);
  **ray** (when ``ray`` is importable, ``pip install -e ".[bench]"``: ``ray.data.read_images`` ->
  ``map_batches`` with an actor pool of ``--cores`` actors, ``num_cpus=0.5`` each, output sorted
  by path). Every case's output is checked line for line against the loop's.
- ``tables``: ``--rows`` rows as ``--files`` CSV and Parquet files (``scripts/benchmark_tabular.py``'s
  data). Cases: snakebatch with an identity entry script CSV -> csv and Parquet -> parquet, against
  pandas reading and writing the same files in this one process.
- ``skew``: ``--items`` small files whose item costs ``--slow`` s (the last half of the sorted
  order) or ``--fast`` s (the first half; run() sleeps that long per item), on ``--cores`` shards
  with ``mini_batch_size`` ``--mini-batch-size`` (issue 14 item 4). Cases: snakebatch on the
  skewed files; the same with ``balance_shards: false`` (contiguous shards only); snakebatch on
  the same costs interleaved (fast, slow, fast, ...), which contiguous shards split evenly.
  Prints the walls and the ratio skewed / interleaved (target <= 1.15).
- ``partition``: ``--files`` empty files in one folder; one snakebatch run (trivial entry script,
  ``mini_batch_size`` 1000): time to the end of partition (parse-time listing included) and peak
  RSS of the main snakemake process and of the partition job.
- ``gather``: a one-column CSV of ``--lines`` rows through an identity script to ``txt``: the gather
  stage's time (from the last shard file to ``_SUCCESS``) and peak RSS.
- ``shards``: many shards with trivial work: ``--shards`` x ``--files-per-shard`` one-line files,
  ``node_count`` x ``process_count_per_node`` = ``--shards``, one file per mini-batch, a trivial
  entry script. The dry run (``snakemake -n``, wall and CPU seconds) and, unless ``--no-run``, the
  whole run with ``--cores`` (wall, CPU, stages), next to Snakemake's own cost for the same DAG: a
  Snakefile of ``touch`` shell jobs (partition -> one job per shard -> gather), dry and run. The
  difference is what snakebatch adds per shard job (the runner's and its worker's Python start).

Peak RSS is sampled (psutil, every 0.2 s) over the process tree of each case and reported by role:
``main`` (snakemake, or the case's only process), ``partition``, ``runner`` (shard jobs), ``worker``
(the processes a runner spawns), ``gather``, ``other``; ``peak MiB`` in the table is the largest
single process. Stage times of a snakebatch run come from the files it leaves (partition log,
shard files, ``_SUCCESS``), as in ``benchmark_tabular.py``.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import psutil
import resource
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "scripts"))
COPIED = ["Snakefile", "workflow", "profiles", "scripts", "config"]

# ------------------------------------------------------------------------------- child scripts
# The hand-written loop: the demo entry script's work without snakebatch. argv: model file, a file
# listing the PNG paths (one per line), first, stop (positions in that list), mini-batch size, out.
LOOP = r"""
import os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
from PIL import Image
import keras
model_file, listing, first, stop, size, out = sys.argv[1:7]
with open(listing, encoding="utf-8") as handle:
    paths = handle.read().split("\n")[int(first):int(stop)]
model = keras.models.load_model(model_file)
size = int(size)
with open(out, "w", encoding="utf-8") as handle:
    for start in range(0, len(paths), size):
        batch = paths[start:start + size]
        images = np.stack([np.asarray(Image.open(p).convert("L"), dtype=np.float32).reshape(784) / 255.0
                           for p in batch])
        digits = np.argmax(model(images, training=False).numpy(), axis=1)
        handle.write("".join(f"{os.path.basename(p)}: {d}\n" for p, d in zip(batch, digits)))
"""

# Ray Data doing the same job. argv: model file, image folder, mini-batch size, actors, out.
RAY = r"""
import os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import ray
model_file, folder, size, actors, out = sys.argv[1:6]
ray.init(num_cpus=int(actors), include_dashboard=False, log_to_driver=False)


class Predict:
    def __init__(self):
        import keras
        self.model = keras.models.load_model(model_file)

    def __call__(self, batch):
        images = np.stack([np.asarray(i, dtype=np.float32).reshape(784) / 255.0 for i in batch["image"]])
        digits = np.argmax(self.model(images, training=False).numpy(), axis=1)
        return {"path": np.asarray(batch["path"]), "digit": digits}


ds = ray.data.read_images(folder, mode="L", include_paths=True, file_extensions=["png"])
frame = ds.map_batches(Predict, batch_size=int(size), concurrency=int(actors), num_cpus=0.5).to_pandas()
frame = frame.sort_values("path", kind="stable")
with open(out, "w", encoding="utf-8") as handle:
    handle.write("".join(f"{os.path.basename(p)}: {d}\n" for p, d in zip(frame["path"], frame["digit"])))
"""

TRIVIAL = """
import os


def run(mini_batch):
    return [os.path.basename(p) for p in mini_batch]
"""

IDENTITY = """
def run(mini_batch):
    return mini_batch
"""


# ------------------------------------------------------------------------------- measuring
def _role(proc: psutil.Process, top: int, runners: set) -> str:
    try:
        cmd = " ".join(proc.cmdline())
        parent = proc.ppid()
    except psutil.Error:
        return "other"
    if proc.pid == top:
        return "main"
    for name in ("partition", "runner", "gather"):
        if f"snakebatch.{name}" in cmd:
            if name == "runner":
                runners.add(proc.pid)
            return name
    if parent in runners or "snakebatch.infer.worker" in cmd or "keras.models.load_model" in cmd or cmd.startswith("ray::"):
        return "worker"
    return "other"


def timed(command: list[str], cwd: str, env: dict | None = None, log_path: str | None = None) -> dict:
    """Run ``command``; return {wall_s, cpu_s, returncode, peak_rss_mib: {role: MiB}, peak_tree_mib}.

    ``cpu_s`` is user + system CPU seconds of the command and every descendant it waited for.
    RSS is sampled every 0.2 s over the process tree (psutil); the final sample of a short-lived
    process may be missed, so the figures are lower bounds."""
    out_handle = open(log_path, "w", encoding="utf-8") if log_path else subprocess.DEVNULL
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=out_handle, stderr=subprocess.STDOUT)
    peaks: dict[str, float] = {}
    tree_peak = [0.0]
    runners: set = set()
    done = threading.Event()

    def sample():
        top = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                procs = [top, *top.children(recursive=True)]
            except psutil.Error:
                procs = []
            total = 0.0
            for child in procs:
                try:
                    rss = child.memory_info().rss / 2**20
                except psutil.Error:
                    continue
                total += rss
                role = _role(child, proc.pid, runners)
                peaks[role] = max(peaks.get(role, 0.0), rss)
            tree_peak[0] = max(tree_peak[0], total)
            done.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = proc.wait()
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    if log_path:
        out_handle.close()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    return {"wall_s": wall, "cpu_s": round(cpu, 2), "returncode": code,
            "peak_rss_mib": {k: round(v, 1) for k, v in peaks.items()},
            "peak_tree_mib": round(tree_peak[0], 1)}


def copy_workflow(root: str) -> None:
    """A copy of the workflow (Snakefile, workflow/, profiles/, scripts/, config/) in ``root``,
    made afresh (a kept ``--keep`` folder gets this checkout's code; its results stay)."""
    os.makedirs(root, exist_ok=True)
    for name in COPIED:
        source, target = os.path.join(REPO, name), os.path.join(root, name)
        if os.path.isdir(target):
            shutil.rmtree(target)
        if os.path.isdir(source):
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "results", ".snakemake"))
        else:
            shutil.copy2(source, target)


def run_snakebatch(root: str, config: dict, cores: int, label: str) -> dict:
    """One whole ``python -m snakemake --cores N`` run of ``config`` in the workflow copy ``root``
    (its results folder removed first); timings, stages and RSS."""
    run_dir = os.path.join(root, "results", config["run_name"])
    shutil.rmtree(run_dir, ignore_errors=True)
    with open(os.path.join(root, "config", "config.yaml"), "w", encoding="utf-8") as handle:
        yaml.safe_dump(config, handle)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    begin = time.time()
    out = timed([sys.executable, "-m", "snakemake", "--cores", str(cores)], root, env,
                os.path.join(root, f"snakemake-{label}.log"))
    end = time.time()
    out["merged"] = os.path.join(run_dir, config.get("append_row_file_name", "parallel_run_step.txt"))

    def mtime(path):
        return os.stat(path).st_mtime if os.path.exists(path) else None

    partition_end = mtime(os.path.join(run_dir, "logs", "partition.log"))
    shard_ends = [os.stat(p).st_mtime for p in glob.glob(os.path.join(run_dir, "shards", "shard-*.jsonl"))]
    gather_end = mtime(os.path.join(run_dir, "_SUCCESS"))
    if partition_end and shard_ends and gather_end:
        out["stages_s"] = {"start-up + listing + partition": round(partition_end - begin, 2),
                           "shards": round(max(shard_ends) - partition_end, 2),
                           "gather": round(gather_end - max(shard_ends), 2),
                           "shutdown": round(end - gather_end, 2)}
    if out["returncode"] != 0:
        with open(os.path.join(root, f"snakemake-{label}.log"), encoding="utf-8") as handle:
            print(f"  snakemake failed ({out['returncode']}):\n{handle.read()[-3000:]}", flush=True)
    return out


def median_rows(results: dict, items: int, reference: str) -> list[dict]:
    """One row per case: median wall over its runs, items/s, largest-process peak RSS, ratio to
    ``reference``'s median."""
    rows = []
    medians = {case: statistics.median(r["wall_s"] for r in runs) for case, runs in results.items() if runs}
    for case, runs in results.items():
        if not runs:
            continue
        walls = [r["wall_s"] for r in runs]
        peak = max(max(r["peak_rss_mib"].values(), default=0.0) for r in runs)
        rows.append({"case": case, "runs_s": [round(w, 2) for w in walls], "median_s": round(medians[case], 2),
                     "items_per_s": round(items / medians[case], 1), "peak_mib": round(peak, 1),
                     "ratio": round(medians[case] / medians[reference], 3) if reference in medians else None,
                     "ok": all(r.get("ok", r["returncode"] == 0) for r in runs)})
    return rows


def markdown(rows: list[dict], reference: str, unit: str) -> str:
    lines = [f"| case | runs (s) | median (s) | {unit}/s | peak RSS, largest process (MiB) | × {reference} | output |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        ratio = f"{row['ratio']:.2f}" if row["ratio"] is not None else "-"
        lines.append(f"| {row['case']} | {', '.join(f'{w:.1f}' for w in row['runs_s'])} | {row['median_s']:.1f} | "
                     f"{row['items_per_s']:,.0f} | {row['peak_mib']:.0f} | {ratio} | "
                     f"{'same' if row['ok'] else 'DIFFERS/FAILED'} |")
    return "\n".join(lines)


def same_lines(path: str, expected: str) -> bool:
    """True when the file ``path`` has exactly the bytes of ``expected`` (a file)."""
    if not (os.path.exists(path) and os.path.exists(expected)):
        return False
    with open(path, "rb") as a, open(expected, "rb") as b:
        while True:
            x, y = a.read(1 << 20), b.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


def peers_available(wanted: set) -> set:
    if "ray" in wanted:
        try:
            import ray  # noqa: F401
        except ImportError:
            print("ray is not installed (pip install -e \".[bench]\"): the Ray Data case is left out", flush=True)
            wanted = wanted - {"ray"}
    return wanted


def generated(folder: str, make) -> str:
    """``folder``, made by ``make(tmp)`` in a temporary sibling renamed into place, so a killed
    benchmark never leaves a half-made dataset that a ``--keep`` rerun would take as done."""
    if not os.path.isdir(folder):
        tmp = folder + f".tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        start = time.perf_counter()
        make(tmp)
        os.rename(tmp, folder)
        print(f"data: {folder} made in {time.perf_counter() - start:.1f} s", flush=True)
    return folder


# ------------------------------------------------------------------------------- images
def make_images(folder: str, count: int) -> list[str]:
    """``count`` PNG digits ``{i:07d}.png`` in ``folder`` (the demo's test digits, cycled);
    returns their paths, sorted."""
    import io

    import numpy as np
    from PIL import Image

    from demo_data import split

    os.makedirs(folder, exist_ok=True)
    _, x_test, _, _ = split()
    encoded = []
    for pixels in x_test:
        buffer = io.BytesIO()
        Image.fromarray(np.asarray(pixels, dtype=np.uint8), mode="L").save(buffer, format="PNG")
        encoded.append(buffer.getvalue())
    paths = []
    for i in range(count):
        path = os.path.join(folder, f"{i:07d}.png")
        with open(path, "wb") as handle:
            handle.write(encoded[i % len(encoded)])
        paths.append(path)
    return paths


def bench_images(args, work: str) -> dict:
    data = generated(os.path.join(work, f"images-{args.images}"), lambda tmp: make_images(tmp, args.images))
    paths = sorted(glob.glob(os.path.join(data, "*.png")))
    print(f"data: {len(paths):,} PNG files", flush=True)
    model_dir = os.path.join(work, "model")
    if not os.path.exists(os.path.join(model_dir, "mnist.keras")):
        subprocess.run([sys.executable, os.path.join(REPO, "scripts", "demo_data.py"), "model", "--out", model_dir],
                       check=True, cwd=REPO, env={**os.environ, "PYTHONPATH": os.path.join(REPO, "workflow")})
    model_file = os.path.join(model_dir, "mnist.keras")
    listing = os.path.join(work, "listing.txt")
    with open(listing, "w", encoding="utf-8") as handle:
        handle.write("\n".join(paths))
    root = os.path.join(work, "wf")
    copy_workflow(root)
    config = {"run_name": "bench-images", "input": {"path": data}, "entry_script": "scripts/digit_identification.py",
              "models": {"mnist": model_dir}, "mini_batch_size": args.mini_batch_size, "threads_per_process": 1,
              "allow_reuse": False, "logging_level": "WARNING"}
    one_thread = {"OMP_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
                  "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    expected = os.path.join(work, "loop.txt")

    def loop():
        out = timed([sys.executable, "-c", LOOP, model_file, listing, "0", str(len(paths)), str(args.mini_batch_size),
                     expected], work)
        out["ok"] = out["returncode"] == 0
        return out

    def split_case():
        bounds = [round(i * len(paths) / args.cores) for i in range(args.cores + 1)]
        parts = [os.path.join(work, f"split-{i}.txt") for i in range(args.cores)]
        # one driver process starts the parts at once and waits for all: the tree is measured as one
        driver = ("import json, subprocess, sys\n"
                  "procs = [subprocess.Popen(a) for a in json.loads(sys.argv[1])]\n"
                  "sys.exit(max(p.wait() for p in procs))\n")
        commands = [[sys.executable, "-c", LOOP, model_file, listing, str(bounds[i]), str(bounds[i + 1]),
                     str(args.mini_batch_size), parts[i]] for i in range(args.cores)]
        out = timed([sys.executable, "-c", driver, json.dumps(commands)], work, {**os.environ, **one_thread})
        merged = os.path.join(work, "split.txt")
        with open(merged, "wb") as target:
            for part in parts:
                with open(part, "rb") as source:
                    shutil.copyfileobj(source, target)
        out["ok"] = out["returncode"] == 0 and same_lines(merged, expected)
        return out

    def snakebatch():
        out = run_snakebatch(root, config, args.cores, "images")
        out["ok"] = out["returncode"] == 0 and same_lines(out["merged"], expected)
        return out

    def ray_case():
        target = os.path.join(work, "ray.txt")
        out = timed([sys.executable, "-c", RAY, model_file, data, str(args.mini_batch_size), str(args.cores), target],
                    work, log_path=os.path.join(work, "ray.log"))
        out["ok"] = out["returncode"] == 0 and same_lines(target, expected)
        return out

    cases = {"loop (1 process)": loop, f"ideal split ({args.cores} processes)": split_case,
             f"snakebatch --cores {args.cores}": snakebatch}
    if "ray" in peers_available(set(args.peers)):
        cases[f"Ray Data (actor pool of {args.cores})"] = ray_case
    chosen = {"loop": "loop (1 process)", "split": f"ideal split ({args.cores} processes)",
              "snakebatch": f"snakebatch --cores {args.cores}", "ray": f"Ray Data (actor pool of {args.cores})"}
    wanted = {chosen[c] for c in args.cases if c in chosen} | {"loop (1 process)"}  # the loop's output is the check
    cases = {name: case for name, case in cases.items() if name in wanted}
    return run_cases(cases, args.repeat, len(paths), f"ideal split ({args.cores} processes)", "images",
                     {"images": len(paths), "mini_batch_size": args.mini_batch_size, "cores": args.cores})


def run_cases(cases: dict, repeat: int, items: int, reference: str, unit: str, settings: dict) -> dict:
    """Run ``cases`` ({name: callable -> measurement}) alternating, ``repeat`` rounds; print and
    return the table and every measurement."""
    results: dict[str, list] = {name: [] for name in cases}
    for round_ in range(1, repeat + 1):
        for name, case in cases.items():
            out = case()
            results[name].append(out)
            print(f"round {round_}: {name}: {out['wall_s']:.1f} s, ok={out.get('ok')}, "
                  f"peak RSS by role (MiB) {out['peak_rss_mib']}" + (f", stages {out['stages_s']}" if "stages_s" in out
                                                                     else ""), flush=True)
    rows = median_rows(results, items, reference)
    table = markdown(rows, reference, unit)
    print(f"\n{', '.join(f'{k} {v}' for k, v in settings.items())}; machine: {os.cpu_count()} cores\n\n{table}\n",
          flush=True)
    return {"settings": settings, "rows": rows, "table": table, "runs": results}


# ------------------------------------------------------------------------------- tables
def bench_tables(args, work: str) -> dict:
    import benchmark_tabular as bt

    data = generated(os.path.join(work, f"tables-{args.rows}"), lambda tmp: bt.generate(tmp, args.rows, args.files))
    csv_dir, parquet_dir = os.path.join(data, "csv"), os.path.join(data, "parquet")
    script = os.path.join(work, "identity.py")
    with open(script, "w", encoding="utf-8") as handle:
        handle.write(IDENTITY)
    root = os.path.join(work, "wf")
    copy_workflow(root)

    def snakebatch(fmt, folder):
        def case():
            config = {"run_name": f"bench-{fmt}", "input": {"path": folder, "type": "tabular"}, "entry_script": script,
                      "mini_batch_size": args.mini_batch_size, "append_row_format": fmt,
                      "append_row_file_name": f"merged.{fmt}", "allow_reuse": False, "logging_level": "WARNING"}
            out = run_snakebatch(root, config, args.cores, fmt)
            check = bt.check_output(out["merged"], fmt, args.rows) if out["returncode"] == 0 else "run failed"
            out["ok"], out["check"] = check.startswith("OK"), check
            return out
        return case

    def pandas(fmt, folder):
        code = ("import sys\nsys.path.insert(0, sys.argv[1])\nimport benchmark_tabular as bt\n"
                "bt.pandas_baseline(sys.argv[2], sys.argv[3], sys.argv[3], sys.argv[4], True)\n")

        def case():
            out = timed([sys.executable, "-c", code, os.path.join(REPO, "scripts"), folder, fmt, work], work)
            out["ok"] = out["returncode"] == 0
            return out
        return case

    report = {}
    for fmt, folder in (("csv", csv_dir), ("parquet", parquet_dir)):
        print(f"\n{fmt} -> {fmt}", flush=True)
        report[fmt] = run_cases({f"pandas read+write {fmt} (1 process)": pandas(fmt, folder),
                                 f"snakebatch identity {fmt} --cores {args.cores}": snakebatch(fmt, folder)},
                                args.repeat, args.rows, f"pandas read+write {fmt} (1 process)", "rows",
                                {"rows": args.rows, "files": args.files, "format": fmt,
                                 "mini_batch_size": args.mini_batch_size, "cores": args.cores})
        shutil.rmtree(os.path.join(root, "results", f"bench-{fmt}"), ignore_errors=True)
    return report


# ------------------------------------------------------------------------------- partition, gather
def trivial_workflow(work: str) -> tuple[str, str]:
    """Write the trivial entry script (TRIVIAL) and a copy of the workflow under ``work``; returns
    (script path, workflow root)."""
    script = os.path.join(work, "names.py")
    with open(script, "w", encoding="utf-8") as handle:
        handle.write(TRIVIAL)
    root = os.path.join(work, "wf")
    copy_workflow(root)
    return script, root


def bench_partition(args, work: str) -> dict:
    def make(tmp):
        for i in range(args.files):
            open(os.path.join(tmp, f"{i:08d}.bin"), "wb").close()

    data = generated(os.path.join(work, f"empty-{args.files}"), make)
    script, root = trivial_workflow(work)
    config = {"run_name": "bench-partition", "input": {"path": data}, "entry_script": script,
              "mini_batch_size": args.mini_batch_size, "allow_reuse": False, "logging_level": "WARNING"}
    out = run_snakebatch(root, config, args.cores, "partition")
    print(json.dumps(out, indent=1), flush=True)
    return {"settings": {"files": args.files, "mini_batch_size": args.mini_batch_size, "cores": args.cores},
            "run": out}


def bench_gather(args, work: str) -> dict:
    def make(tmp):
        with open(os.path.join(tmp, "ids.csv"), "w", encoding="utf-8") as handle:
            handle.write("id\n")
            step = 1_000_000
            for first in range(0, args.lines, step):
                handle.write("".join(f"{i}\n" for i in range(first, min(first + step, args.lines))))

    data = generated(os.path.join(work, f"lines-{args.lines}"), make)
    script = os.path.join(work, "identity.py")
    with open(script, "w", encoding="utf-8") as handle:
        handle.write(IDENTITY)
    root = os.path.join(work, "wf")
    copy_workflow(root)
    config = {"run_name": "bench-gather", "input": {"path": data, "type": "tabular"}, "entry_script": script,
              "mini_batch_size": "4MB", "append_row_format": "txt", "allow_reuse": False, "logging_level": "WARNING"}
    out = run_snakebatch(root, config, args.cores, "gather")
    lines = 0
    if os.path.exists(out["merged"]):
        with open(out["merged"], "rb") as handle:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 24), b""))
    out["merged_lines"] = lines
    print(json.dumps(out, indent=1), flush=True)
    return {"settings": {"lines": args.lines, "cores": args.cores}, "run": out}


# ------------------------------------------------------------------------------- skew
SKEW_SCRIPT = """
import os, time

def run(mini_batch):
    out = []
    for path in mini_batch:
        with open(path) as handle:
            cost = float(handle.read())
        time.sleep(cost)
        out.append(f"{os.path.basename(path)} {cost:g}")
    return out
"""


def bench_skew(args, work: str) -> dict:
    """Skewed item costs (issue 14 item 4): balanced shards against the interleaved costs."""
    half = args.items // 2

    def make(order):
        def write_costs(tmp):
            for i in range(args.items):
                slow = (i >= half) if order == "skewed" else (i % 2 == 1)
                with open(os.path.join(tmp, f"item-{i:05d}.txt"), "w", encoding="utf-8") as handle:
                    handle.write(f"{args.slow if slow else args.fast:g}")
        return write_costs

    data = {order: generated(os.path.join(work, f"skew-{order}-{args.items}"), make(order))
            for order in ("skewed", "interleaved")}
    root = os.path.join(work, "wf")
    copy_workflow(root)
    script = os.path.join(work, "skew_cost.py")
    with open(script, "w", encoding="utf-8") as handle:
        handle.write(SKEW_SCRIPT)

    def expected(order):
        return "".join(f"item-{i:05d}.txt {args.slow if ((i >= half) if order == 'skewed' else (i % 2 == 1)) else args.fast:g}\n"
                       for i in range(args.items))

    def case(order, balance):
        def go():
            config = {"run_name": f"bench-skew-{order}", "input": {"path": data[order]}, "entry_script": script,
                      "mini_batch_size": args.mini_batch_size, "node_count": 1, "process_count_per_node": args.cores,
                      "allow_reuse": False, "balance_shards": balance, "logging_level": "WARNING"}
            out = run_snakebatch(root, config, args.cores, f"skew-{order}-{balance}")
            with open(out["merged"], encoding="utf-8") as handle:
                out["ok"] = out["returncode"] == 0 and handle.read() == expected(order)
            return out
        return go

    cases = {"skewed, balance_shards true": case("skewed", True),
             "skewed, balance_shards false": case("skewed", False),
             "interleaved, balance_shards true": case("interleaved", True)}
    report = run_cases(cases, args.repeat, args.items, "interleaved, balance_shards true", "items",
                       {"items": args.items, "fast_s": args.fast, "slow_s": args.slow,
                        "mini_batch_size": args.mini_batch_size, "shards": args.cores, "cores": args.cores})
    walls = {row["case"]: row["median_s"] for row in report["rows"]}
    ratio = walls["skewed, balance_shards true"] / walls["interleaved, balance_shards true"]
    before = walls["skewed, balance_shards false"] / walls["interleaved, balance_shards true"]
    print(f"skewed {walls['skewed, balance_shards true']:.2f} s vs interleaved "
          f"{walls['interleaved, balance_shards true']:.2f} s: ratio {ratio:.3f} (target <= 1.15); "
          f"without balancing {walls['skewed, balance_shards false']:.2f} s: ratio {before:.3f}", flush=True)
    shards = {name: statistics.median(r["stages_s"]["shards"] for r in runs if "stages_s" in r)
              for name, runs in report["runs"].items() if any("stages_s" in r for r in runs)}
    if len(shards) == 3:
        print("shard stage alone (partition end to the last shard file; medians): " + ", ".join(
            f"{name} {value:.2f} s" for name, value in shards.items()) + f"; ratio skewed / interleaved "
            f"{shards['skewed, balance_shards true'] / shards['interleaved, balance_shards true']:.3f}", flush=True)
        report["shards_s"] = {name: round(value, 2) for name, value in shards.items()}
    report["ratio"], report["ratio_without_balancing"] = round(ratio, 3), round(before, 3)
    return report


# ------------------------------------------------------------------------------- shards
# Snakemake's own cost for the DAG a snakebatch run makes, with jobs that do nothing: a partition,
# one job per shard, a gather (config: shards).
BASELINE_SNAKEFILE = """
SHARDS = [f"{i:05d}" for i in range(int(config["shards"]))]

localrules: partition, gather

rule all:
    input: "gathered.txt"

rule partition:
    output: "listing.txt"
    shell: "touch {output}"

rule shard:
    input: "listing.txt"
    output: "shards/{shard}.txt"
    shell: "touch {output}"

rule gather:
    input: expand("shards/{shard}.txt", shard=SHARDS)
    output: "gathered.txt"
    shell: "touch {output}"
"""


def bench_shards(args, work: str) -> dict:
    """Dry run and whole run of ``args.shards`` shards with trivial work, and the same DAG of
    ``touch`` jobs (Snakemake alone)."""
    files = args.shards * args.files_per_shard

    def make(tmp):
        for i in range(files):
            with open(os.path.join(tmp, f"item{i:07d}.txt"), "w", encoding="utf-8") as handle:
                handle.write(f"{i}\n")

    data = generated(os.path.join(work, f"tiny-{files}"), make)
    script, root = trivial_workflow(work)
    config = {"run_name": "bench-shards", "input": {"path": data}, "entry_script": script, "mini_batch_size": 1,
              "node_count": 1, "process_count_per_node": args.shards, "allow_reuse": False,
              "logging_level": "WARNING"}
    shutil.rmtree(os.path.join(root, "results", config["run_name"]), ignore_errors=True)
    with open(os.path.join(root, "config", "config.yaml"), "w", encoding="utf-8") as handle:
        yaml.safe_dump(config, handle)
    baseline = os.path.join(work, "baseline")
    shutil.rmtree(baseline, ignore_errors=True)
    os.makedirs(baseline)
    with open(os.path.join(baseline, "Snakefile"), "w", encoding="utf-8") as handle:
        handle.write(BASELINE_SNAKEFILE)
    snakemake = [sys.executable, "-m", "snakemake", "--cores", str(args.cores)]
    baseline_cmd = [*snakemake, "--scheduler", "greedy", "--config", f"shards={args.shards}"]
    out = {"load_before": os.getloadavg()}
    out["dry_run"] = timed([*snakemake, "-n"], root, log_path=os.path.join(work, "dry-run.log"))
    out["baseline_dry_run"] = timed([*baseline_cmd, "-n"], baseline, log_path=os.path.join(work, "baseline-dry.log"))
    for name in ("dry_run", "baseline_dry_run"):
        print(f"{name}: wall {out[name]['wall_s']:.2f} s, CPU {out[name]['cpu_s']:.2f} s, "
              f"exit {out[name]['returncode']}", flush=True)
    if not args.no_run:
        out["run"] = run_snakebatch(root, config, args.cores, "shards")
        out["baseline_run"] = timed(baseline_cmd, baseline, log_path=os.path.join(work, "baseline-run.log"))
        merged_lines = 0
        if os.path.exists(out["run"]["merged"]):
            with open(out["run"]["merged"], encoding="utf-8") as handle:
                merged_lines = sum(1 for _ in handle)
        out["run"]["merged_lines"] = merged_lines
        for name in ("run", "baseline_run"):
            print(f"{name}: wall {out[name]['wall_s']:.2f} s, CPU {out[name]['cpu_s']:.2f} s, "
                  f"exit {out[name]['returncode']}, stages {out[name].get('stages_s', '-')}", flush=True)
        extra = out["run"]["cpu_s"] - out["baseline_run"]["cpu_s"]
        print(f"run: {merged_lines} of {files} result lines; snakebatch adds {extra:.1f} CPU s over Snakemake's "
              f"own jobs, {1000 * extra / args.shards:.0f} ms per shard job", flush=True)
    out["load_after"] = os.getloadavg()
    print(f"load average before {out['load_before']}, after {out['load_after']}", flush=True)
    return {"settings": {"shards": args.shards, "files_per_shard": args.files_per_shard, "cores": args.cores},
            **out}


# ------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--cores", type=int, default=2, help="snakemake --cores and the split's processes (default 2)")
    common.add_argument("--repeat", type=int, default=2, help="rounds of alternating runs; the median is reported")
    common.add_argument("--json", help="where the figures go (default benchmark-{sub-command}.json)")
    common.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (data is reused when present)")
    common.add_argument("--peers", type=lambda s: [p for p in s.split(",") if p], default=["ray"],
                        help="optional peers to run when installed (default: ray)")
    images = sub.add_parser("images", parents=[common], help="PNG digits through the demo's Keras MLP")
    images.add_argument("--images", type=int, default=20_000)
    images.add_argument("--mini-batch-size", type=int, default=500)
    images.add_argument("--cases", type=lambda s: [c for c in s.split(",") if c], default=["loop", "split", "snakebatch", "ray"],
                        help="which of loop,split,snakebatch,ray to run (the loop always runs: its output is the "
                             "reference every other case is checked against)")
    tables = sub.add_parser("tables", parents=[common], help="CSV and Parquet through an identity script")
    tables.add_argument("--rows", type=int, default=10_000_000)
    tables.add_argument("--files", type=int, default=4)
    tables.add_argument("--mini-batch-size", default="16MB")
    part = sub.add_parser("partition", parents=[common], help="listing and partition of many empty files")
    part.add_argument("--files", type=int, default=1_000_000)
    part.add_argument("--mini-batch-size", type=int, default=1000)
    gather = sub.add_parser("gather", parents=[common], help="gather of many result lines")
    gather.add_argument("--lines", type=int, default=10_000_000)
    skew = sub.add_parser("skew", parents=[common], help="skewed item costs: balanced shards vs interleaved costs")
    skew.add_argument("--items", type=int, default=240)
    skew.add_argument("--fast", type=float, default=0.01, help="seconds per item of the first half (default 0.01)")
    skew.add_argument("--slow", type=float, default=0.1, help="seconds per item of the last half (default 0.1)")
    skew.add_argument("--mini-batch-size", type=int, default=10)
    shards = sub.add_parser("shards", parents=[common], help="dry run and run of many shards with trivial work")
    shards.add_argument("--shards", type=int, default=1000)
    shards.add_argument("--files-per-shard", type=int, default=2)
    shards.add_argument("--no-run", action="store_true", help="the dry runs only")
    args = parser.parse_args(argv)

    work = args.keep or tempfile.mkdtemp(prefix="snakebatch-benchmark-")
    os.makedirs(work, exist_ok=True)
    print(f"snakebatch benchmark {args.command}: work folder {work}; {os.cpu_count()} cores", flush=True)
    try:
        report = {"images": bench_images, "tables": bench_tables, "partition": bench_partition,
                  "gather": bench_gather, "skew": bench_skew, "shards": bench_shards}[args.command](args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    target = args.json or f"benchmark-{args.command}.json"
    tmp = target + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=1, default=str)
    os.replace(tmp, target)
    print(f"figures: {target}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
