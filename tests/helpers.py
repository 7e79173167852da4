"""Helpers shared by the tests: write files, validate configs as the Snakefile does."""

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
    """A ``file``-kind mini-batch (``kinds.Descriptor``) of the paths ``items``."""
    from snakebatch.kinds import Descriptor

    return Descriptor(kind="file", index=index, first_item=first_item, key=key, count=len(items),
                      payload={"items": list(items)})


def mini_batch_result(index, lines, failed_items=(), reused=False):
    """A MiniBatchResult of mini-batch ``index`` (2 items per mini-batch before it): one
    succeeded item per line of ``lines``, one FailedItem (shard 1, 3 tries,
    ``ValueError: bad {item}``) per name in ``failed_items``."""
    from snakebatch.results import FailedItem, MiniBatchResult

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
    from snakebatch.config import GatherSpec

    values = dict(run_name="r", output_action="append_row", append_row_file_name="out.txt",
                  append_row_format="txt", error_threshold=-1, allowed_failed_count=None, allowed_failed_percent=None)
    values.update(overrides)
    return GatherSpec(**values)
