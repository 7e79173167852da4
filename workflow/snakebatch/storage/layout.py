"""The run layout: every path under ``results/{run_name}/``, named in one place.

The rules (``workflow/rules/*.smk``) and the package build their paths from a ``RunLayout``;
nothing else spells out the shape of the run folder. Paths are as joined onto ``root`` (relative
when ``root`` is); ``absolute()`` gives the same layout with an absolute root, for a worker whose
working directory may differ. Shard numbers are 0-based ints; ``{shard}`` wildcards in the rules
are the zero-padded ``shard_id`` (``"00003"``).

``results/{run_name}/``::

    {append_row_file_name}                 merged results (append_row)
    summary.json  errors.jsonl  _SUCCESS   the run's verdict (gather)
    demo_accuracy.json                     the demo's score against its labels (demo only)
    plan.json                              the resolved plan of the invocation that last started
    partition/shard-NNNNN.json             one manifest per shard
    partition/listing-{fp16}.list          the dataset listing the manifests were cut from,
                                           named by its fingerprint (``listing``; the format:
                                           ``snakebatch.partition.listing``)
    partition/listed-{fp16}.list           a listing the main process made for the partition job
    shards/shard-NNNNN.jsonl               one result file per shard job
    shards/shard-NNNNN.unfinished          left by a shard that stopped early (runs again;
                                           ``.unfinished-again`` when it stops again)
    minibatches/{k[:2]}/{k}.json|.arrow    the durable result of every finished mini-batch, by
                                           store key k (``StoreLayout``)
    minibatches/items/{fp32}/*.idx         the item index of a runner fingerprint (its first 32
                                           hex digits): one file per writer, compacted ones
    minibatches/items/.upkeep.lock         held by the process compacting the item index or
                                           removing folders of old fingerprints (``storage.upkeep``)
    progress/shard-NNNNN.json              each shard's progress in the current invocation
    claims/{invocation}/{index:09d}.{g}    claim generation g of a mini-batch (``infer.claims``)
    claims/{invocation}/{index:09d}.result.json   its hand-off to the owner shard
    gpus/gpu-K.lock                        held by the shard job using GPU K (``infer.devices``)
    specs/{partition,runner,gather}.json   the stages' settings, written when the run starts jobs
    specs/config.yaml                      the whole config the run used (the report shows it)
    report/                                the files of ``snakemake --report`` (snakebatch.monitor.report)
    entry_script_modules.json(.lock)       helper modules the entry script imported, its lock
    outputs/                               EntryScript().output_dir
    logs/                                  job_result.txt, job_progress_overview.txt, stage logs,
                                           sys/node/, sys/job_report/, user/{stdout,stderr,error}/
"""

from __future__ import annotations

import os
from dataclasses import dataclass

RESULTS_ROOT = "results"
STORE_DIR = "minibatches"
ITEMS_DIR = "items"
#: the file name ending of an item index file
INDEX_SUFFIX = ".idx"
#: how compacted item index files start (they sort before the writers' ``{shard:05d}-...`` files)
COMPACTED_PREFIX = "+compacted-"
#: the file name ending of a dataset listing
LISTING_SUFFIX = ".list"


def shard_id(shard: int) -> str:
    """The zero-padded name of a shard used in file names: 3 -> ``'00003'``."""
    return f"{shard:05d}"


