import os

import pytest

from helpers import write
from snakebatch.kinds.files.walk import folder_files, walk_folders, watched_paths
from snakebatch.kinds.files.kind import list_items
from snakebatch.errors import DatasetError


def list_files(paths, pattern=None):
    """The whole listing of the file kind (``list_items`` is a generator)."""
    return list(list_items(paths, pattern))


def paths(items):
    return [item.path for item in items]


def test_folder_is_listed_recursively_in_sorted_order(tmp_path):
    for name in ["b/2.png", "a/1.png", "a/10.png", "c.png", "b/sub/0.png"]:
        write(tmp_path / "data" / name, name)
    root = str(tmp_path / "data")
    assert paths(list_files([root])) == [os.path.join(root, p) for p in
                                         ["a/1.png", "a/10.png", "b/2.png", "b/sub/0.png", "c.png"]]


def test_items_carry_size_and_mtime(tmp_path):
    path = write(tmp_path / "x.bin", "12345")
    [item] = list_files([path])
    assert item.size == 5
    assert item.mtime_ns == os.stat(path).st_mtime_ns


def test_pattern_filters_on_the_file_name(dataset):
    write(dataset / "labels.csv", "x")
    write(dataset / "sub" / "f99.txt", "x")
    listed = paths(list_files([str(dataset)], pattern="f0[12].txt"))
    assert listed == [str(dataset / "f01.txt"), str(dataset / "f02.txt")]
    assert len(list_files([str(dataset)], pattern="*.txt")) == 11


def test_glob_single_file_and_list_keep_the_given_order(dataset):
    listed = paths(list_files([str(dataset / "f09.txt"), str(dataset / "f0[0-1].txt")]))
    assert listed == [str(dataset / "f09.txt"), str(dataset / "f00.txt"), str(dataset / "f01.txt")]


def test_a_file_reached_twice_is_listed_once(dataset):
    listed = paths(list_files([str(dataset / "f03.txt"), str(dataset)]))
    assert len(listed) == 10
    assert listed[0] == str(dataset / "f03.txt")
    assert listed.count(str(dataset / "f03.txt")) == 1


def test_missing_path_names_the_path(tmp_path):
    with pytest.raises(DatasetError) as info:
        list_files([str(tmp_path / "nope")])
    assert str(info.value) == f"input.path: {str(tmp_path / 'nope')!r} does not exist"


def test_glob_matching_nothing_names_the_glob(tmp_path):
    with pytest.raises(DatasetError) as info:
        list_files([str(tmp_path / "*.png")])
    assert str(info.value) == f"input.path: glob {str(tmp_path / '*.png')!r} matched no files"


def test_empty_dataset_is_an_error(dataset):
    with pytest.raises(DatasetError) as info:
        list_files([str(dataset)], pattern="*.png")
    assert str(info.value) == f"input.path: no files matching pattern '*.png' under {str(dataset)!r}: the dataset is empty"
    empty = dataset.parent / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="the dataset is empty"):
        list_files([str(empty)])


def test_watched_paths_hold_folders_and_matching_files(dataset):
    write(dataset / "sub" / "f50.txt", "x")
    write(dataset / "notes.md", "x")
    watched = watched_paths([str(dataset)], pattern="*.txt")
    assert watched[:2] == [str(dataset), str(dataset / "sub")]
    assert str(dataset / "sub" / "f50.txt") in watched
    assert str(dataset / "notes.md") not in watched
    assert len(watched) == 2 + 11


def test_watched_paths_of_a_missing_root_is_the_root(tmp_path):
    assert watched_paths([str(tmp_path / "demo")]) == [str(tmp_path / "demo")]
    assert watched_paths([str(tmp_path / "x" / "*.png")]) == [str(tmp_path / "x")]


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


def test_a_hard_link_in_the_only_root_is_a_second_file(tmp_path):
    data = tmp_path / "data"
    write(data / "a.png", "a")
    os.link(data / "a.png", data / "b.png")
    assert paths(list_files([str(data)])) == [str(data / "a.png"), str(data / "b.png")]
