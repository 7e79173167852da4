"""Benchmark: a file dataset in Azure Blob storage (Azurite) with prefetch on, off, and from disk.

    python scripts/benchmark_storage.py [--files 20000] [--cores 4] [--mini-batch-size 50]
                                        [--work-ms 5] [--keep DIR]

Starts Azurite on 127.0.0.1 (``tests/services.py``; needs ``npm install --prefix .ci/node
azurite@3``), uploads ``--files`` small PNG files (28x28 gray, a few hundred bytes) under
``az://bench/png/``, then runs ``python -m snakemake --cores N`` in a temporary copy of the
workflow with an entry script that reads each file and spends ``--work-ms`` ms on it (a busy loop,
like a small model), three times:

- ``az://`` with prefetch on (``input.prefetch_bytes: 256MB``: the next mini-batch downloads while
  run() works on this one)
- ``az://`` with prefetch off (``input.prefetch_bytes: 0``)
- the same files on the local disk

and prints the wall time of each whole ``snakemake`` command, items/s, and the slowdown against
the local run. Figures, never assertions; each merged output's line count is checked and printed.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests"))

SCRIPT = """
import os
import time

WORK_S = float(os.environ["WORK_MS"]) / 1000


def init():
    pass


def run(mini_batch):
    out = []
    for path in mini_batch:
        with open(path, "rb") as handle:
            size = len(handle.read())
        end = time.perf_counter() + WORK_S
        while time.perf_counter() < end:
            pass
        out.append(f"{os.path.basename(path)} {size}")
    return out
"""


def png_bytes(i: int) -> bytes:
    from PIL import Image

    image = Image.new("L", (28, 28), color=i % 256)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def copy_workflow(root: str) -> None:
    os.makedirs(root)
    for name in ("Snakefile", "workflow", "profiles", "scripts", "config"):
        source = os.path.join(REPO, name)
        if os.path.isdir(source):
            shutil.copytree(source, os.path.join(root, name), ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, os.path.join(root, name))


def run_case(root: str, name: str, path: str, args, prefetch) -> tuple[float, int]:
    import yaml

    config = {"run_name": name, "input": {"path": path}, "entry_script": "bench_entry.py",
              "source_directory": "scripts", "mini_batch_size": args.mini_batch_size,
              "append_row_file_name": "out.txt", "environment_variables": {"WORK_MS": str(args.work_ms)}}
    if prefetch is not None:
        config["input"]["prefetch_bytes"] = prefetch
    with open(os.path.join(root, "config", "config.yaml"), "w") as handle:
        yaml.safe_dump(config, handle)
    start = time.monotonic()
    env = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", "")}  # job commands read it under set -u
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", str(args.cores)], cwd=root,
                          capture_output=True, text=True, env=env)
    wall = time.monotonic() - start
    if proc.returncode != 0:
        print(f"{name}: snakemake failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return wall, -1
    with open(os.path.join(root, "results", name, "out.txt")) as handle:
        return wall, sum(1 for _ in handle)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=20000)
    parser.add_argument("--cores", type=int, default=4)
    parser.add_argument("--mini-batch-size", type=int, default=50)
    parser.add_argument("--work-ms", type=float, default=5.0)
    parser.add_argument("--keep", help="work in this folder and keep it (default: a temporary one)")
    args = parser.parse_args()

    import services

    work = args.keep or tempfile.mkdtemp(prefix="snakebatch-bench-storage-")
    os.makedirs(work, exist_ok=True)
    service = services.start_azurite(os.path.join(work, "azurite"))
    try:
        os.environ.update(service.env)
        import fsspec

        fs = fsspec.filesystem("az")
        fs.mkdir("bench")
        local = os.path.join(work, "png")
        os.makedirs(local, exist_ok=True)
        start = time.monotonic()
        for i in range(args.files):
            data = png_bytes(i)
            with open(os.path.join(local, f"{i:06d}.png"), "wb") as handle:
                handle.write(data)
        fs.put(local + "/", "bench/png/", recursive=True)
        print(f"uploaded {args.files} PNG files to az://bench/png/ in {time.monotonic() - start:.1f} s")
        root = os.path.join(work, "wf")
        copy_workflow(root)
        with open(os.path.join(root, "scripts", "bench_entry.py"), "w") as handle:
            handle.write(SCRIPT)
        cases = [("prefetch-on", "az://bench/png/", "256MB"), ("prefetch-off", "az://bench/png/", 0),
                 ("local-disk", local, None)]
        figures = {}
        for name, path, prefetch in cases:
            wall, lines = run_case(root, name, path, args, prefetch)
            figures[name] = wall
            check = "ok" if lines == args.files else f"MISMATCH: {lines} lines"
            print(f"{name:13s} wall {wall:8.1f} s  {args.files / wall:8.1f} items/s  output {check}")
        base = figures["local-disk"]
        for name in ("prefetch-on", "prefetch-off"):
            print(f"{name}: {figures[name] / base:.2f}x the local-disk wall time")
        print(json.dumps({"files": args.files, "cores": args.cores, "work_ms": args.work_ms, "wall_s": figures}))
    finally:
        service.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
