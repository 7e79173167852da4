"""Benchmark: what worker supervision costs per mini-batch.

    python scripts/benchmark_supervision.py [--mini-batches 500] [--items 10]

Cuts ``--mini-batches`` mini-batches of ``--items`` tiny empty files (made in a temporary folder)
through the ``file`` input kind, as the partition stage does, and times the same trivial entry
script (returns one string per item) over them three ways, printing the median and 90th
percentile per mini-batch in milliseconds:

1. ``direct``: the kind's ``materialise`` and ``run(mini_batch)`` called in this process (no
   supervision at all);
2. ``worker call``: the round trips to the supervised worker process that one mini-batch takes
   (pipe, pickling, result encoding, timeout watch): ``infer.supervisor.WorkerProcess.load`` of
   the mini-batch, then ``call`` of its positions;
3. ``runner``: what a shard job does per mini-batch - the loop ``infer.shard.ShardRunner.run``
   over a one-shard manifest, timed between two results as the shard result writer sees them:
   store lookup, the worker's load (prefetched while run() works on the one before) and call,
   and the durable result (atomic write to the mini-batch store, group-committed:
   ``storage.atomic.GroupCommit``). ``balance_shards`` is off (claims are
   ``benchmark_runner_cost.py``'s business); the first mini-batch, which starts the worker, is
   not counted.

The overhead of supervision is (3) - (1). Figures, never assertions: speed targets live here, not
in the tests (``tests/test_benchmarks.py`` only checks that the script still runs).
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "workflow"))

from snakebatch.infer.entry import MiniBatchContext  # noqa: E402
from snakebatch.infer.job import build_worker  # noqa: E402
from snakebatch.infer.shard import ShardRunner  # noqa: E402
from snakebatch.infer.store import MiniBatchStore  # noqa: E402
from snakebatch.kinds import Cache, MiniBatch, get_kind  # noqa: E402
from snakebatch.monitor import progress  # noqa: E402
from snakebatch.partition.manifest import ShardManifest  # noqa: E402
from snakebatch.settings.config import PartitionSpec, RunnerSpec  # noqa: E402
from snakebatch.storage.layout import RunLayout  # noqa: E402

SCRIPT = """
import os

def init():
    pass

def run(mini_batch):
    return [os.path.basename(path) + ": ok" for path in mini_batch]
"""


def percentiles(samples: list[float]) -> str:
    """``median ... ms   p90 ... ms`` of ``samples`` (seconds)."""
    ordered = sorted(samples)
    p90 = ordered[int(0.9 * (len(ordered) - 1))]
    return f"median {1000 * statistics.median(ordered):7.3f} ms   p90 {1000 * p90:7.3f} ms"


def cut_mini_batches(tmp: str, mini_batches: int, items: int) -> list[MiniBatch]:
    """``mini_batches`` * ``items`` empty files in ``tmp/data``, cut by the ``file`` kind into
    mini-batches of ``items`` files."""
    data = os.path.join(tmp, "data")
    os.makedirs(data)
    for i in range(mini_batches * items):
        open(os.path.join(data, f"item{i:07d}.png"), "w").close()
    spec = PartitionSpec(run_name="bench", paths=(data,), pattern=None, mini_batch_size=items, shard_count=1)
    kind = get_kind("file")
    return kind.mini_batches(kind.list(spec), spec)


def time_direct(script: str, batches: list[MiniBatch]) -> list[float]:
    """Seconds per mini-batch of ``materialise`` + ``run()`` in this process."""
    module_spec = importlib.util.spec_from_file_location("identity", script)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    module.init()
    cache = Cache()
    samples = []
    for batch in batches:
        start = time.perf_counter()
        module.run(get_kind(batch.kind).materialise(batch, {}, cache))
        samples.append(time.perf_counter() - start)
    return samples


def time_worker(spec: RunnerSpec, run_dir: str, batches: list[MiniBatch]) -> tuple[float, list[float]]:
    """The worker's start (seconds) and seconds per mini-batch of its ``load`` + ``call``."""
    worker = build_worker(spec, run_dir, 0)
    start = time.perf_counter()
    worker.start(spec.init_timeout)
    startup = time.perf_counter() - start
    samples = []
    try:
        for batch in batches:
            kind = get_kind(batch.kind)
            positions = tuple(range(batch.count))
            start = time.perf_counter()
            loaded = worker.load(batch.key, batch.to_dict(), spec.run_invocation_timeout)
            assert loaded.ok and loaded.length == batch.count, loaded.error
            context = MiniBatchContext(minibatch_index=batch.index, global_row_index_lower_bound=batch.first_item,
                                       partition_key_value=kind.partition_key_value(batch),
                                       dataset=kind.dataset(batch, list(positions)))
            outcome = worker.call(positions, context, spec.run_invocation_timeout, loaded=batch.key)
            samples.append(time.perf_counter() - start)
            assert outcome.ok and len(outcome.lines) == batch.count, outcome.error
    finally:
        worker.stop()
    return startup, samples


