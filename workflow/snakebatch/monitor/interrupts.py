"""The user's interrupt, in the main snakemake process: a Ctrl-C (SIGINT) or a SIGTERM is
remembered, passed on to the shard runners this process started, and reported as the user's
(``interrupted``, ``interrupt_report``), not as a job ended from outside."""

from __future__ import annotations

import contextlib
import os
import threading


_INTERRUPTED: list[int] = []  # the signals of the user's interrupt, in the main snakemake process


def watch_for_interrupt() -> None:
    """In the main snakemake process: remember a SIGINT (Ctrl-C), pass it on to the shard runners
    this process started (a ``kill -INT`` of snakemake alone reaches no job: Snakemake would wait
    for every running shard to finish), then let it do what it did (Snakemake cancels its jobs and
    calls ``onerror``), so the failure is reported as the user's interrupt, not as a job ended
    from outside."""
    import signal

    _forward_to_runners(signal.SIGINT, raise_interrupt=True)


def _forward_to_runners(signum: int, raise_interrupt: bool) -> None:
    """Install a handler of ``signum`` that remembers it as an interrupt, sends it to this
    process's shard runners, then calls the handler that was there before (or, with
    ``raise_interrupt`` and no callable handler, raises KeyboardInterrupt). Outside the main
    thread nothing is installed."""
    import signal

    previous = signal.getsignal(signum)

    def _on_signal(number, frame):
        _INTERRUPTED.append(number)
        for pid in _local_runners():
            with contextlib.suppress(OSError):
                os.kill(pid, number)
        if callable(previous) and not raise_interrupt:
            # on a thread of its own: this handler may interrupt the main thread inside a lock
            # that Snakemake's handler takes (its scheduler's semaphore: a deadlock, seen in CI)
            threading.Thread(target=previous, args=(number, frame), name="snakebatch-signal", daemon=True).start()
        elif callable(previous):
            previous(number, frame)
        elif raise_interrupt:
            raise KeyboardInterrupt

    try:
        signal.signal(signum, _on_signal)
    except ValueError:  # not the main thread: leave it
        pass


def forward_terminate() -> None:
    """In the main snakemake process, once Snakemake's scheduler has set its own SIGTERM handler
    (call it from ``onstart``): a SIGTERM is remembered as an interrupt and also sent to the shard
    runners this process started (its descendants running ``snakebatch.infer.job``), which kill their
    worker and keep every finished mini-batch; then Snakemake's handler runs (start no new job,
    wait for the running ones), so the run ends in seconds instead of after every running shard
    has finished. Jobs on a cluster are not descendants: their executor's own cancel applies."""
    import signal

    _forward_to_runners(signal.SIGTERM, raise_interrupt=False)


def _local_runners() -> list[int]:
    """PIDs of this process's descendants that run ``python -m snakebatch.infer.job``."""
    import psutil

    found = []
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "snakebatch.infer.job" in child.cmdline():
                found.append(child.pid)
    return found


def interrupt_report() -> str:
    """What to say when the user interrupted the run (Ctrl-C / SIGINT, or SIGTERM)."""
    import signal

    if signal.SIGTERM in _INTERRUPTED:
        return ("The run was stopped by SIGTERM; its shard jobs were stopped too. Every mini-batch that finished "
                "is kept: run the same command again to resume; only the unfinished mini-batches run.")
    return ("The run was interrupted by the user (Ctrl-C, SIGINT). Every mini-batch that finished is kept: "
            "run the same command again to resume; only the unfinished mini-batches run (if snakemake "
            "itself was killed, run `snakemake --unlock` first).")


def interrupted() -> bool:
    """Did the user interrupt this snakemake process (a SIGINT or SIGTERM caught by the handlers
    of ``watch_for_interrupt`` / ``forward_terminate``)?"""
    return bool(_INTERRUPTED)
