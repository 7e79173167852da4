"""storage.upkeep: item index compaction and removal of old fingerprints' index folders."""

import os
import subprocess
import sys
import time

from helpers import write
from snakebatch.infer.store import ItemIndex
from snakebatch.storage import upkeep
from snakebatch.storage.layout import StoreLayout
from snakebatch.storage.locks import FileLock

FP = "f" * 64
OLD = time.time() - 3600


def _ident(n):
    return f"{n:064x}"


def _index_file(root, name, records, mtime=OLD):
    path = write(os.path.join(StoreLayout(root).item_index_dir(FP), name),
                 "".join(f"{_ident(n)}\t{line}\n" for n, line in records))
    os.utime(path, (mtime, mtime))
    return path


def _lookup_all(root, count=10):
    return ItemIndex(root).lookup(FP, [_ident(n) for n in range(count)], None)


EIGHT = {1: "v7", **{k + 2: f"item {k + 2}" for k in range(8)}}


def _eight_files(root):
    """8 quiet files, item 1 indexed in each (its last record says 'v7'), a torn last line."""
    for k in range(8):
        _index_file(root, f"00000-{k}-{k}.idx", [(1, f"v{k}"), (k + 2, f"item {k + 2}")])
    with open(StoreLayout(root).item_index_dir(FP) + "/00000-0-0.idx", "a", encoding="utf-8") as handle:
        handle.write(_ident(0) + "\ttorn")
    os.utime(StoreLayout(root).item_index_dir(FP) + "/00000-0-0.idx", (OLD, OLD))


