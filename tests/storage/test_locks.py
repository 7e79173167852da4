"""storage.locks.FileLock: an O_EXCL lock file that holds on NFS (no flock)."""

import multiprocessing
import os
import socket
import subprocess
import sys
import time

import pytest

from snakebatch.storage.locks import FileLock, LockHolder


def _count_under_lock(path, counter, times):
    for _ in range(times):
        with FileLock(path, poll_s=0.001):
            with open(counter, encoding="utf-8") as handle:
                value = int(handle.read())
            time.sleep(0.0005)  # widen the read-modify-write window
            with open(counter, "w", encoding="utf-8") as handle:
                handle.write(str(value + 1))


def test_two_processes_contending_never_hold_it_at_once(tmp_path):
    counter = tmp_path / "counter"
    counter.write_text("0")
    lock = str(tmp_path / "locks" / "c.lock")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_count_under_lock, args=(lock, str(counter), 100)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    assert counter.read_text() == "200"
    assert not os.path.exists(lock)  # released


def test_a_lock_whose_holder_died_is_broken(tmp_path):
    path = str(tmp_path / "a.lock")
    script = ("import sys; from snakebatch.storage.locks import FileLock; "
              "assert FileLock(sys.argv[1]).try_acquire()")  # exits without releasing
    subprocess.run([sys.executable, "-c", script, path], check=True,
                   env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert os.path.exists(path)
    lock = FileLock(path)
    assert lock.try_acquire()
    assert lock.broke.startswith("its holder (pid ") and lock.broke.endswith(") has exited")
    assert lock.read_holder().pid == os.getpid()
    lock.release()
    assert not os.path.exists(path)


def test_a_live_holder_keeps_it_until_stale(tmp_path):
    path = str(tmp_path / "a.lock")
    other = FileLock(path, host="other-node", pid=1)
    assert other.try_acquire()
    mine = FileLock(path, stale_after_s=30.0)
    assert not mine.try_acquire()
    with pytest.raises(TimeoutError, match="is held by LockHolder\\(host='other-node', pid=1"):
        mine.acquire(timeout_s=0.05)
    old = time.time() - 31
    os.utime(path, (old, old))  # no heartbeat for 31 s
    assert mine.try_acquire()
    assert mine.broke == "its holder (pid 1 on other-node) gave no sign of life for 31 s"
    other.release()  # the superseded holder does not remove the lock that replaced its own
    assert mine.read_holder() == mine.holder
    mine.release()


def test_a_live_holder_on_this_host_is_never_broken_by_age(tmp_path):
    path = str(tmp_path / "gpu-0.lock")
    assert FileLock(path).try_acquire()  # this very process holds it
    old = time.time() - 10 ** 6
    os.utime(path, (old, old))
    assert not FileLock(path, stale_after_s=None).try_acquire()


def test_a_stopped_live_holder_on_this_host_is_not_broken_by_age_whatever_stale_after_s(tmp_path):
    # a holder that is alive here but silent (SIGSTOP, swapping) would go on writing after a
    # breaker took the lock: two writers of the modules record, one's modules lost
    path = str(tmp_path / "entry_script_modules.json.lock")
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert FileLock(path, pid=holder.pid).try_acquire()
        old = time.time() - 3600
        os.utime(path, (old, old))  # no heartbeat for an hour
        waiter = FileLock(path, stale_after_s=30.0)
        assert not waiter.try_acquire() and waiter.broke is None
        holder.kill()
        holder.wait()
        assert waiter.try_acquire() and waiter.broke.endswith(") has exited")
    finally:
        holder.kill()
        holder.wait()


def test_an_unreadable_lock_file_is_broken_once_old(tmp_path):
    path = tmp_path / "a.lock"
    path.write_text("")  # a holder that died before writing, or an old flock file
    assert not FileLock(str(path)).try_acquire()  # may be being written now
    old = time.time() - 6
    os.utime(path, (old, old))
    lock = FileLock(str(path), stale_after_s=None)
    assert lock.try_acquire() and lock.broke == "it cannot be read and is 6 s old"


def test_a_breaker_does_not_remove_a_lock_taken_meanwhile(tmp_path):
    path = str(tmp_path / "a.lock")
    dead = FileLock(path, host="other-node", pid=1)
    assert dead.try_acquire()
    seen = (os.stat(path).st_ino, dead.holder.to_json())
    os.unlink(path)  # another breaker removed it, then a new holder took it
    fresh = FileLock(path, host="other-node", pid=2)
    assert fresh.try_acquire()
    assert not FileLock(path)._break(seen)
    assert FileLock(path).read_holder().pid == 2
    assert not os.path.exists(path + ".break")


def test_a_break_guard_left_by_a_dead_breaker_is_removed(tmp_path):
    path = str(tmp_path / "a.lock")
    assert FileLock(path, host="other-node", pid=1).try_acquire()
    guard = tmp_path / "a.lock.break"
    guard.write_text("")
    old = time.time() - 60
    os.utime(path, (old, old))
    lock = FileLock(path, stale_after_s=30.0)
    assert not lock.try_acquire()  # a breaker may be at work
    os.utime(guard, (old, old))
    assert not lock.try_acquire()  # its breaker died: the guard goes ...
    assert not guard.exists()
    assert lock.try_acquire()  # ... and the next try breaks the stale lock


def test_holder_record_round_trips():
    holder = LockHolder(socket.gethostname(), 12, 1.5)
    assert LockHolder.from_json(holder.to_json()) == holder
