"""Benchmark: what the shard runner itself costs per mini-batch, as a shard grows.

    python scripts/benchmark_runner_cost.py [--sizes 1000,10000,50000] [--items 2] [--fail-every 100]
                                            [--tmp DIR] [--no-balance]

Drives ``infer.shard.ShardRunner.run`` over one shard of N mini-batches with an in-process fake worker
(no process, no pipe: ``run()`` returns one line per item at once), a real mini-batch store and a
real run folder in a temporary directory, and error thresholds set but never exceeded, so the
early-stop path (progress record, threshold check) runs after every mini-batch. One mini-batch in
``--fail-every`` holds a failing item (bisected, reported), as in a real run with tolerated
failures. The time per mini-batch is the wall time between two finished mini-batches as the shard
result writer sees them: store lookup, the worker call, the durable result (atomic write), the
shard result line, the log line and the early-stop check.

Prints the median and 90th percentile per size, in milliseconds, and the ratio of each median to
the smallest size's: a runner whose cost per mini-batch does not grow with the shard has ratios
near 1 (target: within 30%). Figures, never assertions. Durable results are group-committed
(``storage.atomic.GroupCommit``: one flush per second or per 256 results), so the disk's flush cost is
shared; ``--tmp /dev/shm`` (tmpfs) leaves the runner's own cost. ``balance_shards`` is on (each
mini-batch is claimed: one file created, a heartbeat per try); ``--no-balance`` turns it off.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "workflow"))

from snakebatch.monitor import progress  # noqa: E402
from snakebatch.settings.config import RunnerSpec  # noqa: E402
from snakebatch.kinds import Cache, MiniBatch, get_kind  # noqa: E402
from snakebatch.partition.manifest import ShardManifest  # noqa: E402
from snakebatch.infer.shard import ShardRunner  # noqa: E402
from snakebatch.infer.workers import Outcome  # noqa: E402
from snakebatch.infer.protocol import RemoteError  # noqa: E402
from snakebatch.storage.atomic import atomic_open  # noqa: E402
from snakebatch.infer.store import MiniBatchStore  # noqa: E402


class FakeWorker:
    """An in-process stand-in for the supervised worker: ``load`` materialises a mini-batch as its
    input kind does, ``call`` answers at once with one line per item, or fails the whole call when
    an item's name starts with ``bad``."""

    def __init__(self) -> None:
        self.modules: list[str] = []
        self.takes_context = False
        self.loaded: str | None = None
        self.name = "process000"
        self._alive = False
        self._input: list[str] = []

    def start(self, timeout: float | None = None) -> None:
        self._alive = True

    def stop(self) -> None:
        self._alive = False

    def kill(self) -> None:
        self._alive = False

    def alive(self) -> bool:
        return self._alive

    def load(self, key: str, payload: dict, timeout: float) -> Outcome:
        descriptor = MiniBatch.from_dict(payload)
        self._input = get_kind(descriptor.kind).materialise(descriptor, {}, Cache())
        self.loaded = key
        return Outcome(ok=True, length=len(self._input))

    def call(self, items, context, timeout, interrupt=None, poll_s: float = 1.0, loaded=None) -> Outcome:
        names = [os.path.basename(self._input[position]) for position in items]
        bad = [name for name in names if name.startswith("bad")]
        if bad:
            return Outcome(ok=False, cause=RemoteError("ValueError", "builtins", f"cannot read {bad[0]}"),
                           traceback=f"Traceback (most recent call last):\nValueError: cannot read {bad[0]}")
        return Outcome(ok=True, lines=tuple(name + ": ok" for name in names), length=len(items))


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[int(fraction * (len(ordered) - 1))]