def test_compaction_keeps_the_last_record_per_item_and_leaves_running_writers_alone(tmp_path):
    root = str(tmp_path)
    _eight_files(root)
    live = _index_file(root, "00001-99-99.idx", [(9, "live")], mtime=time.time())
    merged = upkeep.compact_item_index(root, FP)
    assert len(merged) == 8 and live not in merged
    folder = StoreLayout(root).item_index_dir(FP)
    names = sorted(os.listdir(folder))
    assert len(names) == 2 and names[0].startswith("+compacted-") and names[1] == "00001-99-99.idx"
    with open(os.path.join(folder, names[0]), encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    assert len(lines) == 9 and f"{_ident(1)}\tv7" in lines  # one record per item: the last
    assert _lookup_all(root) == {**EIGHT, 9: "live"}
    assert not os.path.exists(StoreLayout(root).upkeep_lock)


def test_compaction_waits_for_enough_quiet_files(tmp_path):
    root = str(tmp_path)
    for k in range(7):
        _index_file(root, f"00000-{k}-{k}.idx", [(k, "x")])
    _index_file(root, "00000-8-8.idx", [(8, "x")], mtime=time.time())  # being written
    assert upkeep.compact_item_index(root, FP) == []
    assert len(os.listdir(StoreLayout(root).item_index_dir(FP))) == 8


def test_compaction_in_several_passes_gives_the_same_index(tmp_path, monkeypatch):
    root = str(tmp_path)
    _eight_files(root)
    monkeypatch.setattr(upkeep, "PASS_BYTES", 100)  # 16 passes over slices of the identities
    assert len(upkeep.compact_item_index(root, FP)) == 8
    assert _lookup_all(root) == EIGHT


def test_compacted_files_are_compacted_again(tmp_path):
    root = str(tmp_path)
    _eight_files(root)
    upkeep.compact_item_index(root, FP)
    for k in range(7):
        _index_file(root, f"00002-{k}-{k}.idx", [(1, f"w{k}")])
    assert len(upkeep.compact_item_index(root, FP)) == 8  # the compacted file and 7 new ones
    assert len(os.listdir(StoreLayout(root).item_index_dir(FP))) == 1
    assert _lookup_all(root)[1] == "w6"


def test_one_process_does_the_upkeep(tmp_path):
    root = str(tmp_path)
    _eight_files(root)
    other = FileLock(StoreLayout(root).upkeep_lock, host="other-node", pid=1)
    assert other.try_acquire()
    assert upkeep.compact_item_index(root, FP) == []
    assert upkeep.remove_old_item_indexes(root, "e" * 64, older_than_s=60) == []
    other.release()


def test_opening_the_index_compacts_it(tmp_path):
    root = str(tmp_path)
    _eight_files(root)
    reader = ItemIndex(root)
    assert reader.lookup(FP, [_ident(1), _ident(9)], None) == {0: "v7", 1: "item 9"}
    assert len(os.listdir(StoreLayout(root).item_index_dir(FP))) == 1


def test_a_writer_whose_file_was_compacted_goes_on_in_a_new_file(tmp_path):
    root = str(tmp_path)
    writer = ItemIndex(root, shard=2)
    writer.add(FP, [_ident(1)], ["one"])
    folder = StoreLayout(root).item_index_dir(FP)
    first = os.path.join(folder, os.listdir(folder)[0])
    os.utime(first, (OLD, OLD))  # the writer idled longer than QUIET_S
    assert upkeep.compact_item_index(root, FP, min_files=1) == [first]
    writer.add(FP, [_ident(2)], ["two"])
    writer.close()
    assert len(os.listdir(folder)) == 2
    assert ItemIndex(root).lookup(FP, [_ident(1), _ident(2)], None) == {0: "one", 1: "two"}


def test_old_fingerprints_folders_are_removed_the_current_and_recent_ones_kept(tmp_path):
    root = str(tmp_path)
    layout = StoreLayout(root)
    current, recent, old = "a" * 64, "b" * 64, "c" * 64
    for fingerprint in (current, recent, old):
        path = write(os.path.join(layout.item_index_dir(fingerprint), "00000-1-1.idx"), "")
        when = time.time() - (10 if fingerprint == recent else 2 * 86400)
        os.utime(path, (when, when))
        os.utime(os.path.dirname(path), (when, when))
    os.makedirs(os.path.join(layout.items_dir, ".removing-d-7", "x"))  # a remover died
    assert upkeep.remove_old_item_indexes(root, current) == ["c" * 32]
    assert sorted(os.listdir(layout.items_dir)) == ["a" * 32, "b" * 32]


def test_opening_an_index_marks_its_folder_in_use(tmp_path):
    root = str(tmp_path)
    folder = StoreLayout(root).item_index_dir(FP)
    write(os.path.join(folder, "00000-1-1.idx"), "")
    os.utime(os.path.join(folder, "00000-1-1.idx"), (1, 1))
    os.utime(folder, (1, 1))
    ItemIndex(root).lookup(FP, [_ident(1)], None)  # a run that only reads this index
    assert upkeep.remove_old_item_indexes(root, "e" * 64) == []
    assert os.path.isdir(folder)


def test_the_temporary_file_of_a_compaction_killed_before_its_rename_is_removed_by_the_next(tmp_path):
    root = str(tmp_path)
    _eight_files(root)
    folder = StoreLayout(root).item_index_dir(FP)
    script = ("import os, sys; from snakebatch.storage import upkeep; "
              "os.replace = lambda *a: os._exit(9); upkeep.compact_item_index(sys.argv[1], sys.argv[2])")
    proc = subprocess.run([sys.executable, "-c", script, root, FP], check=False,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.returncode == 9  # killed between writing the compacted file and renaming it
    left = [name for name in os.listdir(folder) if name.startswith(".tmp-")]
    assert len(left) == 1 and len(os.listdir(folder)) == 9
    os.utime(os.path.join(folder, left[0]), (OLD, OLD))
    assert len(upkeep.compact_item_index(root, FP)) == 8
    assert [name for name in os.listdir(folder) if name.startswith(".tmp-")] == []
    assert _lookup_all(root) == EIGHT


def test_compaction_keeps_every_record_byte_for_byte_even_a_lone_surrogate(tmp_path):
    """The store appends index records with surrogateescape (a name whose bytes are not UTF-8);
    the compacted file holds the same bytes, not an escape of them."""
    root = str(tmp_path)
    odd = "caf\udce9.png: 1"  # the line of a file named with the Latin-1 byte 0xE9
    for k in range(8):
        path = os.path.join(StoreLayout(root).item_index_dir(FP), f"00000-{k}-{k}.idx")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8", errors="surrogateescape") as handle:
            handle.write(f"{_ident(k)}\t{odd if k == 3 else f'item {k}'}\n")
        os.utime(path, (OLD, OLD))
    assert len(upkeep.compact_item_index(root, FP)) == 8
    [name] = os.listdir(StoreLayout(root).item_index_dir(FP))
    with open(os.path.join(StoreLayout(root).item_index_dir(FP), name), "rb") as handle:
        data = handle.read()
    assert f"{_ident(3)}\tcaf".encode() + b"\xe9.png: 1\n" in data
    assert _lookup_all(root, 8)[3] == odd
