"""Shared fixtures: tiny datasets and tiny pure-Python entry scripts built on the fly."""

import json
import os
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMA = os.path.join(REPO, "workflow", "schemas", "config.schema.yaml")


def write(path, text=""):
    """Write ``text`` (dedented) to ``path``, creating folders; return the path as str."""
    os.makedirs(os.path.dirname(str(path)) or ".", exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(textwrap.dedent(text))
    return str(path)


@pytest.fixture
def dataset(tmp_path):
    """A folder ``data/`` with files f00.txt..f09.txt whose content is their number."""
    folder = tmp_path / "data"
    for i in range(10):
        write(folder / f"f{i:02d}.txt", f"{i}\n")
    return folder


def validated(config: dict) -> dict:
    """``config`` validated against the schema with defaults filled (as the Snakefile does)."""
    from snakemake.utils import validate

    config = json.loads(json.dumps(config))
    validate(config, SCHEMA)
    return config
