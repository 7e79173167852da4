import os
import stat

import pytest

from snakebatch.errors import ManifestError
from snakebatch.storage.atomic import FILE_MODE, atomic_open, read_json, write_json_atomic


def test_atomic_write_replaces_the_file_with_normal_permissions(tmp_path):
    path = tmp_path / "sub" / "out.txt"
    with atomic_open(path) as handle:
        handle.write("new\n")
    assert path.read_text() == "new\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == FILE_MODE
    assert os.listdir(tmp_path / "sub") == ["out.txt"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_open(path) as handle:
            handle.write("half")
            raise RuntimeError("disk full")
    assert path.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_read_json_names_the_file(tmp_path):
    write_json_atomic(tmp_path / "ok.json", {"a": 1})
    assert read_json(tmp_path / "ok.json", "thing") == {"a": 1}
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ManifestError, match=r"thing '.*bad.json' is corrupt"):
        read_json(tmp_path / "bad.json", "thing")
    with pytest.raises(ManifestError, match=r"thing '.*none.json' does not exist"):
        read_json(tmp_path / "none.json", "thing")


def test_temporary_files_of_a_killed_writer_are_removed(tmp_path):
    from snakebatch.storage.atomic import remove_stale_temps

    target = tmp_path / "out.txt"
    for name in (".tmp-out.txt-abc123", ".tmp-out.txt-99", ".tmp-other.txt-1", "out.txt"):
        (tmp_path / name).write_text("x")
    assert sorted(os.path.basename(p) for p in remove_stale_temps(str(target))) == [".tmp-out.txt-99", ".tmp-out.txt-abc123"]
    assert sorted(os.listdir(tmp_path)) == [".tmp-other.txt-1", "out.txt"]


def test_group_commit_renames_each_file_at_once_and_flushes_per_group(tmp_path):
    from snakebatch.storage.atomic import GroupCommit

    commits = GroupCommit(str(tmp_path), every_s=3600.0, every_n=2)
    commits.write_text(tmp_path / "a" / "1.json", "one\n")
    assert ((tmp_path / "a" / "1.json").read_text(), commits.flushes) == ("one\n", 0)
    commits.write_text(tmp_path / "a" / "2.json", "two\n")
    assert commits.flushes == 1
    commits.write_text(tmp_path / "a" / "1.json", "uno\n")
    assert ((tmp_path / "a" / "1.json").read_text(), commits.flushes) == ("uno\n", 1)
    commits.commit()
    commits.commit()  # nothing pending: no flush
    assert commits.flushes == 2
    assert sorted(os.listdir(tmp_path / "a")) == ["1.json", "2.json"]  # no temporary file left


def test_group_commit_flushes_once_a_second_has_passed(tmp_path):
    from snakebatch.storage.atomic import GroupCommit

    now = [100.0]
    commits = GroupCommit(str(tmp_path), every_s=1.0, every_n=1000)
    commits._clock = lambda: now[0]
    commits._last = now[0]
    commits.write_text(tmp_path / "1.json", "1")
    now[0] += 0.5
    commits.write_text(tmp_path / "2.json", "2")
    assert commits.flushes == 0
    now[0] += 0.6
    commits.write_text(tmp_path / "3.json", "3")
    assert commits.flushes == 1


def test_a_failed_group_write_leaves_the_old_file(tmp_path, monkeypatch):
    from snakebatch.storage.atomic import GroupCommit

    commits = GroupCommit(str(tmp_path))
    commits.write_text(tmp_path / "r.json", "old")
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    with pytest.raises(OSError, match="No space left"):
        commits.write_text(tmp_path / "r.json", "new")
    assert os.listdir(tmp_path) == ["r.json"] and (tmp_path / "r.json").read_text() == "old"


def test_a_temporary_file_whose_writer_still_runs_is_kept_one_whose_writer_is_gone_is_removed(tmp_path):
    import subprocess
    import sys

    from snakebatch.storage.atomic import remove_stale_temps, temp_prefix

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    target = tmp_path / "summary.json"
    mine = tmp_path / (temp_prefix(target) + "x1y2z3w4")
    dead = tmp_path / f".tmp-summary.json-p{gone}-x1y2z3w4"
    unsynced = tmp_path / f".tmp-summary.json-p{gone}"
    for path in (mine, dead, unsynced):
        path.write_text("x")
    assert mine.name == f".tmp-summary.json-p{os.getpid()}-x1y2z3w4"
    assert sorted(os.path.basename(p) for p in remove_stale_temps(str(target))) == sorted([dead.name, unsynced.name])
    assert os.listdir(tmp_path) == [mine.name]
