"""Whole `snakemake` runs in a temporary copy of the workflow."""

import os
import shutil
import subprocess
import sys

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COPIED = ["Snakefile", "workflow", "profiles", "scripts", "config"]


class Workflow:
    """A copy of the workflow in ``root``; ``run(*args)`` runs snakemake there."""

    def __init__(self, root):
        self.root = root

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def write_config(self, config, name="config/config.yaml"):
        with open(self.path(name), "w", encoding="utf-8") as handle:
            yaml.safe_dump(config, handle)

    def run(self, *args, cores=2, check=True, timeout=600):
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", str(cores), *args],
                              cwd=self.root, capture_output=True, text=True, env=env, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def read(self, *parts):
        with open(self.path(*parts), encoding="utf-8") as handle:
            return handle.read()


@pytest.fixture
def workflow(tmp_path):
    root = tmp_path / "wf"
    root.mkdir()
    for name in COPIED:
        source = os.path.join(REPO, name)
        if os.path.isdir(source):
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, root / name)
    return Workflow(str(root))
