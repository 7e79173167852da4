"""User code in its box (issue 21): what an entry script does to its process must not reach
snakebatch or the mini-batches after it: descendants in their own session, a changed working
directory, a script named like a standard-library module. Real worker processes."""

import os

import psutil
import pytest

from helpers import lines, run_files, runner_spec, write


def names(paths):
    return [os.path.basename(p) for p in paths]


def _gone(pid):
    """True when ``pid`` no longer runs (gone, or a zombie nobody reaped yet)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _left(before):
    """This process's descendants that run now but did not before, less multiprocessing's
    resource tracker (started with the first spawned worker, it lives as long as the process)."""
    from multiprocessing import resource_tracker

    tracker = getattr(resource_tracker._resource_tracker, "_pid", None)
    return [p for p in psutil.Process().children(recursive=True)
            if p.pid not in before and p.pid != tracker and not _gone(p.pid)]


def _pids(path):
    return [int(p) for p in open(path).read().split()] if os.path.exists(path) else []


DETACH = """
    import os, subprocess, sys, time
    def _detach(how):
        sleeper = [sys.executable, "-c", "import time; time.sleep(300)"]
        if how == "session":
            pid = subprocess.Popen(sleeper, start_new_session=True).pid
        else:  # a daemon: double fork, the middle process exits, the grandchild lives on
            middle = os.fork()
            if middle == 0:
                os.setsid()
                if os.fork() == 0:
                    with open(os.environ["PIDS"], "a") as f:
                        f.write(f"{os.getpid()}\\n")
                    os.execv(sys.executable, sleeper)
                os._exit(0)
            os.waitpid(middle, 0)
            return
        with open(os.environ["PIDS"], "a") as f:
            f.write(f"{pid}\\n")
"""


@pytest.mark.parametrize("how", ["session", "double-fork"])
def test_descendants_in_their_own_session_are_killed_with_a_timed_out_worker(tmp_path, files, monkeypatch, how):
    monkeypatch.setenv("PIDS", str(tmp_path / "pids"))
    script = write(tmp_path / "detach.py", DETACH + f"""
    def run(mini_batch):
        if os.path.basename(mini_batch[0]) == "f01.txt":
            _detach({how!r})
            time.sleep(120)
        return [os.path.basename(p) for p in mini_batch]
""")
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    results = run_files(tmp_path, runner_spec(script, run_invocation_timeout=2.0, run_max_try=1), files[:3], size=1)
    assert lines(results) == ["f00.txt", "f02.txt"]
    assert results[1].failures[0].exception == "MiniBatchTimeout"
    assert _left(before) == []
    assert [pid for pid in _pids(tmp_path / "pids") if not _gone(pid)] == []


def test_descendants_left_running_by_run_are_killed_at_the_shards_end(tmp_path, files, monkeypatch):
    monkeypatch.setenv("PIDS", str(tmp_path / "pids"))
    script = write(tmp_path / "detach.py", DETACH + """
    def run(mini_batch):
        _detach("session")
        _detach("double-fork")
        return [os.path.basename(p) for p in mini_batch]
""")
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    results = run_files(tmp_path, runner_spec(script), files[:2], size=1)
    assert lines(results) == ["f00.txt", "f01.txt"]
    assert len(_pids(tmp_path / "pids")) == 4          # a session child and a daemon per mini-batch
    assert _left(before) == []
    assert [pid for pid in _pids(tmp_path / "pids") if not _gone(pid)] == []


def test_a_run_that_changes_the_working_directory_does_not_break_the_relative_paths_after_it(tmp_path, files,
                                                                                            monkeypatch):
    monkeypatch.chdir(tmp_path)
    relative = [os.path.relpath(p, tmp_path) for p in files[:4]]
    script = write(tmp_path / "wander.py", """
    import os
    def init():
        os.chdir("/tmp")
    def run(mini_batch):
        out = [f"{p} {open(p).read().strip()} {os.getcwd()}" for p in mini_batch]
        os.chdir("/")
        return out
""")
    results = run_files(tmp_path, runner_spec(script, run_max_try=1), relative, size=1)
    assert [r.failed for r in results] == [0, 0, 0, 0]
    assert lines(results) == [f"{p} {open(p).read().strip()} {tmp_path}" for p in relative]


@pytest.mark.parametrize("module", ["logging", "threading", "shutil", "concurrent", "json", "queue"])
def test_an_entry_script_named_like_a_standard_library_module_shadows_nothing(tmp_path, files, module):
    script = write(tmp_path / "src" / f"{module}.py", """
    import os
    import logging as real_logging
    def init():
        real_logging.getLogger("user").info("init")
    def run(mini_batch):
        return [os.path.basename(p) + " " + real_logging.__name__ for p in mini_batch]
""")
    results = run_files(tmp_path, runner_spec(script, run_max_try=1), files[:4], size=2)
    assert run_files.failure is None
    assert [r.failed for r in results] == [0, 0]
    assert lines(results) == [f"{n} logging" for n in names(files[:4])]


def test_a_helper_module_beside_the_entry_script_is_imported_but_shadows_no_standard_module(tmp_path, files):
    write(tmp_path / "src" / "helper.py", "WORD = 'helped'\n")
    write(tmp_path / "src" / "colorsys.py", "raise RuntimeError('the standard colorsys module was shadowed')\n")
    script = write(tmp_path / "src" / "score.py", """
    import os
    import helper
    def run(mini_batch):
        import colorsys
        return [os.path.basename(p) + " " + helper.WORD for p in mini_batch]
""")
    results = run_files(tmp_path, runner_spec(script, run_max_try=1), files[:2], size=2)
    assert run_files.failure is None
    assert lines(results) == [f"{n} helped" for n in names(files[:2])]


def test_a_crash_after_init_returned_is_not_called_an_init_failure(tmp_path, files):
    script = write(tmp_path / "breaks.py", """
    import threading
    def init():
        threading.Thread = None   # what the worker needs after init() returned
    def run(mini_batch):
        return mini_batch
""")
    assert run_files(tmp_path, runner_spec(script, run_max_try=1), files[:1], size=1) == []
    first = run_files.failure.split("\n", 1)[0]
    assert first == (f"the worker running {script!r} failed after init() returned, before it was ready: "
                     "TypeError: 'NoneType' object is not callable")
    assert "init() of entry_script" not in run_files.failure


def test_the_source_directory_goes_after_the_standard_library_even_when_it_was_first_on_the_path(tmp_path,
                                                                                                monkeypatch):
    import sys

    from snakebatch.infer.script import _put_on_path

    source = str(tmp_path / "src")
    monkeypatch.setattr(sys, "path", [source, *sys.path])
    _put_on_path(source)
    assert sys.path.count(source) == 1
    assert sys.path.index(source) > sys.path.index(os.path.dirname(os.__file__))
    site = [i for i, entry in enumerate(sys.path) if "site-packages" in entry]
    assert not site or sys.path.index(source) < site[0]