@dataclass(frozen=True)
class StoreLayout:
    """The paths of a mini-batch store folder ``root`` (``results/{run}/minibatches``; tests
    put one anywhere). ``key`` is a store key (hex SHA-256 of the runner fingerprint and the
    mini-batch key, ``infer.store``); ``fingerprint`` a hex runner fingerprint."""

    root: str

    def result(self, key: str) -> str:
        """``{root}/{key[:2]}/{key}.json``: a stored MiniBatchResult."""
        return os.path.join(self.root, key[:2], key + ".json")

    def table(self, key: str) -> str:
        """``{root}/{key[:2]}/{key}.arrow``: a stored result table (Arrow IPC stream)."""
        return os.path.join(self.root, key[:2], key + ".arrow")

    @property
    def items_dir(self) -> str:
        """``{root}/items``: one item index folder per runner fingerprint."""
        return os.path.join(self.root, ITEMS_DIR)

    def item_index_dir(self, fingerprint: str) -> str:
        """``{root}/items/{fingerprint[:32]}``: the item index files of one runner fingerprint."""
        return os.path.join(self.root, ITEMS_DIR, fingerprint[:32])

    def item_index_file(self, fingerprint: str, shard: int, pid: int, ns: int) -> str:
        """The index file one writer process (``pid``, of shard ``shard``, opened at ``ns``
        nanoseconds since the epoch) appends to: ``{shard:05d}-{pid}-{ns}.idx``."""
        return os.path.join(self.item_index_dir(fingerprint), f"{shard_id(shard)}-{pid}-{ns}{INDEX_SUFFIX}")

    def compacted_index_file(self, fingerprint: str, ns: int) -> str:
        """An index file compaction wrote at ``ns`` (``+compacted-{ns:020d}.idx``: sorts before
        every writer's file, and by time among compacted ones)."""
        return os.path.join(self.item_index_dir(fingerprint), f"{COMPACTED_PREFIX}{ns:020d}{INDEX_SUFFIX}")

    @property
    def upkeep_lock(self) -> str:
        """``{root}/items/.upkeep.lock``: held while one process compacts or removes index folders."""
        return os.path.join(self.root, ITEMS_DIR, ".upkeep.lock")


