"""The processes user code leaves behind: the shard job (the runner process) adopts every orphan
of its workers and kills them when a worker ends and when the shard ends.

A worker runs in a process group of its own, and a timed-out or stopped worker is killed with its
whole group (``supervisor.WorkerProcess.kill``). A process that run() starts in a session of its own
(``subprocess.Popen(..., start_new_session=True)``, ``setsid``, a daemon's double fork: how servers
that libraries start for themselves detach) leaves that group. On Linux the runner makes itself a
*child subreaper* (``prctl(PR_SET_CHILD_SUBREAPER)``): an orphan of a worker, or of a worker's
child, is then re-parented to the runner instead of to init, so it stays a descendant of the
runner, and ``kill_descendants`` finds it. Elsewhere only the descendants a worker still has when
it is killed are found (``descendants_of`` before the kill).

What cannot be caught: a process that leaves the runner's tree by other means (started through a
service manager, ``systemd-run``, a container runtime, ``ssh``, a job scheduler: it is no child of
anything here), and, off Linux, a process already orphaned before its worker is killed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys

log = logging.getLogger("snakebatch.infer.job")

_SUBREAPER: list[bool] = []  # [True/False] once become_subreaper was asked in this process


def become_subreaper() -> bool:
    """Make this process the child subreaper of its descendants (Linux 3.4+; once per process):
    orphans below it are re-parented to it. Returns whether it is one."""
    if _SUBREAPER:
        return _SUBREAPER[0]
    done = False
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            done = ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
        except (OSError, AttributeError):
            done = False
    _SUBREAPER.append(done)
    return done


def descendants_of(pid: int) -> list[int]:
    """Process ids of every descendant of ``pid`` now (by parent links, whatever their session or
    group); [] when it is gone."""
    import psutil

    try:
        return [child.pid for child in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


def children_now() -> set[int]:
    """Process ids of this process's children now (the bystanders ``kill_descendants`` spares
    when they were there before a worker started: a service a test or a caller runs)."""
    import psutil

    try:
        return {child.pid for child in psutil.Process().children(recursive=False)}
    except psutil.Error:
        return set()


def _resource_tracker() -> int | None:
    """The pid of multiprocessing's resource tracker (started with the first spawned worker; it
    serves the runner for its whole life), None when none runs."""
    tracker = sys.modules.get("multiprocessing.resource_tracker")
    return getattr(getattr(tracker, "_resource_tracker", None), "_pid", None)


def kill_descendants(keep: set[int] | frozenset[int] = frozenset(), also: list[int] | tuple = ()) -> list[int]:
    """SIGKILL every descendant of this process except the ``keep`` pids (live workers, children
    that were there before a worker started) and their own descendants, and multiprocessing's resource tracker; also each pid of ``also`` (a killed
    worker's descendants found before its kill). Reaps those that are this process's children, so
    none stays a zombie. Repeats while new ones appear (a process forking while it is killed).
    Returns the pids killed."""
    import psutil

    spared = set(keep)
    tracker = _resource_tracker()
    if tracker is not None:
        spared.add(tracker)
    killed: list[int] = []
    targets = list(also)
    for _ in range(5):
        try:
            children = psutil.Process().children(recursive=False)
        except psutil.Error:
            children = []
        for child in children:
            if child.pid in spared:
                continue
            targets.append(child.pid)
            targets.extend(descendants_of(child.pid))
        targets = [pid for pid in dict.fromkeys(targets) if pid not in killed and pid != os.getpid()]
        if not targets:
            break
        for pid in targets:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        _reap(targets)
        killed.extend(targets)
        targets = []
    if killed:
        log.info("killed %d process(es) left behind by the entry script: %s", len(killed),
                 " ".join(map(str, killed)))
    return killed


def _reap(pids: list[int], wait_s: float = 5.0) -> None:
    """Wait for the killed ``pids`` to end; collect the exit status of this process's children
    among them (zombies otherwise)."""
    import psutil

    processes = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            processes.append(psutil.Process(pid))
    psutil.wait_procs(processes, timeout=wait_s)