def time_runner(spec: RunnerSpec, run_dir: str, batches: list[MiniBatch]) -> list[float]:
    """Seconds per mini-batch of ``ShardRunner.run`` over one shard of ``batches`` with a real
    store, from the second result on (the first includes the worker's start)."""
    layout = RunLayout(run_dir)
    manifest = ShardManifest(run_name=spec.run_name, shard=0, shard_count=1, total_mini_batches=len(batches),
                             total_items=sum(batch.count for batch in batches), mini_batches=tuple(batches))
    runner = ShardRunner(spec, build_worker(spec, run_dir, 0), MiniBatchStore(layout.store_dir, spec, run_dir),
                         layout.shard_logs(0)["error"], run_dir)
    stamps: list[float] = []
    runner.on_result = lambda result: stamps.append(time.perf_counter())
    results = runner.run(manifest)
    assert len(results) == len(batches) and not runner.stopped_early
    assert all(result.failed == 0 for result in results)
    assert len(os.listdir(layout.store_dir)) > 0  # the durable results
    return [b - a for a, b in itertools.pairwise(stamps)]


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark (see the module doc) with the command line ``argv`` and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mini-batches", type=int, default=500, help="mini-batches timed per way (>= 2)")
    parser.add_argument("--items", type=int, default=10, help="items per mini-batch")
    args = parser.parse_args(argv)
    if args.mini_batches < 2:
        parser.error("--mini-batches must be >= 2 (the runner's first mini-batch is not counted)")
    os.environ.setdefault(progress.INVOCATION_ENV, f"bench-{os.getpid()}")

    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "identity.py")
        with open(script, "w", encoding="utf-8") as handle:
            handle.write(SCRIPT)
        batches = cut_mini_batches(tmp, args.mini_batches, args.items)
        spec = RunnerSpec(run_name="bench", entry_script=script, source_directory=tmp, arguments=(),
                          environment_variables={}, models={}, side_inputs={}, output_action="append_row",
                          append_row_format="txt", run_invocation_timeout=60.0, run_max_try=3,
                          logging_level="WARNING", allow_reuse=False, balance_shards=False)
        run_dir = os.path.join(tmp, "run")
        for path in RunLayout(run_dir).shard_logs(0).values():
            os.makedirs(os.path.dirname(path), exist_ok=True)

        direct = time_direct(script, batches)
        startup, calls = time_worker(spec, run_dir, batches)
        shard = time_runner(spec, run_dir, batches)

    print(f"supervision overhead, {args.mini_batches} mini-batches of {args.items} items, trivial entry script")
    print(f"  worker start (spawn + import + init): {1000 * startup:.1f} ms, once per worker")
    print(f"  direct      {percentiles(direct)}   (materialise + run() in this process)")
    print(f"  worker call {percentiles(calls)}   (load + run() round trips to the worker process)")
    print(f"  runner      {percentiles(shard)}   (shard loop: worker + durable mini-batch result)")
    print(f"  overhead per mini-batch (runner - direct, medians): "
          f"{1000 * (statistics.median(shard) - statistics.median(direct)):.3f} ms")


if __name__ == "__main__":
    main()
