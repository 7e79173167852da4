"""Hostile local listings: links that lead nowhere or to themselves, a folder link that loops,
a link to a file already listed, a 2 GB sparse file (listed and cut without being read)."""

import builtins
import os

import pytest

from helpers import partition_spec, write
from snakebatch.errors import DatasetError
from snakebatch.kinds import Cache, get_kind
from snakebatch.kinds.files.kind import list_items


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


def test_a_2gb_sparse_file_is_listed_cut_and_materialised_without_being_read(tmp_path, monkeypatch):
    big = tmp_path / "data" / "big.bin"
    big.parent.mkdir()
    with open(big, "wb") as handle:
        handle.truncate(2 * 1024 ** 3)
    real_open = builtins.open

    def guarded(file, *args, **kwargs):
        assert os.fspath(file) != str(big), "snakebatch opened the 2 GB input file"
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded)
    kind = get_kind("file")
    listing = list(kind.list(partition_spec(tmp_path / "data", 1)))
    assert [(i.path, i.size) for i in listing] == [(str(big), 2 * 1024 ** 3)]
    (batch,) = kind.mini_batches(listing, partition_spec(tmp_path / "data", 1))
    assert kind.materialise(batch, {}, Cache()) == [str(big)]
