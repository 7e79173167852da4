"""snakebatch used from a user's own folder as a Snakemake module (the workflow catalog's way,
what `snakedeploy deploy-workflow` writes), the README's "Your own data and script" word for word."""

import os
import subprocess
import sys

import pytest
import yaml

from helpers import write

pytestmark = pytest.mark.slow

SNAKEFILE = """\
configfile: "config/config.yaml"


module snakebatch:
    snakefile:
        "{snakefile}"
    config:
        config


use rule * from snakebatch
"""

SCORE = """
    import os
    from azureml.core import Model

    def init():
        global weight
        weight = int(open(os.path.join(Model.get_model_path("my_model"), "weight.txt")).read())

    def run(mini_batch):
        return [f"{os.path.basename(path)}: {int(open(path).read()) * weight}" for path in mini_batch]
"""


def snakemake(project, *args):
    return subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", *args], cwd=project,
                          capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}, timeout=600)


@pytest.fixture
def project(tmp_path, workflow):
    """A user's folder outside the repository: data in nested folders, a script, a model, a
    config with paths relative to the folder, and the module Snakefile (``workflow``: a copy of
    this repository's workflow, somewhere else)."""
    root = tmp_path / "my-project"
    for i in range(7):
        write(root / "data" / f"batch{i % 2}" / f"x{i}.txt", f"{i}\n")
    write(root / "src" / "score.py", SCORE)
    write(root / "models" / "my_model" / "weight.txt", "10\n")
    os.makedirs(root / "config")
    with open(root / "config" / "config.yaml", "w", encoding="utf-8") as handle:
        yaml.safe_dump({"run_name": "my-run", "input": {"path": "data", "pattern": "*.txt"}, "entry_script": "score.py",
                        "source_directory": "src", "models": {"my_model": "models/my_model"}, "mini_batch_size": 2,
                        "append_row_file_name": "predictions.txt"}, handle)
    (root / "Snakefile").write_text(SNAKEFILE.format(snakefile=workflow.path("Snakefile")))
    return str(root)


def test_a_users_folder_runs_snakebatch_as_a_module_with_its_own_relative_paths(project):
    proc = snakemake(project)
    assert proc.returncode == 0, proc.stderr
    with open(os.path.join(project, "results", "my-run", "predictions.txt"), encoding="utf-8") as handle:
        assert handle.read() == "x0.txt: 0\nx2.txt: 20\nx4.txt: 40\nx6.txt: 60\nx1.txt: 10\nx3.txt: 30\nx5.txt: 50\n"
    # the module's hooks run: the start line and the verdict
    assert "snakebatch: run 'my-run': 2 shard(s), mini_batch_size 2, results in results/my-run/" in proc.stderr
    assert ("snakebatch: run 'my-run' succeeded: 7 of 7 items succeeded, 0 failed -> "
            "results/my-run/predictions.txt") in proc.stderr
    assert not os.path.exists(os.path.join(project, "resources"))   # none of the demo
    again = snakemake(project)
    assert "Nothing to be done" in again.stdout + again.stderr


def test_a_missing_relative_path_names_the_folder_it_was_read_from(project):
    with open(os.path.join(project, "config", "config.yaml"), encoding="utf-8") as handle:
        config = yaml.safe_load(handle)
    config["models"]["my_model"] = "model/my_model"
    with open(os.path.join(project, "config", "config.yaml"), "w", encoding="utf-8") as handle:
        yaml.safe_dump(config, handle)
    proc = snakemake(project, "-n")
    assert proc.returncode != 0
    assert (f"snakebatch: invalid config: models.my_model: 'model/my_model' does not exist (a relative path is "
            f"read from the working directory {project})") in proc.stdout + proc.stderr
