"""Benchmark: what worker supervision costs per mini-batch.

    python scripts/benchmark_supervision.py [--mini-batches 500] [--items 10]

Times the same trivial entry script (returns one string per item) three ways and prints the
median and 90th percentile per mini-batch, in milliseconds:

1. ``direct``: ``run(mini_batch)`` called in this process (no supervision at all);
2. ``worker call``: one round trip to the supervised worker process (pipe, pickling, result
   encoding, timeout watch) - ``infer.supervisor.WorkerProcess.call``;
3. ``runner``: what a shard job does per mini-batch - ``infer.shard.ShardRunner.run_mini_batch``:
   the worker call plus the durable result (atomic write to the mini-batch store).

The overhead of supervision is (3) - (1). Figures, never assertions: speed targets live here, not
in the tests.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "workflow"))

from snakebatch.settings.config import RunnerSpec  # noqa: E402
from snakebatch.infer.entry import MiniBatchContext  # noqa: E402
from snakebatch.partition.manifest import MiniBatch  # noqa: E402
from snakebatch.infer.job import ShardRunner, build_worker, shard_log_paths  # noqa: E402
from snakebatch.infer.store import MiniBatchStore  # noqa: E402

SCRIPT = """
import os

def init():
    pass

def run(mini_batch):
    return [os.path.basename(path) + ": ok" for path in mini_batch]
"""


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p90 = ordered[int(0.9 * (len(ordered) - 1))]
    return f"median {1000 * statistics.median(ordered):7.3f} ms   p90 {1000 * p90:7.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mini-batches", type=int, default=500, help="mini-batches timed per way")
    parser.add_argument("--items", type=int, default=10, help="items per mini-batch")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "identity.py")
        with open(script, "w", encoding="utf-8") as handle:
            handle.write(SCRIPT)
        items = [os.path.join(tmp, "data", f"item{i:07d}.png") for i in range(args.mini_batches * args.items)]
        batches = [MiniBatch(index=i, first_item=i * args.items,
                             items=tuple(items[i * args.items:(i + 1) * args.items]),
                             key=f"bench-{i}") for i in range(args.mini_batches)]
        spec = RunnerSpec(run_name="bench", entry_script=script, source_directory=tmp, arguments=(),
                          environment_variables={}, models={}, side_inputs={}, output_action="append_row",
                          append_row_format="txt", run_invocation_timeout=60.0, run_max_try=3,
                          logging_level="WARNING", allow_reuse=False)
        run_dir = os.path.join(tmp, "run")
        for path in shard_log_paths(run_dir, 0).values():
            os.makedirs(os.path.dirname(path), exist_ok=True)

        module_spec = importlib.util.spec_from_file_location("identity", script)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        module.init()
        direct = []
        for batch in batches:
            start = time.perf_counter()
            module.run(list(batch.items))
            direct.append(time.perf_counter() - start)

        worker = build_worker(spec, run_dir, 0)
        start = time.perf_counter()
        worker.start()
        startup = time.perf_counter() - start
        calls = []
        for batch in batches:
            context = MiniBatchContext(minibatch_index=batch.index, global_row_index_lower_bound=batch.first_item)
            start = time.perf_counter()
            outcome = worker.call(batch.items, context, spec.run_invocation_timeout)
            calls.append(time.perf_counter() - start)
            assert outcome.ok, outcome.error
        worker.stop()

        runner = ShardRunner(spec, build_worker(spec, run_dir, 0),
                             MiniBatchStore(os.path.join(run_dir, "minibatches"), spec, run_dir),
                             os.path.join(run_dir, "logs", "user", "error", "shard-00000.txt"))
        runner.run_mini_batch(batches[0])  # starts the worker
        shard = []
        for batch in batches[1:]:
            start = time.perf_counter()
            runner.run_mini_batch(batch)
            shard.append(time.perf_counter() - start)
        runner.worker.stop()

    print(f"supervision overhead, {args.mini_batches} mini-batches of {args.items} items, trivial entry script")
    print(f"  worker start (spawn + import + init): {1000 * startup:.1f} ms, once per worker")
    print(f"  direct      {percentiles(direct)}")
    print(f"  worker call {percentiles(calls)}")
    print(f"  runner      {percentiles(shard)}   (worker call + durable mini-batch result)")
    print(f"  overhead per mini-batch (runner - direct, medians): "
          f"{1000 * (statistics.median(shard) - statistics.median(direct)):.3f} ms")


if __name__ == "__main__":
    main()
