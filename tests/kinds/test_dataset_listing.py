"""A dataset's Items (snakebatch.kinds.listing, every kind's listing): local folders, globs and
files, links, patterns, change identities, fsspec URLs (memory:// stands for an object store), the
errors that name a root, and the paths Snakemake watches."""

import os

import pytest

from helpers import partition_spec, put, write
from snakebatch.errors import DatasetError
from snakebatch.kinds import Item, get_kind
from snakebatch.kinds.listing import list_items, watched_paths
from snakebatch.storage.locations import change_identity, filesystem, is_local, local_path

FILES = get_kind("file")


def list_files(paths, pattern=None):
    """The whole listing of the file kind (``list_items`` is a generator)."""
    return list(list_items(paths, pattern))


def paths(items):
    return [item.path for item in items]


def spec(paths, size=3, input_type="file", **overrides):
    return partition_spec(list(paths), size, input_type=input_type, run_name="t", **overrides)


def names(items):
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


def test_a_hard_link_in_the_only_root_is_a_second_file(tmp_path):
    data = tmp_path / "data"
    write(data / "a.png", "a")
    os.link(data / "a.png", data / "b.png")
    assert paths(list_files([str(data)])) == [str(data / "a.png"), str(data / "b.png")]


def test_a_dangling_symlink_fails_the_listing_naming_it(tmp_path):
    write(tmp_path / "data" / "a.txt", "a")
    os.symlink(tmp_path / "nowhere", tmp_path / "data" / "b.txt")
    with pytest.raises(DatasetError) as caught:
        list(list_items([str(tmp_path / "data")]))
    assert str(caught.value) == f"input file {str(tmp_path / 'data' / 'b.txt')!r} cannot be read: No such file or directory"


def test_a_symlink_to_itself_fails_the_listing_naming_it(tmp_path):
    write(tmp_path / "data" / "a.txt", "a")
    os.symlink(tmp_path / "data" / "self", tmp_path / "data" / "self")
    with pytest.raises(DatasetError) as caught:
        list(list_items([str(tmp_path / "data")]))
    assert str(caught.value) == (f"input file {str(tmp_path / 'data' / 'self')!r} cannot be read: "
                                 "Too many levels of symbolic links")


def test_loops_and_duplicate_links_list_each_file_once_at_its_first_place(tmp_path):
    data = tmp_path / "data"
    write(data / "b" / "x.txt", "x")
    write(data / "c.txt", "c")
    os.symlink(data, data / "b" / "up")          # a loop: data/b/up -> data
    os.symlink(data / "c.txt", data / "a-link.txt")   # sorts first: the file is listed there, once
    assert [i.path for i in list_items([str(data)])] == [str(data / "a-link.txt"), str(data / "b" / "x.txt")]


# ------------------------------------------------------------------------------ locations, fsspec


@pytest.mark.parametrize("location,expected", [
    ("data/x.png", "data/x.png"), ("/abs/x", "/abs/x"), ("file:///abs/x", "/abs/x"), ("file://rel/x", "rel/x"),
    ("file://", "."),
])
def test_local_path_of_plain_paths_and_file_urls(location, expected):
    assert is_local(location)
    assert local_path(location) == expected
    assert filesystem(location) == (None, expected)


def test_other_urls_are_not_local():
    assert not is_local("s3://bucket/x")
    with pytest.raises(ValueError) as info:
        local_path("s3://bucket/x")
    assert str(info.value) == "'s3://bucket/x' is not a local path or file:// URL"


def test_change_identity_prefers_the_stores_version_and_falls_back_to_ukey(mem):
    fs, root = mem
    put(fs, f"{root}/a", "1")
    assert change_identity(fs, "x", {"ETag": '"abc"', "size": 1}) == "etag:abc"
    assert change_identity(fs, "x", {"generation": 7}) == "generation:7"
    path = fs._strip_protocol(f"{root}/a")
    assert change_identity(fs, path) == "ukey:" + fs.ukey(path)


@pytest.fixture
def tree(tmp_path):
    """data/ with nested files, a .snakemake folder, a symlink loop and a linked duplicate."""
    data = tmp_path / "data"
    for name in ["b/2.png", "a/1.png", "a/10.png", "c.txt", "b/sub/0.png", ".snakemake/x.png"]:
        write(data / name, name)
    os.symlink(str(data), str(data / "b" / "loop"))
    return data


def test_local_listing_is_sorted_deduplicated_and_skips_snakemake_entries(tree):
    root = str(tree)
    items = list(FILES.list(spec([root, str(tree / "a" / "1.png")])))
    expected = [os.path.join(root, p) for p in ["a/1.png", "a/10.png", "b/2.png", "b/sub/0.png", "c.txt"]]
    assert names(items) == expected
    assert [(i.path, i.size, i.mtime_ns) for i in items] == [
        (p, os.stat(p).st_size, os.stat(p).st_mtime_ns) for p in expected]
    st = os.stat(expected[0])
    assert items[0] == Item(path=expected[0], size=7, ukey=f"7:{st.st_mtime_ns}", mtime_ns=st.st_mtime_ns)
    assert items[0].local


