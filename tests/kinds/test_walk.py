"""Walking local dataset folders (snakebatch.kinds.walk): links followed, each real folder once,
Snakemake's entries skipped, unreadable folders named, a folder named like a glob taken as is."""

import os

import pytest

from helpers import write
from snakebatch.errors import DatasetError
from snakebatch.kinds.listing import list_items, watched_paths
from snakebatch.kinds.walk import folder_files, walk_folders


def list_files(paths, pattern=None):
    """The whole listing of the file kind (``list_items`` is a generator)."""
    return list(list_items(paths, pattern))


def paths(items):
    return [item.path for item in items]


def test_an_existing_folder_with_glob_characters_is_taken_literally(tmp_path):
    write(tmp_path / "s[1]" / "a.txt", "x")
    write(tmp_path / "s1" / "b.txt", "x")
    assert paths(list_files([str(tmp_path / "s[1]")])) == [str(tmp_path / "s[1]" / "a.txt")]


def test_symlink_loops_are_walked_once(tmp_path):
    write(tmp_path / "data" / "a.txt", "x")
    os.symlink(".", tmp_path / "data" / "l1")
    os.symlink(".", tmp_path / "data" / "l2")
    assert paths(list_files([str(tmp_path / "data")])) == [str(tmp_path / "data" / "a.txt")]
    data = tmp_path / "data"
    assert watched_paths([str(data)]) == [str(data), str(data / "l1"), str(data / "l2"), str(data / "a.txt")]


def test_an_unreadable_folder_is_an_error_not_a_silent_gap(tmp_path, monkeypatch):
    write(tmp_path / "data" / "a.txt", "x")
    (tmp_path / "data" / "sub").mkdir()
    real_scandir = os.scandir

    def scandir(path="."):
        if str(path).endswith("sub"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(DatasetError) as info:
        list_files([str(tmp_path / "data")])
    assert str(info.value) == f"input folder {str(tmp_path / 'data' / 'sub')!r} cannot be read: Permission denied"


def walked_files(folder):
    """The files ``walk_folders`` finds, sorted: what ``folder_files`` must give."""
    return sorted(os.path.join(d, f) for d, _, files in walk_folders(folder) for f in files)


def test_folder_files_finds_what_the_folder_walk_finds_and_tells_a_file_link(tmp_path):
    data = tmp_path / "data"
    for name in ["b/2.png", "a/1.png", "a/10.png", "c.png", ".snakemake_timestamp", ".snakemake/log.txt",
                 "z/.snakemake_timestamp", "z/.hidden"]:
        write(data / name, name)
    os.symlink(data / "a", data / "a-again")       # a folder link to a folder walked already: walked once
    os.symlink(data, data / "b" / "up")            # a loop
    files, links = folder_files(str(data))
    assert files == walked_files(str(data)) == [str(data / p) for p in
                                                 ["a/1.png", "a/10.png", "b/2.png", "c.png", "z/.hidden"]]
    assert links is False                          # folder links only: no file can be reached twice
    os.symlink(data / "c.png", data / "b" / "c-link.png")
    files, links = folder_files(str(data) + os.sep)   # a root given with a trailing slash keeps its shape
    assert files == walked_files(str(data) + os.sep)
    assert str(data) + os.sep + "b/c-link.png" in files
    assert links is True
