"""Helpers shared by the tests: write files, validate configs as the Snakefile does, the specs of
each stage, mini-batches, shard result files and one shard job over files. Test modules import
from here, never from each other."""

import json
import os
import textwrap

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMA = os.path.join(REPO, "workflow", "schemas", "config.schema.yaml")


def write(path, text=""):
    """Write ``text`` (dedented) to ``path``, creating folders; return the path as str."""
    os.makedirs(os.path.dirname(str(path)) or ".", exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(textwrap.dedent(text))
    return str(path)


def validated(config: dict) -> dict:
    """``config`` validated against the schema with defaults filled (as the Snakefile does)."""
    from snakemake.utils import validate

    config = json.loads(json.dumps(config))
    validate(config, SCHEMA)
    return config


def file_batch(index, first_item, items, key):
    """A ``file``-kind mini-batch (``kinds.MiniBatch``) of the paths ``items``."""
    from snakebatch.kinds import MiniBatch

    return MiniBatch(kind="file", index=index, first_item=first_item, key=key, count=len(items),
                      payload={"items": list(items)})


def mini_batch_result(index, lines, failed_items=(), reused=False):
    """A MiniBatchResult of mini-batch ``index`` (2 items per mini-batch before it): one
    succeeded item per line of ``lines``, one FailedItem (shard 1, 3 tries,
    ``ValueError: bad {item}``) per name in ``failed_items``."""
    from snakebatch.infer.results import FailedItem, MiniBatchResult

    failures = tuple(FailedItem(item, index, "ValueError: bad " + item, "Traceback...\nValueError: bad " + item, 3,
                                shard=1) for item in failed_items)
    return MiniBatchResult(index=index, key=f"k{index}", first_item=index * 2, item_count=len(lines) + len(failures),
                           succeeded=len(lines), lines=tuple(lines), failures=failures, tries=1,
                           duration_s=0.5, agent_name="shard-00000", started_at=1000.0 + index, reused=reused,
                           cpu_s=0.25)


def write_shards(tmp_path, shards):
    """Write one shard result file ``tmp_path/shards/shard-NNNNN.jsonl`` per list of results in
    ``shards``; return their paths as str, in order."""
    paths = []
    for number, results in enumerate(shards):
        path = tmp_path / "shards" / f"shard-{number:05d}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(r.to_json() + "\n" for r in results))
        paths.append(str(path))
    return paths


def gather_spec(**overrides):
    """A GatherSpec of run ``r`` (append_row to out.txt, no thresholds) with ``overrides``."""
    from snakebatch.settings.config import GatherSpec

    values = dict(run_name="r", output_action="append_row", append_row_file_name="out.txt",
                  append_row_format="txt", error_threshold=-1, allowed_failed_count=None, allowed_failed_percent=None)
    values.update(overrides)
    return GatherSpec(**values)


# ------------------------------------------------------------------------- specs for each stage
def runner_spec(script, **overrides):
    """A RunnerSpec of run ``r`` for the entry script ``script`` (its folder is the source
    directory): append_row txt, 3 tries, 20 s run() timeout, 60 s init timeout; ``overrides``."""
    from snakebatch.settings.config import RunnerSpec

    values = dict(run_name="r", entry_script=str(script), source_directory=os.path.dirname(str(script)),
                  arguments=(), environment_variables={}, models={}, side_inputs={},
                  output_action="append_row", append_row_format="txt", run_invocation_timeout=20.0,
                  run_max_try=3, logging_level="INFO", allow_reuse=True, init_timeout=60.0)
    values.update(overrides)
    return RunnerSpec(**values)


def partition_spec(paths, mini_batch_size, **overrides):
    """A PartitionSpec of run ``r`` over ``paths`` (one path or a list), one shard, no pattern."""
    from snakebatch.settings.config import PartitionSpec

    paths = (str(paths),) if isinstance(paths, (str, os.PathLike)) else tuple(str(p) for p in paths)
    values = dict(run_name="r", paths=paths, pattern=None, mini_batch_size=mini_batch_size, shard_count=1)
    values.update(overrides)
    return PartitionSpec(**values)


# ----------------------------------------------------------------- one shard job over files
def file_mini_batches(files, size):
    """The file mini-batches of ``files`` in runs of ``size`` (keys: the paths joined)."""
    return tuple(file_batch(i, start, files[start:start + size], "|".join(files[start:start + size]))
                 for i, start in enumerate(range(0, len(files), size)))


def write_file_manifest(tmp_path, files, size):
    """The manifest of one shard holding every mini-batch of ``files``; returns its path."""
    from snakebatch.partition.manifest import ShardManifest

    batches = file_mini_batches(files, size)
    manifest = ShardManifest(run_name="r", shard=0, shard_count=1, total_mini_batches=len(batches),
                             total_items=len(files), mini_batches=batches)
    path = os.path.join(str(tmp_path), "partition", "shard-00000.json")
    manifest.write(path)
    return path


def run_files(tmp_path, spec, files, size=3):
    """Run one shard job (``runner.run_shard``) over ``files`` in mini-batches of ``size`` and
    return its MiniBatchResults as gather reads them back from the shard file. Checks the
    stopped-early trailer and that the results the job returns carry no lines (they live in the
    file); ``run_files.stopped`` is why the shard stopped early (None: it ran everything), and
    ``run_files.failure`` the error of an entry script that could not start (import, init())."""
    from snakebatch.infer.results import MiniBatchResult
    from snakebatch.infer.job import run_shard

    output = str(tmp_path / "shards" / "shard-00000.jsonl")
    results, stopped = run_shard(spec, write_file_manifest(tmp_path, files, size), output, str(tmp_path / "run"))
    with open(output) as handle:
        records = [json.loads(line) for line in handle]
    run_files.failure = None
    if stopped:
        trailer = dict(records[-1])
        run_files.failure = trailer.pop("failure", None)
        if run_files.failure is not None:
            assert (trailer.pop("shard"), trailer.pop("shard_count")) == (0, 1)
        assert trailer == {"stopped_early": stopped, "total_mini_batches": len(file_mini_batches(files, size))}
        records = records[:-1]
    assert [r["index"] for r in records] == [r.index for r in results]
    assert all(r.lines == () for r in results)   # the lines live in the shard file, not in memory
    run_files.stopped = stopped
    return [MiniBatchResult.from_json(json.dumps(record)) for record in records]


def lines(results):
    """Every merged line of ``results``, in order."""
    return [line for r in results for line in r.lines]


def init_count(path):
    """How many times init() wrote to the log ``path`` (0 when it never ran)."""
    return open(path).read().count("init") if os.path.exists(path) else 0


def put(fs, url, data):
    """Write ``data`` (str or bytes) to ``url`` on the fsspec filesystem ``fs``; returns ``url``."""
    fs.pipe(url, data.encode() if isinstance(data, str) else data)
    return url


def quiet(message):
    """A ``log`` callable that drops its message."""


def tabular_spec(path, size, **overrides):
    """The PartitionSpec of a tabular dataset ``path`` (one path or a list) cut at ``size`` bytes."""
    return partition_spec(path, size, **{"input_type": "tabular", "run_name": "t", **overrides})


def tabular_batches(path, size, **overrides):
    """The mini-batches the partition cuts from the tabular dataset ``path`` at ``size`` bytes."""
    from snakebatch.kinds import get_kind
    from snakebatch.partition.shards import make_mini_batches

    s = tabular_spec(path, size, **overrides)
    return make_mini_batches(get_kind("tabular").list(s), s, log=lambda message: None)


def read_all(mini_batches, read_options=None):
    """The DataFrame of tabular ``mini_batches`` read back one by one and concatenated."""
    import pandas as pd

    from snakebatch.kinds.tables import reader
    from snakebatch.kinds.tables.kind import TableKind

    frames = [reader.read_chunk(TableKind.chunk(mb), read_options or {}) for mb in mini_batches]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def tagged_processes(variable: str, tag: str) -> set[int]:
    """PIDs of live (not zombie) processes whose environment holds ``variable=tag``: the
    processes of one test's run, found by a tag the test put in their environment."""
    found = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as handle:
                if f"{variable}={tag}".encode() in handle.read().split(b"\0"):
                    with open(f"/proc/{pid}/stat", "rb") as stat:
                        if stat.read().split(b") ")[-1][:1] != b"Z":   # a zombie is dead already
                            found.add(int(pid))
        except OSError:
            continue
    return found
