"""Benchmark: a file dataset in Azure Blob storage (Azurite) with prefetch on, off, and from disk.

    python scripts/benchmark_storage.py [--files 20000] [--cores 4] [--mini-batch-size 50]
                                        [--work-ms 5] [--store az|s3] [--keep DIR]
    python scripts/benchmark_storage.py --probe 2000,5000,10000,20000 [--store az|s3]

Starts Azurite on 127.0.0.1 (``tests/services.py``; needs ``npm install --prefix .ci/node
azurite@3``), or moto's S3 server with ``--store s3`` (the control: the same code against another
store), uploads ``--files`` small PNG files (28x28 gray, a few hundred bytes) under
``az://bench/png/`` (``fs.put``: 64 uploads at a time, in four parts, each part's rate printed), then runs ``python -m snakemake --cores N``
in a temporary copy of the workflow with an entry script that reads each file and spends
``--work-ms`` ms on it (a busy loop, like a small model), three times:

- ``az://`` with prefetch on (``input.prefetch_bytes: 256MB``: the next mini-batch downloads while
  run() works on this one)
- ``az://`` with prefetch off (``input.prefetch_bytes: 0``)
- the same files on the local disk

and prints the wall time of each whole ``snakemake`` command, items/s, the slowdown against the
local run, and the CPU seconds spent per item by snakebatch's processes (snakemake, its jobs and
workers: the children's rusage) and by the store's server process (psutil): on a shared machine
the wall times move with the load, the CPU per item much less, and it tells which side grows.
Before the runs, 200 single-blob GETs through the store's own SDK (azure-storage-blob, boto3: no
snakebatch, no fsspec) give the store's latency and server CPU per request at that size.

``--probe SIZES`` only fills a container to each size in turn (blobs of 300 bytes) and prints, per
size, the upload rate and the 200-GET figures: how the emulator itself scales.
Figures, never assertions; each merged output's line count is checked and printed.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import posixpath
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

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


def children_cpu_s() -> float:
    """User + system CPU seconds of every child process waited for so far (and theirs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of the process ``pid`` (the store's server) and its children."""
    import psutil

    proc = psutil.Process(pid)
    total = 0.0
    for one in [proc, *proc.children(recursive=True)]:
        times = one.cpu_times()
        total += times.user + times.system
    return total


class RawClient:
    """The store's own SDK, no fsspec: ``put(name, data)`` and ``get(name)`` of one object of the
    bucket/container ``bucket``."""

    def __init__(self, store: str, bucket: str) -> None:
        if store == "az":
            from azure.storage.blob import BlobServiceClient

            service = BlobServiceClient.from_connection_string(os.environ["AZURE_STORAGE_CONNECTION_STRING"])
            self.container = service.get_container_client(bucket)
        else:
            import boto3

            self.s3 = boto3.client("s3")
        self.store, self.bucket = store, bucket

    def put(self, name: str, data: bytes) -> None:
        if self.store == "az":
            self.container.upload_blob(name, data, overwrite=True)
        else:
            self.s3.put_object(Bucket=self.bucket, Key=name, Body=data)

    def get(self, name: str) -> bytes:
        if self.store == "az":
            return self.container.download_blob(name).readall()
        return self.s3.get_object(Bucket=self.bucket, Key=name)["Body"].read()


def get_figures(client: RawClient, names: list[str], server_pid: int, count: int = 200) -> str:
    """Median and 90th percentile latency (ms) of ``count`` GETs of random ``names`` one after
    another, and the server's CPU ms per GET."""
    chosen = random.Random(0).sample(names, min(count, len(names)))
    cpu = process_cpu_s(server_pid)
    latencies = []
    for name in chosen:
        start = time.perf_counter()
        client.get(name)
        latencies.append(time.perf_counter() - start)
    server_ms = (process_cpu_s(server_pid) - cpu) * 1000 / len(chosen)
    latencies.sort()
    return (f"GET median {latencies[len(latencies) // 2] * 1000:6.1f} ms, p90 "
            f"{latencies[int(len(latencies) * 0.9)] * 1000:6.1f} ms, server CPU {server_ms:5.2f} ms per GET")


def probe(service, store: str, sizes: list[int]) -> None:
    """Fill ``bench/probe/`` to each of ``sizes`` (16 uploads at a time) and print the upload rate
    and ``get_figures`` at each size."""
    client = RawClient(store, "bench")
    names: list[str] = []
    data = b"x" * 300
    for size in sizes:
        new = [f"probe/{i:06d}.png" for i in range(len(names), size)]
        start, cpu = time.monotonic(), process_cpu_s(service.process.pid)
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda name: client.put(name, data), new))
        wall = time.monotonic() - start
        server_ms = (process_cpu_s(service.process.pid) - cpu) * 1000 / max(1, len(new))
        names.extend(new)
        print(f"{store} {size:7d} objects: upload {len(new) / wall:6.0f}/s (server CPU {server_ms:5.2f} ms per PUT); "
              f"{get_figures(client, names, service.process.pid)}  load {os.getloadavg()[0]:.1f}", flush=True)


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
    parser.add_argument("--store", choices=("az", "s3"), default="az",
                        help="az: Azurite (default); s3: moto's S3 server, the control")
    parser.add_argument("--probe", metavar="SIZES", help="only the store's own figures at these object counts "
                        "(comma-separated), no snakebatch run")
    parser.add_argument("--keep", help="work in this folder and keep it (default: a temporary one)")
    args = parser.parse_args()

    import services

    work = args.keep or tempfile.mkdtemp(prefix="snakebatch-bench-storage-")
    os.makedirs(work, exist_ok=True)
    if args.store == "az":
        service = services.start_azurite(os.path.join(work, "azurite"))
    else:
        service = services.start_moto(os.path.join(work, "moto"))
    try:
        os.environ.update(service.env)
        import fsspec

        if args.store == "az":
            fsspec.filesystem("az").mkdir("bench")
        else:
            import boto3

            boto3.client("s3").create_bucket(Bucket="bench")
        if args.probe:
            probe(service, args.store, [int(size) for size in args.probe.split(",")])
            return 0
        fs = fsspec.filesystem(args.store)
        local = os.path.join(work, "png")
        os.makedirs(local, exist_ok=True)
        for i in range(args.files):
            with open(os.path.join(local, f"{i:06d}.png"), "wb") as handle:
                handle.write(png_bytes(i))
        names = [f"png/{i:06d}.png" for i in range(args.files)]
        total = time.monotonic()
        step = max(1, -(-args.files // 4))
        for first in range(0, args.files, step):  # in four parts: the rate at each size of the container
            part = names[first:first + step]
            start, cpu = time.monotonic(), process_cpu_s(service.process.pid)
            fs.put([os.path.join(local, posixpath.basename(n)) for n in part], [f"bench/{n}" for n in part],
                   batch_size=64)
            wall = time.monotonic() - start
            print(f"uploaded objects {first}..{first + len(part) - 1}: {len(part) / wall:5.0f}/s (64 at a time), "
                  f"server CPU {(process_cpu_s(service.process.pid) - cpu) * 1000 / len(part):5.2f} ms per PUT  "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
        print(f"uploaded {args.files} PNG files to {args.store}://bench/png/ in {time.monotonic() - total:.1f} s",
              flush=True)
        print(f"{args.store} at {args.files} objects: {get_figures(RawClient(args.store, 'bench'), names, service.process.pid)}",
              flush=True)
        root = os.path.join(work, "wf")
        copy_workflow(root)
        with open(os.path.join(root, "scripts", "bench_entry.py"), "w") as handle:
            handle.write(SCRIPT)
        url = f"{args.store}://bench/png/"
        cases = [("prefetch-on", url, "256MB"), ("prefetch-off", url, 0), ("local-disk", local, None)]
        figures, cpu_figures = {}, {}
        for name, path, prefetch in cases:
            ours, server = children_cpu_s(), process_cpu_s(service.process.pid)
            wall, lines = run_case(root, name, path, args, prefetch)
            ours, server = children_cpu_s() - ours, process_cpu_s(service.process.pid) - server
            figures[name] = wall
            cpu_figures[name] = {"snakebatch_ms_per_item": round(ours * 1000 / args.files, 2),
                                 "server_ms_per_item": round(server * 1000 / args.files, 2)}
            check = "ok" if lines == args.files else f"MISMATCH: {lines} lines"
            print(f"{name:13s} wall {wall:8.1f} s  {args.files / wall:8.1f} items/s  output {check}  CPU per item: "
                  f"snakebatch {ours * 1000 / args.files:6.2f} ms, {args.store} server "
                  f"{server * 1000 / args.files:6.2f} ms  load {os.getloadavg()[0]:.1f}", flush=True)
        base = figures["local-disk"]
        for name in ("prefetch-on", "prefetch-off"):
            print(f"{name}: {figures[name] / base:.2f}x the local-disk wall time")
        print(json.dumps({"files": args.files, "cores": args.cores, "work_ms": args.work_ms, "store": args.store,
                          "wall_s": figures, "cpu": cpu_figures}))
    finally:
        service.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
