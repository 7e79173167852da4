"""The file kind (snakebatch.kinds.files.kind): runs of mini_batch_size files, their keys, the
paths run() gets (local files in place, others downloaded once), how items are named."""

import builtins
import hashlib
import os

import pytest

from helpers import partition_spec, put
from snakebatch.kinds import Cache, MaterialiseError, get_kind

FILES = get_kind("file")


def spec(paths, size=3, input_type="file", **overrides):
    return partition_spec(list(paths), size, input_type=input_type, run_name="t", **overrides)


def names(items):
    return [item.path for item in items]


def test_file_mini_batches_have_sizes_first_items_and_the_keys_partition_gives(dataset, files):
    s = spec([str(dataset)], size=3)
    batches = FILES.mini_batches(FILES.list(s), s)
    assert [b.count for b in batches] == [3, 3, 3, 1]
    assert [b.first_item for b in batches] == [0, 3, 6, 9]
    assert [b.index for b in batches] == [0, 1, 2, 3]
    assert [b.payload for b in batches] == [{"items": files[i:i + 3]} for i in range(0, 10, 3)]
    assert {b.kind for b in batches} == {"file"}
    def old_key(paths):  # the digest partition.mini_batch_key gave before the kinds: stored results stay valid
        digest = hashlib.sha256()
        for path in paths:
            st = os.stat(path)
            digest.update(f"{path}\0{os.path.abspath(path)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return digest.hexdigest()
    assert [b.key for b in batches] == [old_key(files[i:i + 3]) for i in range(0, 10, 3)]
    with pytest.raises(ValueError) as info:
        FILES.mini_batches([], spec([str(dataset)], size=0))
    assert str(info.value) == "mini_batch_size must be >= 1, got 0"


def test_memory_mini_batch_keys_hash_urls_and_ukeys(mem):
    fs, root = mem
    for i in range(5):
        put(fs, f"{root}/d/{i}.txt", str(i))
    s = spec([f"{root}/d"], size=2)
    items = list(FILES.list(s))
    batches = FILES.mini_batches(iter(items), s)
    assert [b.count for b in batches] == [2, 2, 1]
    expected = hashlib.sha256("".join(f"{i.path}\0{i.ukey}\n" for i in items[:2]).encode()).hexdigest()
    assert batches[0].key == expected
    assert batches[0].payload == {"items": names(items[:2]), "ukeys": [i.ukey for i in items[:2]],
                                 "sizes": [1, 1]}
    put(fs, f"{root}/d/3.txt", "changed")
    again = FILES.mini_batches(FILES.list(s), s)
    assert [a.key == b.key for a, b in zip(again, batches)] == [True, False, True]


def test_materialise_a_local_file_mini_batch_gives_its_paths(dataset, files, tmp_path):
    s = spec([str(dataset)], size=4)
    batch = FILES.mini_batches(FILES.list(s), s)[1]
    cache = Cache(folder=str(tmp_path / "cache"))
    assert FILES.materialise(batch, {}, cache) == files[4:8]
    assert not os.path.exists(tmp_path / "cache")  # nothing downloaded
    assert FILES.select(files[4:8], 1, 3) == files[5:7]


def test_materialise_a_memory_file_mini_batch_downloads_each_file_once(mem, tmp_path):
    fs, root = mem
    put(fs, f"{root}/d/a.png", "AAA")
    put(fs, f"{root}/d/b.png", "BB")
    s = spec([f"{root}/d"], size=5)
    [batch] = FILES.mini_batches(FILES.list(s), s)
    cache = Cache(folder=str(tmp_path / "cache"))
    paths = FILES.materialise(batch, {}, cache)
    ukeys = batch.payload["ukeys"]
    expected = [str(tmp_path / "cache" / hashlib.sha256(f"{url}\0{ukey}".encode()).hexdigest()[:20] / name)
                for url, ukey, name in zip(batch.payload["items"], ukeys, ["a.png", "b.png"])]
    assert paths == expected
    assert [open(p).read() for p in paths] == ["AAA", "BB"]
    fs.rm(fs._strip_protocol(f"{root}/d/a.png"))
    assert FILES.materialise(batch, {}, cache) == expected  # already there: not read again
    fs.rm(fs._strip_protocol(f"{root}/d"), recursive=True)
    with pytest.raises(MaterialiseError) as info:
        FILES.materialise(batch, {}, Cache(folder=str(tmp_path / "other")))
    assert str(info.value).startswith(f"input file '{batch.payload['items'][0]}' cannot be downloaded: ")


def test_file_items_are_named_and_described(dataset, files):
    s = spec([str(dataset)], size=3)
    batch = FILES.mini_batches(FILES.list(s), s)[1]
    assert FILES.item_names(batch) == tuple(files[3:6])
    assert FILES.describe_item(batch, 2) == files[5]
    assert FILES.describe(batch) == f"{files[3]} and 2 more file(s)"
    assert FILES.item_count(batch) == 3
    assert FILES.partition_key_value(batch) == {}
    assert FILES.count_is_exact


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
