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
