"""Benchmark: does the live view slow a run? The shard runner's cost per mini-batch without
progress records, with them (written after every mini-batch), and with them plus a live view
reading the run folder.

    python scripts/benchmark_live_view.py [--mini-batches 5000] [--repeats 3] [--tmp DIR]

Uses the shard of ``benchmark_runner_cost.py`` (in-process fake worker, a real store and run
folder, thresholds set, one failing item every 100 mini-batches), three ways, interleaved
``--repeats`` times: ``no records`` (``progress.write_progress`` does nothing: the runner as it
would be without the live view), ``records`` (as shipped: the first and last record, one after a
failure, else at most one a second), ``records + view`` (as shipped, plus a
``monitor.LiveView`` thread in the same process reading the progress records every 0.5 s and
writing its overview line every second: in a real run it lives in the snakemake process and only
shares the cores). A fake worker answers at once, so the runner's own cost is all there is: a
real ``run()`` of milliseconds or more makes any difference smaller still. Prints the median time
per mini-batch and the shard's wall time per way, and the ratios to ``no records``; figures, never
assertions.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "workflow"))

from benchmark_runner_cost import time_shard  # noqa: E402
from snakebatch.monitor import live as monitor
from snakebatch.monitor import progress  # noqa: E402

REAL_WRITE = progress.write_progress


stop_s: list[float] = []


def _mode(name: str) -> list:
    """Set up ``progress.write_progress`` for one way; returns the live views started (to stop)."""
    views: list = []
    if name == "no records":
        progress.write_progress = lambda run_dir, record: None
    elif name == "records":
        progress.write_progress = REAL_WRITE
    else:
        def write_and_watch(run_dir, record):
            if not views:  # the first record names the run folder: watch it from now on
                view = monitor.LiveView(run_dir, record.invocation, 1, interval_s=1.0, stream=io.StringIO(),
                                        terminal=False)
                views.append(view.start())
            REAL_WRITE(run_dir, record)
            if record.state != "running":  # the shard's last record: stop before its folder goes
                began = time.perf_counter()
                views[0].stop("failed")     # (joining the thread is not the run's cost)
                stop_s.append(time.perf_counter() - began)

        progress.write_progress = write_and_watch
    return views


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mini-batches", type=int, default=5000, help="mini-batches in the shard")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each way, interleaved")
    parser.add_argument("--tmp", default=None, help="folder for the run folders (default: the system's temp folder)")
    args = parser.parse_args()
    os.environ.setdefault(progress.INVOCATION_ENV, f"bench-{os.getpid()}")
    ways = ("no records", "records", "records + view")
    medians: dict[str, list[float]] = {w: [] for w in ways}
    walls: dict[str, list[float]] = {w: [] for w in ways}
    reads: list[int] = []
    for _ in range(args.repeats):
        for way in ways:
            views = _mode(way)
            stop_s.clear()
            samples, wall, _failed = time_shard(args.mini_batches, 2, 100, args.tmp)
            wall -= sum(stop_s)
            reads += [view.stream.getvalue().count("\n") for view in views]
            medians[way].append(statistics.median(samples))
            walls[way].append(wall)
    progress.write_progress = REAL_WRITE
    print(f"live view cost: one shard of {args.mini_batches} mini-batches (2 items each), in-process fake worker, "
          f"{args.repeats} run(s) per way, in {args.tmp or 'the system temp folder'}")
    base = statistics.median(medians["no records"])
    base_wall = statistics.median(walls["no records"])
    for way in ways:
        median, wall = statistics.median(medians[way]), statistics.median(walls[way])
        print(f"  {way:<15} median {1000 * median:7.3f} ms per mini-batch ({median / base:.2f}x)   "
              f"shard {wall:6.2f} s ({wall / base_wall:.2f}x)")
    print(f"  the live view printed {statistics.median(reads) if reads else 0:.0f} line(s) per run (one a second)")


if __name__ == "__main__":
    main()