def test_a_symlinked_file_is_listed_once_and_a_hard_link_twice(tmp_path):
    data = tmp_path / "data"
    write(data / "a.png", "a")
    os.symlink(str(data / "a.png"), str(data / "b.png"))
    os.link(str(data / "a.png"), str(data / "c.png"))
    os.symlink(str(data / "c.png"), str(data / "d.png"))
    assert names(FILES.list(spec([str(data)]))) == [str(data / "a.png"), str(data / "c.png")]


def test_local_pattern_glob_and_relative_roots(tree, monkeypatch):
    monkeypatch.chdir(tree.parent)
    assert names(FILES.list(spec(["data"], pattern="*.png"))) == [
        "data/a/1.png", "data/a/10.png", "data/b/2.png", "data/b/sub/0.png"]
    assert names(FILES.list(spec(["data/a/1*.png", "data/c.txt"]))) == ["data/a/1.png", "data/a/10.png", "data/c.txt"]


def test_file_urls_give_the_plain_local_paths(tree, monkeypatch):
    root = str(tree)
    assert names(FILES.list(spec([f"file://{root}/a"]))) == [f"{root}/a/1.png", f"{root}/a/10.png"]
    monkeypatch.chdir(tree.parent)
    assert names(FILES.list(spec(["file://data/a"]))) == ["data/a/1.png", "data/a/10.png"]
    assert names(FILES.list(spec(["file://data/a/1*.png"]))) == ["data/a/1.png", "data/a/10.png"]
    plain = FILES.mini_batches(FILES.list(spec(["data/a"])), spec(["data/a"]))
    url = FILES.mini_batches(FILES.list(spec(["file://data/a"])), spec(["file://data/a"]))
    assert plain == url  # same items, same names, same keys


def test_memory_listing_is_sorted_deduplicated_and_named_by_url(mem):
    fs, root = mem
    for name in ["b/2.png", "a/1.png", "a/10.png", "c.txt"]:
        put(fs, f"{root}/data/{name}", name)
    base = root
    items = list(FILES.list(spec([f"{root}/data", f"{root}/data/a/1.png"])))
    assert names(items) == [f"{base}/data/a/1.png", f"{base}/data/a/10.png", f"{base}/data/b/2.png",
                            f"{base}/data/c.txt"]
    assert names(items)[0].startswith("memory:///t")
    assert [i.size for i in items] == [7, 8, 7, 5]
    assert not items[0].local and items[0].mtime_ns is None
    path = fs._strip_protocol(items[0].path)
    assert items[0].ukey == "ukey:" + fs.ukey(path)
    assert names(FILES.list(spec([f"{root}/data"], pattern="*.png"))) == names(items)[:3]
    assert names(FILES.list(spec([f"{root}/data/*/1*.png", f"{root}/data/c.txt"]))) == [
        f"{base}/data/a/1.png", f"{base}/data/a/10.png", f"{base}/data/c.txt"]
    assert names(FILES.list(spec([f"{root}/data/*"]))) == names(items)  # a glob matching folders lists them


def test_listing_streams(mem):
    fs, root = mem
    for i in range(3):
        put(fs, f"{root}/d/{i}.txt", "x")
    stream = FILES.list(spec([f"{root}/d"]))
    assert iter(stream) is stream  # a generator, not a list
    assert next(stream).path.endswith("/d/0.txt")


def test_the_change_identity_changes_with_the_content(tmp_path, mem):
    path = write(tmp_path / "a.txt", "one")
    [before] = FILES.list(spec([path]))
    write(path, "two")
    os.utime(path, ns=(before.mtime_ns + 1000, before.mtime_ns + 1000))
    [after] = FILES.list(spec([path]))
    assert (before.size, after.size) == (3, 3)
    assert before.ukey != after.ukey and after.ukey == f"3:{before.mtime_ns + 1000}"
    fs, root = mem
    put(fs, f"{root}/a.txt", "one")
    [before] = FILES.list(spec([f"{root}/a.txt"]))
    assert list(FILES.list(spec([f"{root}/a.txt"])))[0].ukey == before.ukey  # stable while unchanged
    put(fs, f"{root}/a.txt", "two")
    [after] = FILES.list(spec([f"{root}/a.txt"]))
    assert before.ukey != after.ukey


@pytest.mark.parametrize("where", ["local", "file_url", "memory"])
def test_missing_root_empty_dataset_and_unmatched_glob_name_the_root(where, tmp_path, mem):
    fs, mroot = mem
    if where == "memory":
        base = mroot
        put(fs, f"{base}/empty/.keep", "")  # a folder with one file the pattern below drops
        fs.mkdir(f"{base}/none")
    else:
        os.makedirs(tmp_path / "none")
        write(tmp_path / "empty" / ".keep")
        base = ("file://" if where == "file_url" else "") + str(tmp_path)

    def error(paths, pattern=None):
        with pytest.raises(DatasetError) as info:
            list(FILES.list(spec(paths, pattern=pattern)))
        return str(info.value)

    assert error([f"{base}/missing"]) == f"input.path: '{base}/missing' does not exist"
    assert error([f"{base}/*.csv"]) == f"input.path: glob '{base}/*.csv' matched no files"
    assert error([f"{base}/empty"], "*.png") == (
        f"input.path: no files matching pattern '*.png' under '{base}/empty': the dataset is empty")
    assert error([f"{base}/none"]) == f"input.path: no files under '{base}/none': the dataset is empty"


# ------------------------------------------------------------------------------- watched paths


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
