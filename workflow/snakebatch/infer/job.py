"""The shard job: run every mini-batch of one shard manifest through a supervised worker.

``python -m snakebatch.infer.job --spec JSON --manifest M --output O`` (the run folder is the one
``O`` lies in, ``results/{run}/shards/``)

This module is the command line and the wiring: it leases the shard's GPUs, builds its worker
(``supervisor.WorkerProcess``), its store and its log files, runs the shard loop
(``shard.ShardRunner``: reuse, attempts, watch and balance policies) and writes the shard result
file (one MiniBatchResult per line, input order) to a temporary file as mini-batches finish,
renamed when the shard ends; a shard that stopped early adds a trailer line and leaves a marker
so the next snakemake invocation runs it again. A ``run()`` call that outlives
``run_invocation_timeout`` seconds gets its worker killed (SIGKILL of its process group); a
mini-batch that fails every try is bisected until the failing items are isolated; each finished
mini-batch is written atomically to the store, so a killed shard resumes where it stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys

from snakebatch.errors import EntryScriptError, ManifestError, SnakebatchError
from snakebatch.gather.lifecycle import invalidate_result
from snakebatch.infer.devices import lease_gpus, thread_environment
from snakebatch.infer.entry import WorkerContext
from snakebatch.infer.results import MiniBatchResult, ShardTrailer
from snakebatch.infer.shard import ShardRunner
from snakebatch.infer.store import MiniBatchStore
from snakebatch.infer.supervisor import WorkerProcess, describe_exit  # noqa: F401 - describe_exit: re-exported
from snakebatch.infer.worker import WorkerSetup
from snakebatch.infer.workers import Outcome  # noqa: F401 - re-exported (scripts/benchmark_runner_cost.py)
from snakebatch.partition.manifest import ShardManifest
from snakebatch.settings.config import RunnerSpec
from snakebatch.settings.plan import read_plan
from snakebatch.storage.atomic import atomic_open, describe_os_error, remove_stale_temps, write_text_atomic
from snakebatch.storage.layout import RunLayout
from snakebatch.storage.locations import is_url

log = logging.getLogger("snakebatch.infer.job")


def shard_log_paths(run_dir: str, shard: int) -> dict:
    """The per-worker log files of ``shard`` (SPEC §6 layout, ``RunLayout.shard_logs``), absolute."""
    return RunLayout(run_dir).absolute().shard_logs(shard)


def worker_environment(spec: RunnerSpec, devices: dict | None = None) -> dict:
    """The environment a worker is spawned with: the thread caps of ``threads_per_process``, the
    GPU placement (``devices``: CUDA_VISIBLE_DEVICES or nothing), then the user's
    ``environment_variables``, which win."""
    return {**thread_environment(spec.threads_per_process), **(devices or {}), **spec.environment_variables}


def build_worker(spec: RunnerSpec, run_dir: str, shard: int, devices: dict | None = None) -> WorkerProcess:
    """The WorkerProcess of ``shard`` with absolute paths and its log files; ``devices`` is the
    environment of its GPU lease (see worker_environment)."""
    paths = shard_log_paths(run_dir, shard)
    agent = f"process{shard:03d}"  # ParallelRunStep's agent names; log files keep shard-NNNNN
    context = WorkerContext(
        agent_name=agent,
        output_dir=RunLayout(run_dir).absolute().outputs_dir,
        working_dir=os.getcwd(),
        log_dir=RunLayout(run_dir).absolute().user_logs_dir,
        logging_level=spec.logging_level,
        side_inputs={k: v if is_url(v) else os.path.abspath(v) for k, v in spec.side_inputs.items()},
        models={k: v if is_url(v) else os.path.abspath(v) for k, v in spec.models.items()},
    )
    setup = WorkerSetup(
        entry_script=os.path.abspath(spec.entry_script),
        source_directory=os.path.abspath(spec.source_directory),
        arguments=tuple(spec.arguments), environment_variables=dict(spec.environment_variables),
        append_row_format=spec.append_row_format, output_action=spec.output_action,
        read_options=dict(spec.read_options),
        append_row_dataframe_header=spec.append_row_dataframe_header,
        storage_options=dict(spec.storage_options),
        download_dir=RunLayout(run_dir).absolute().downloads_dir(shard),
        resources_dir=RunLayout(run_dir).absolute().downloads_dir(shard, "resources"),
        stdout_path=paths["stdout"], stderr_path=paths["stderr"], stack_path=paths["stack"], context=context,
        process_environment=worker_environment(spec, devices),
    )
    worker = WorkerProcess(setup)
    worker.name = agent
    return worker


def run_shard(spec: RunnerSpec, manifest_path: str, output_path: str,
              run_dir: str | None = None) -> tuple[list[MiniBatchResult], str | None]:
    """Run one shard job end to end and write its result file atomically (one JSON line per
    mini-batch, written as each finishes to a temporary file, then a trailer line when it stopped
    early). ``run_dir`` defaults to the run folder ``output_path`` lies in. Returns the results
    (without their lines, which are in the file) and why it stopped early (None when it ran every
    mini-batch). A shard that stopped early leaves a marker, so the next snakemake invocation runs
    it again, reusing what it finished (``mark_unfinished``). Raises SnakebatchError subclasses
    with a clear message."""
    layout = RunLayout(run_dir) if run_dir is not None else RunLayout.of_shard_result(output_path)
    invalidate_result(layout.root)
    remove_stale_temps(output_path)  # a shard file a killed run of this shard left half-written
    given = remove_unfinished_markers(output_path)  # this shard runs again now (see mark_unfinished)
    manifest = ShardManifest.read(manifest_path)
    paths = shard_log_paths(layout.root, manifest.shard)
    for path in paths.values():
        os.makedirs(os.path.dirname(path), exist_ok=True)
    os.makedirs(layout.outputs_dir, exist_ok=True)
    handler = logging.FileHandler(paths["node"], encoding="utf-8", errors="backslashreplace")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(spec.logging_level)
    plan = read_plan(layout.plan)
    # held for the whole shard job, so its GPU indices are its own (see snakebatch.infer.devices)
    lease = lease_gpus(spec.gpus_per_process, plan.gpu_pool if plan is not None else None, layout.gpus_dir)
    try:
        if manifest.run_name != spec.run_name:
            raise ManifestError(f"shard manifest {manifest_path!r} belongs to run {manifest.run_name!r}, "
                                f"not {spec.run_name!r}")
        if lease.warning:
            log.warning("%s", lease.warning)
        if lease.indices:
            log.info("GPU(s) %s of this run's pool for this shard's worker", lease.environment["CUDA_VISIBLE_DEVICES"])
        store = MiniBatchStore(layout.store_dir, spec, layout.root)
        worker = build_worker(spec, layout.root, manifest.shard, lease.environment)
        runner = ShardRunner(spec, worker, store, paths["error"], layout.root)
        if plan is not None:  # the id the main snakemake process gave this invocation's shards
            runner.invocation = plan.invocation
        log.info("shard %d/%d: %d mini-batch(es)", manifest.shard, manifest.shard_count, len(manifest.mini_batches))
        with atomic_open(output_path) as handle:  # becomes the shard result only when the shard ends well
            runner.on_result = lambda result: handle.write(result.to_json() + "\n")
            failure = None
            try:
                results = runner.run(manifest)
            except EntryScriptError as exc:  # the script cannot be imported or init() keeps failing
                log.error("%s", exc)
                failure = str(exc)
                results = runner.results
                runner.stopped_early = "the entry script failed to start: " + failure.split("\n", 1)[0]
            if runner.stopped_early:  # the trailer gather looks for (see lifecycle.read_shard_file)
                trailer = ShardTrailer(runner.stopped_early, manifest.total_mini_batches)
                if failure is not None:
                    trailer = ShardTrailer(runner.stopped_early, manifest.total_mini_batches, failure,
                                           manifest.shard, manifest.shard_count)
                handle.write(trailer.to_json() + "\n")
        if runner.stopped_early:
            mark_unfinished(output_path, instead_of=given)
        return results, runner.stopped_early
    finally:
        lease.release()
        log.removeHandler(handler)
        handler.close()


def remove_unfinished_markers(output_path: str) -> str | None:
    """Remove the markers ``mark_unfinished`` left for the shard result ``output_path``; returns
    the first that existed (the one ``wiring.inputs.unfinished_markers`` read), None when there
    was none."""
    layout = RunLayout.of_shard_result(output_path)
    given = None
    for alternate in (False, True):
        marker = layout.shard_unfinished(RunLayout.shard_name(output_path), alternate)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(marker)
            given = given or marker
    return given


def mark_unfinished(output_path: str, instead_of: str | None = None) -> str:
    """Leave the marker ``RunLayout.shard_unfinished`` next to the shard result ``output_path``
    of a shard that stopped early. While a marker exists, the next real run removes the shard's
    result when the workflow is parsed, so Snakemake runs the shard again
    (``wiring.rerun.drop_unfinished_results``; a dry run shows it through a param), and the marker
    needs no date ahead of the result (Snakemake touches a job's outputs at its end). The shard
    removes it when it starts.
    ``instead_of``: the marker this job was run for (``remove_unfinished_markers``); the new one
    takes the other name. Returns the marker's path."""
    layout = RunLayout.of_shard_result(output_path)
    marker = layout.shard_unfinished(RunLayout.shard_name(output_path))
    if marker == instead_of:
        marker = layout.shard_unfinished(RunLayout.shard_name(output_path), alternate=True)
    write_text_atomic(marker, "stopped early; the next run runs this shard again\n")
    return marker


# Seconds a stopped shard job has to clean up (kill its worker and what it left, close the shard
# file) before SIGALRM ends it: snakemake waits for its jobs after a SIGTERM, so none may hang.
TERMINATE_GRACE_S = 30


def _terminate(signum, frame):
    # once: a Ctrl-C reaches the runner both from the terminal and forwarded by snakemake's process
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(TERMINATE_GRACE_S)  # a cleanup that hangs cannot keep snakemake waiting
    name = signal.Signals(signum).name
    print(f"snakebatch runner: stopped by {name}" + (" (Ctrl-C)" if signum == signal.SIGINT else "")
          + "; the next run resumes the unfinished mini-batches", file=sys.stderr, flush=True)
    raise SystemExit(128 + signum)  # unwinds through ShardRunner.run, which kills the worker


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module doc): run one shard job; 0 when it ran (also when it
    stopped early: gather reports that), 1 with the error on stderr when it failed."""
    parser = argparse.ArgumentParser(prog="python -m snakebatch.infer.job", description=__doc__.split("\n\n")[0])
    specs = parser.add_mutually_exclusive_group(required=True)
    specs.add_argument("--spec", help="RunnerSpec as JSON")
    specs.add_argument("--spec-file", help="a file holding --spec")
    parser.add_argument("--manifest", required=True, help="the shard manifest to run")
    parser.add_argument("--output", required=True, help="the shard result file to write (JSON lines)")
    parser.add_argument("--run-dir", help="results/{run_name} (default: the run folder of --output)")
    args = parser.parse_args(argv)
    spec = RunnerSpec.from_json(args.spec if args.spec is not None else _read_text(args.spec_file))
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    try:
        results, stopped = run_shard(spec, args.manifest, args.output, args.run_dir)
    except SnakebatchError as exc:
        print(f"snakebatch runner: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:   # the shard's own writes (a full disk): the worker is stopped by now
        print(f"snakebatch runner: error: {describe_os_error(exc)}", file=sys.stderr)
        return 1
    items = sum(r.item_count for r in results)
    failed = sum(r.failed for r in results)
    reused = sum(1 for r in results if r.reused)
    why = ""
    if stopped:
        why = (" - " + stopped) if stopped.startswith("the entry script failed") else \
            " - stopped early, an error threshold is exceeded"
    print(f"snakebatch runner: {os.path.basename(args.manifest)}: {len(results)} mini-batch(es), "
          f"{items} item(s), {failed} failed, {reused} reused" + why)
    return 0


if __name__ == "__main__":
    sys.exit(main())
