"""The ``snakebatch`` command (console script, also ``python -m snakebatch``).

``snakebatch status results/<run> [--json] [--stall-margin SECONDS]``: the state of a running or
finished run (snakebatch.monitor.status). Exit status 0, or 2 for a folder that holds no run.
"""

from __future__ import annotations

import argparse
import os
import sys

from snakebatch.errors import SnakebatchError


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = argparse.ArgumentParser(prog="snakebatch", description="ParallelRunStep-style batch inference "
                                     "as a Snakemake workflow: tools for its run folders")
    commands = parser.add_subparsers(dest="command", required=True)
    status = commands.add_parser("status", help="the state of a running or finished run",
                                 description="Per-shard state, stalled shards, counts, ETA and the most frequent "
                                 "errors of the run in RUN_DIR (results/<run_name>), read from its files.")
    status.add_argument("run_dir", metavar="RUN_DIR", help="the run folder, results/<run_name>")
    status.add_argument("--json", action="store_true", help="print one JSON object (fields: README, 'Watch a run')")
    status.add_argument("--stall-margin", type=float, default=None, metavar="SECONDS",
                        help="a running shard with no finished mini-batch for longer than its run_invocation_timeout "
                        "plus this is stalled (default 60)")
    args = parser.parse_args(argv)

    from snakebatch.monitor.status import STALL_MARGIN_S, format_status, run_status

    try:
        result = run_status(args.run_dir, stall_margin_s=STALL_MARGIN_S if args.stall_margin is None
                            else args.stall_margin)
    except SnakebatchError as exc:
        print(f"snakebatch status: error: {exc}", file=sys.stderr)
        return 2
    try:
        print(result.to_json() if args.json else format_status(result))
        sys.stdout.flush()
    except BrokenPipeError:  # `snakebatch status ... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
