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
