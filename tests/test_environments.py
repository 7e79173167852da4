"""The environment files agree with pyproject.toml (no conda needed): environment.yml (a conda
user's whole setup) installs the project itself with the extras CI installs, and the jobs' conda
environment workflow/envs/snakebatch.yaml lists exactly the packages a job imports: the runtime
dependencies, the demo's model stack and the object-store filesystems, each with pyproject's
version specifier."""

import glob
import os
import re
import tomllib

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from helpers import REPO

# what a snakebatch job imports: the runtime package (dependencies), the demo and example rules
# (demo: TensorFlow, scikit-learn), inputs, models and side inputs by URL (storage: adlfs, s3fs, gcsfs)
JOB_EXTRAS = ("demo", "storage")


def pyproject():
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as handle:
        return tomllib.load(handle)["project"]


def load_yaml(*path):
    with open(os.path.join(REPO, *path), encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    assert isinstance(data, dict) and isinstance(data.get("dependencies"), list), path
    return data


def pip_section(env):
    sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict)]
    assert len(sections) == 1 and all(isinstance(r, str) for r in sections[0])
    return sections[0]


def conda_packages(env):
    """{name: version spec} of the conda (non-pip) dependencies."""
    found = {}
    for entry in env["dependencies"]:
        if isinstance(entry, str):
            name, spec = re.match(r"^([A-Za-z0-9_.-]+)\s*(.*)$", entry).groups()
            found[name] = spec
    return found


def requirements(lines):
    """{normalised name: str(SpecifierSet)} of requirement strings; a name twice fails."""
    found = {}
    for line in lines:
        req = Requirement(line)
        name = req.name.lower().replace("_", "-")
        assert name not in found, f"{name} listed twice"
        found[name] = str(SpecifierSet(str(req.specifier)))
    return found


def own_extras(project, extra):
    """The requirements of ``extra``, with its self-references (snakebatch[a,b]) expanded."""
    lines = []
    for line in project["optional-dependencies"][extra]:
        req = Requirement(line)
        if req.name == project["name"]:
            for inner in sorted(req.extras):
                lines.extend(own_extras(project, inner))
        else:
            lines.append(line)
    return lines


def test_every_environment_file_is_yaml_with_a_dependency_list():
    files = ["environment.yml"] + sorted(os.path.relpath(p, REPO) for p in
                                         glob.glob(os.path.join(REPO, "workflow", "envs", "*.yaml")))
    assert files == ["environment.yml", "workflow/envs/snakebatch.yaml"]
    for path in files:
        env = load_yaml(path)
        assert conda_packages(env)["python"] == "=3.11"
        assert "pip" in conda_packages(env)


def test_the_jobs_environment_lists_the_runtime_demo_and_storage_requirements_of_pyproject():
    project = pyproject()
    expected = requirements(project["dependencies"] + [r for e in JOB_EXTRAS for r in own_extras(project, e)])
    env = load_yaml("workflow", "envs", "snakebatch.yaml")
    assert requirements(pip_section(env)) == expected
    assert set(expected) == {"snakemake", "pandas", "pyarrow", "fsspec", "pillow", "pyyaml", "psutil", "rich", "matplotlib", "numpy",
                             "tensorflow-cpu", "scikit-learn", "adlfs", "s3fs", "gcsfs"}
    assert expected["tensorflow-cpu"] == "==2.21.0"       # the one pinned version


def test_environment_yml_installs_the_project_with_the_extras_ci_installs():
    project = pyproject()
    env = load_yaml("environment.yml")
    assert env["name"] == project["name"]
    (line,) = pip_section(env)
    match = re.fullmatch(r"-e \.\[([a-z,]+)\]", line)
    assert match, line
    extras = set(match.group(1).split(","))
    assert extras <= set(project["optional-dependencies"])
    # .ci/run installs .[test]; test includes demo, storage and slurm
    assert {r for e in extras for r in own_extras(project, e)} == set(own_extras(project, "test"))
    assert re.fullmatch(r">=\d+", conda_packages(env)["nodejs"])   # Azurite, for the storage tests
    assert project["requires-python"] == ">=3.11"