@dataclass(frozen=True)
class RunLayout:
    """The paths of one run folder ``root`` (``results/{run_name}``)."""

    root: str

    @classmethod
    def for_run(cls, run_name: str, results_root: str = RESULTS_ROOT) -> RunLayout:
        """The layout of ``results/{run_name}``."""
        return cls(os.path.join(results_root, run_name))

    @classmethod
    def of_shard_result(cls, path: str) -> RunLayout:
        """The layout whose ``shard_result`` is ``path`` (``.../shards/shard-NNNNN.jsonl``): a job
        finds its run folder from the file it writes, which an executor may have moved."""
        return cls(os.path.dirname(os.path.dirname(os.path.normpath(path))))

    @classmethod
    def of_partition_file(cls, path: str) -> RunLayout:
        """The layout with ``path`` (a manifest or listing) in its ``partition_dir``."""
        return cls(os.path.dirname(os.path.dirname(os.path.normpath(path))))

    @classmethod
    def of_run_file(cls, path: str) -> RunLayout:
        """The layout with ``path`` (``_SUCCESS``, the merged file, ``summary.json``) at its root."""
        return cls(os.path.dirname(os.path.normpath(path)))

    def absolute(self) -> RunLayout:
        """The same layout with an absolute root."""
        return RunLayout(os.path.abspath(self.root))

    def _join(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    # ----------------------------------------------------------------------- the run's verdict
    def merged(self, append_row_file_name: str) -> str:
        """The merged result file (append_row)."""
        return self._join(append_row_file_name)

    @property
    def summary(self) -> str:
        return self._join("summary.json")

    @property
    def errors(self) -> str:
        return self._join("errors.jsonl")

    @property
    def success_marker(self) -> str:
        """``_SUCCESS``: written last when the run succeeded; holds the merged file's name."""
        return self._join("_SUCCESS")

    @property
    def demo_accuracy(self) -> str:
        """The bundled demo's accuracy score (``scripts/demo_data.py accuracy``)."""
        return self._join("demo_accuracy.json")

    @property
    def plan(self) -> str:
        """The resolved plan (shard count, invocation id) the main snakemake process wrote."""
        return self._join("plan.json")

    @property
    def gpus_dir(self) -> str:
        """The lock files ``gpu-K.lock`` running shard jobs hold for the GPU indices they use
        (snakebatch.infer.devices)."""
        return self._join("gpus")

    def gpu_lock(self, index: int) -> str:
        """``gpus/gpu-K.lock``: held by the shard job whose worker uses GPU index ``index``."""
        return self._join("gpus", f"gpu-{index}.lock")

    # --------------------------------------------------------------------------- working state
    @property
    def partition_dir(self) -> str:
        return self._join("partition")

    def stage_spec(self, stage: str) -> str:
        """The settings of a stage's jobs (``runner``, ``gather``) as JSON, written by the main
        snakemake process when it starts jobs, so the jobs' command lines stay short."""
        return self._join("specs", f"{stage}.json")

    @property
    def config_used(self) -> str:
        """The validated config of the invocation that last started jobs, as YAML."""
        return self._join("specs", "config.yaml")

    @property
    def report_dir(self) -> str:
        return self._join("report")

    def report_file(self, name: str) -> str:
        """A file ``snakemake --report`` embeds (``summary.html``, ``throughput.svg``, ...)."""
        return self._join("report", name)

    def kept_report(self, name: str) -> str:
        """Where gather keeps a copy of its report ``name`` (``summary.json``, ``errors.jsonl``,
        ``processed_mini-batches.csv``) when the run fails: Snakemake removes a failed job's
        outputs, the ``onerror`` hook puts the copies back (gather.restore_reports)."""
        return self._join("logs", "sys", "job_report", "kept", name)

    def manifest(self, shard: int | str) -> str:
        """The manifest of ``shard`` (an int, or a ``{shard}`` wildcard string)."""
        return self._join("partition", f"shard-{_name(shard)}.json")

    def partition_file(self, name: str) -> str:
        """A file of the partition stage other than a manifest (dataset listing records)."""
        return self._join("partition", name)

    def listing(self, fingerprint: str) -> str:
        """The dataset listing (``snakebatch.partition.listing``'s format) whose fingerprint starts with
        ``fingerprint`` (16 hex digits are used), or ``{listing}`` as a wildcard."""
        return self._join("partition", f"listing-{fingerprint[:16]}{LISTING_SUFFIX}")

    def listed(self, fingerprint: str) -> str:
        """The listing the main snakemake process wrote while it parsed the workflow, for the
        partition job, which makes it its ``listing`` (so the dataset is listed once)."""
        return self._join("partition", f"listed-{fingerprint[:16]}{LISTING_SUFFIX}")

    @staticmethod
    def listing_name(path: str) -> str:
        """The name (fingerprint, or ``unlisted``) in a ``listing`` or ``listed`` path:
        ``.../listing-0123456789abcdef.list`` -> ``0123456789abcdef``."""
        base = os.path.basename(path)
        return base.split("-", 1)[1][:-len(LISTING_SUFFIX)]

    @property
    def listing_glob(self) -> str:
        return self._join("partition", f"listing-*{LISTING_SUFFIX}")

    @property
    def shards_dir(self) -> str:
        return self._join("shards")

    def shard_result(self, shard: int | str) -> str:
        """The result file of one shard job (one MiniBatchResult per line)."""
        return self._join("shards", f"shard-{_name(shard)}.jsonl")

    def shard_unfinished(self, shard: int | str, alternate: bool = False) -> str:
        """The marker a shard that stopped early leaves next to its result (``infer.job.mark_unfinished``):
        while it exists it is an input of that shard's job, so the next invocation runs it again.
        ``alternate``: ``.unfinished-again``, the name a shard that was run again for a marker
        and stops early again uses (its job's input must not be newer than its output)."""
        return self._join("shards", f"shard-{_name(shard)}.unfinished" + ("-again" if alternate else ""))

    @property
    def store_dir(self) -> str:
        """The mini-batch store (``infer.store.MiniBatchStore``)."""
        return self._join(STORE_DIR)

    @property
    def store(self) -> StoreLayout:
        """The paths inside ``store_dir``: results, tables, the item index."""
        return StoreLayout(self.store_dir)

    @property
    def node_logs_dir(self) -> str:
        """``logs/sys/node/`` (with a trailing separator): the runner logs of the shard jobs."""
        return self._join("logs", "sys", "node", "")

    @staticmethod
    def shard_name(path: str) -> str:
        """The ``{shard}`` name in a per-shard file name: ``'00003'`` of
        ``.../shards/shard-00003.jsonl`` (or of a manifest, progress record)."""
        base = os.path.basename(path)
        return base[len("shard-"):].split(".", 1)[0]

    @property
    def progress_dir(self) -> str:
        return self._join("progress")

    def progress(self, shard: int | str) -> str:
        return self._join("progress", f"shard-{_name(shard)}.json")

    @property
    def claims_dir(self) -> str:
        """The claims and hand-offs of balanced shards, one folder per invocation (``claims``)."""
        return self._join("claims")

    def claims_folder(self, invocation: str) -> str:
        """``claims/{invocation}``: the claims and hand-offs of one invocation."""
        return self._join("claims", invocation)

    def claim(self, invocation: str, index: int, generation: int) -> str:
        """``claims/{invocation}/{index:09d}.{generation}``: a claim on mini-batch ``index``."""
        return self._join("claims", invocation, f"{index:09d}.{generation}")

    def hand_off(self, invocation: str, index: int) -> str:
        """``claims/{invocation}/{index:09d}.result.json``: the result another shard computed for
        mini-batch ``index``'s owner."""
        return self._join("claims", invocation, f"{index:09d}.result.json")

    @property
    def modules_record(self) -> str:
        """The helper modules the entry script imported (``infer.store.record_modules``)."""
        return self._join("entry_script_modules.json")

    @property
    def modules_record_lock(self) -> str:
        """The lock (``storage.locks.FileLock``) shard jobs hold while they add to ``modules_record``."""
        return self._join("entry_script_modules.json.lock")

    def downloads_dir(self, shard: int | str, what: str = "inputs") -> str:
        """Where the worker of ``shard`` downloads what is not on the local disk: ``inputs`` (the
        files of its mini-batches, removed once each is done) or ``resources`` (models and side
        inputs given by URL, kept for reuse)."""
        return self._join("downloads", f"shard-{_name(shard)}", what)

    @property
    def outputs_dir(self) -> str:
        """``EntryScript().output_dir``."""
        return self._join("outputs")

    # ------------------------------------------------------------------------------------ logs
    @property
    def logs_dir(self) -> str:
        return self._join("logs")

    @property
    def job_result(self) -> str:
        return self._join("logs", "job_result.txt")

    @property
    def progress_overview(self) -> str:
        return self._join("logs", "job_progress_overview.txt")

    @property
    def processed_mini_batches(self) -> str:
        return self._join("logs", "sys", "job_report", "processed_mini-batches.csv")

    def stage_log(self, stage: str) -> str:
        """The log of a one-job stage: ``partition``, ``gather``, ``demo_accuracy``."""
        return self._join("logs", f"{stage}.log")

    def shard_console_log(self, shard: int | str) -> str:
        """What a shard job printed (Snakemake's ``log:`` of infer_shard)."""
        return self._join("logs", "sys", "node", f"shard-{_name(shard)}.console.log")

    @property
    def user_error_dir(self) -> str:
        return self._join("logs", "user", "error", "")

    def shard_logs(self, shard: int | str) -> dict[str, str]:
        """The per-worker log files of ``shard`` (SPEC §6): ``stdout``, ``stderr`` and ``error``
        (what the entry script printed, every failed try), ``node`` (the runner's log) and
        ``stack`` (where the runner asks a hung worker for its stack)."""
        name = f"shard-{_name(shard)}"
        return {
            "stdout": self._join("logs", "user", "stdout", f"{name}.stdout.txt"),
            "stderr": self._join("logs", "user", "stderr", f"{name}.stderr.txt"),
            "error": self._join("logs", "user", "error", f"{name}.txt"),
            "node": self._join("logs", "sys", "node", f"{name}.log"),
            "stack": self._join("logs", "sys", "node", f"{name}.stack.txt"),
        }

    @property
    def user_logs_dir(self) -> str:
        """``logs/user``: the entry script's own logs (``EntryScript().log_dir``)."""
        return self._join("logs", "user")


def _name(shard: int | str) -> str:
    return shard if isinstance(shard, str) else shard_id(shard)
