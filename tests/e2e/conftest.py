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
        # as CI runs it: no PYTHONPATH of the developer's (each job's command sets its own)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env["PYTHONUNBUFFERED"] = "1"
        proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", str(cores), *args],
                              cwd=self.root, capture_output=True, text=True, env=env, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def read(self, *parts):
        with open(self.path(*parts), encoding="utf-8") as handle:
            return handle.read()


def copy_workflow(root) -> Workflow:
    """A fresh copy of the repository's workflow in ``root`` (created)."""
    os.makedirs(root)
    for name in COPIED:
        source = os.path.join(REPO, name)
        if os.path.isdir(source):
            shutil.copytree(source, os.path.join(root, name), ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, os.path.join(root, name))
    return Workflow(str(root))


@pytest.fixture
def workflow(tmp_path):
    return copy_workflow(tmp_path / "wf")


DEMO_RESOURCES = ["resources/demo/mnist", "resources/demo/model", "resources/demo/model-tf1"]


@pytest.fixture(scope="session")
def demo_resources(tmp_path_factory):
    """The demo's digits, Keras model and TF1 checkpoint, built once per pytest run by the
    workflow's own demo rules (in a copy of its own); returns the folder holding ``resources/``."""
    built = copy_workflow(tmp_path_factory.mktemp("demo") / "wf")
    proc = built.run(*DEMO_RESOURCES)
    with open(built.path("console.txt"), "w", encoding="utf-8") as handle:   # what building them printed
        handle.write(proc.stdout + proc.stderr)
    return built.root


@pytest.fixture
def demo_workflow(tmp_path, demo_resources):
    """A fresh workflow copy whose ``resources/demo/`` already holds what the demo rules build
    (see demo_resources), so a test runs the batch inference without retraining the model."""
    copy = copy_workflow(tmp_path / "wf")
    shutil.copytree(os.path.join(demo_resources, "resources", "demo"), copy.path("resources", "demo"),
                    ignore=shutil.ignore_patterns("logs"))
    return copy


SLURM_SCRIPT = os.path.join(REPO, "scripts", "slurm_single_node.sh")


@pytest.fixture(scope="session")
def slurm_cluster():
    """A one-node SLURM cluster on 127.0.0.1 (scripts/slurm_single_node.sh), started once for the
    tests that ask for it and stopped (daemons by PID, its slurm.conf removed) when the session ends.
    Skipped where it cannot start (not root, no apt), except under CI=true, where that fails."""
    def unavailable(reason):
        if os.environ.get("CI") == "true":
            pytest.fail(f"SLURM test cluster: {reason}")
        pytest.skip(f"SLURM test cluster: {reason}")

    if os.geteuid() != 0:
        unavailable("needs root (it writes /etc/slurm/slurm.conf and starts munged, slurmctld, slurmd)")
    if shutil.which("slurmctld") is None and shutil.which("apt-get") is None:
        unavailable("slurm-wlm is not installed and there is no apt-get to install it")
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        unavailable("snakemake-executor-plugin-slurm is not installed (pip install -e '.[slurm]')")
    proc = subprocess.run(["bash", SLURM_SCRIPT, "start"], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        unavailable(f"could not start:\n{proc.stdout}\n{proc.stderr}")
    yield {"partition": "debug"}
    subprocess.run(["bash", SLURM_SCRIPT, "stop"], capture_output=True, text=True, timeout=120)
