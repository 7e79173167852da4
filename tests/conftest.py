"""Shared fixtures: tiny datasets built on the fly."""

import pytest

from helpers import write


@pytest.fixture
def dataset(tmp_path):
    """A folder ``data/`` with files f00.txt..f09.txt whose content is their number."""
    folder = tmp_path / "data"
    for i in range(10):
        write(folder / f"f{i:02d}.txt", f"{i}\n")
    return folder


@pytest.fixture
def files(dataset):
    """The ten paths of ``dataset``, in order."""
    return [str(dataset / f"f{i:02d}.txt") for i in range(10)]


@pytest.fixture
def init_log(tmp_path, monkeypatch):
    """A file the test entry scripts append a line to on each init() (``$INIT_LOG``)."""
    path = str(tmp_path / "init.log")
    monkeypatch.setenv("INIT_LOG", path)
    return path