def time_shard(mini_batches: int, items: int, fail_every: int, tmp_root: str | None,
               balance: bool = True) -> tuple[list[float], float, int]:
    """Run one shard of ``mini_batches`` mini-batches; return the seconds of each mini-batch, the
    shard's wall seconds and its failed items."""
    with tempfile.TemporaryDirectory(dir=tmp_root) as tmp:
        run_dir = os.path.join(tmp, "run")
        data = os.path.join(tmp, "data")
        batches = []
        for i in range(mini_batches):
            names = [f"item{i * items + j:08d}.png" for j in range(items)]
            if fail_every and i % fail_every == fail_every - 1:
                names[-1] = "bad-" + names[-1]
            paths = tuple(os.path.join(data, name) for name in names)
            batches.append(MiniBatch(kind="file", index=i, first_item=i * items, count=len(paths),
                                      key=hashlib.sha256("|".join(paths).encode()).hexdigest(),
                                      payload={"items": list(paths)}))
        manifest = ShardManifest(run_name="bench", shard=0, shard_count=1, total_mini_batches=mini_batches,
                                 total_items=mini_batches * items, mini_batches=tuple(batches))
        spec = RunnerSpec(run_name="bench", entry_script=os.path.join(tmp, "score.py"), source_directory=tmp,
                          arguments=(), environment_variables={}, models={}, side_inputs={},
                          output_action="append_row", append_row_format="txt", run_invocation_timeout=60.0,
                          run_max_try=3, logging_level="INFO", allow_reuse=True,
                          error_threshold=mini_batches * items, allowed_failed_percent=50.0, balance_shards=balance)
        with open(spec.entry_script, "w", encoding="utf-8") as handle:  # fingerprinted by the store
            handle.write("def init():\n    pass\n\ndef run(mini_batch):\n    return mini_batch\n")
        for folder in ("logs/user/error", "logs/sys/node"):
            os.makedirs(os.path.join(run_dir, folder), exist_ok=True)
        handler = logging.FileHandler(os.path.join(run_dir, "logs", "sys", "node", "shard-00000.log"))
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log = logging.getLogger("snakebatch.infer.job")
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
        try:
            runner = ShardRunner(spec, FakeWorker(), MiniBatchStore(os.path.join(run_dir, "minibatches"), spec, run_dir),
                                 os.path.join(run_dir, "logs", "user", "error", "shard-00000.txt"), run_dir)
            stamps: list[float] = []
            with atomic_open(os.path.join(run_dir, "shards", "shard-00000.jsonl")) as handle:
                def on_result(result) -> None:
                    handle.write(result.to_json() + "\n")
                    stamps.append(time.perf_counter())

                runner.on_result = on_result
                start = time.perf_counter()
                results = runner.run(manifest)
                wall = time.perf_counter() - start
        finally:
            log.removeHandler(handler)
            handler.close()
        assert len(results) == mini_batches and runner.stopped_early is None
        per_mini_batch = [b - a for a, b in zip([start] + stamps[:-1], stamps)]
        return per_mini_batch, wall, sum(r.failed for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,50000", help="mini-batches per shard, comma-separated")
    parser.add_argument("--items", type=int, default=2, help="items per mini-batch")
    parser.add_argument("--fail-every", type=int, default=100, help="one mini-batch in N holds a failing item (0: none)")
    parser.add_argument("--tmp", default=None, help="folder for the run folders (default: the system's temp folder)")
    parser.add_argument("--no-balance", action="store_true", help="balance_shards false: no claims")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    os.environ.setdefault(progress.INVOCATION_ENV, f"bench-{os.getpid()}")

    print(f"runner cost per mini-batch, one shard, {args.items} item(s) per mini-batch, in-process fake worker, "
          f"thresholds set, one failing item every {args.fail_every} mini-batches, in {args.tmp or tempfile.gettempdir()}")
    medians = {}
    for size in sizes:
        samples, wall, failed = time_shard(size, args.items, args.fail_every, args.tmp, not args.no_balance)
        ordered = sorted(samples)
        medians[size] = statistics.median(ordered)
        print(f"  {size:>7} mini-batches: median {1000 * medians[size]:7.3f} ms   p90 "
              f"{1000 * percentile(ordered, 0.9):7.3f} ms   (shard {wall:6.1f} s, {failed} failed item(s))")
    first = sizes[0]
    print("  ratio of medians to " + f"{first}: " + ", ".join(
        f"{size}: {medians[size] / medians[first]:.2f}" for size in sizes[1:]) + "   (target: within 1.30)")


if __name__ == "__main__":
    main()
