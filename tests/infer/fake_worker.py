"""An in-process worker (``snakebatch.infer.workers.Worker``) for policy tests: no process, no
pipe, answers in microseconds.

``FakeWorker(run)``: ``run(names)`` gets the base names of the items of one run() call and
returns their lines, or raises: any exception is the entry script's (a failed Outcome whose cause
is its ``protocol.RemoteError``); ``Hang()`` is a call that does not return (the interrupt is
asked ``polls`` times, then it is a ``MiniBatchTimeout``, the worker killed); ``Die()`` is a
worker death (``WorkerDied``). ``init`` (a callable, may raise ``InitFailed`` /
``ScriptImportFailed``) runs on each start; ``unreadable`` names items a load reports as
unreadable. Records: ``starts``, ``calls`` (names per call), ``loads`` (keys), ``sent``
(prefetched keys), ``stopped``/``killed`` counts.
"""

from __future__ import annotations

import os

from snakebatch.errors import MiniBatchTimeout, WorkerDied
from snakebatch.infer import protocol
from snakebatch.infer.workers import Interrupted, Outcome
from snakebatch.kinds import Cache, MiniBatch, get_kind


class Hang(Exception):
    """Raised by a scripted run(): the call hangs until the timeout (or an interrupt)."""


class Die(Exception):
    """Raised by a scripted run(): the worker process dies in the call."""


def echo(names):
    """run() of an echo script: one line per item, its name."""
    return [name + ": ok" for name in names]


class FakeWorker:
    """See the module doc."""

    def __init__(self, run=echo, init=None, unreadable=(), polls: int = 3, takes_context: bool = False) -> None:
        self.run = run
        self.init = init
        self.unreadable = set(unreadable)
        self.polls = polls
        self.name = "process000"
        self.modules: list[str] = []
        self.takes_context = takes_context
        self.loaded: str | None = None
        self.running = None
        self.starts = self.stopped = self.killed = 0
        self.calls: list[list[str]] = []
        self.loads: list[str] = []
        self.sent: list[str] = []
        self._alive = False
        self._inputs: dict[str, list] = {}

    # ------------------------------------------------------------------------- start and stop
    def start(self, timeout: float | None = None) -> None:
        self.starts += 1
        if self.init is not None:
            self.init()
        self._alive = True

    def alive(self) -> bool:
        return self._alive

    def stop(self) -> None:
        self.stopped += 1
        self._lose()

    def kill(self) -> None:
        if self._alive:
            self.killed += 1
        self._lose()

    def _lose(self) -> None:
        self._alive = False
        self.loaded = None
        self._inputs = {}

    # ------------------------------------------------------------------------------ requests
    def send_load(self, key: str, payload) -> int:
        self.sent.append(key)
        return len(self.sent)

    def load(self, key: str, payload, timeout: float) -> Outcome:
        self.loads.append(key)
        descriptor = MiniBatch.from_dict(payload)
        items = list(get_kind(descriptor.kind).materialise(descriptor, {}, Cache()))
        self._inputs = {key: items}
        self.loaded = key
        failed = tuple((position, f"OSError: cannot read {os.path.basename(item)}")
                       for position, item in enumerate(items) if os.path.basename(item) in self.unreadable)
        return Outcome(ok=True, length=len(items), failed_items=failed)

    def call(self, items, context, timeout, interrupt=None, poll_s: float = 1.0, loaded=None) -> Outcome:
        names = [os.path.basename(self._inputs[loaded][position]) for position in items]
        self.calls.append(names)
        try:
            lines = list(self.run(names))
        except Hang:
            for _ in range(self.polls):
                if interrupt is not None and interrupt():
                    self.kill()
                    return Outcome(ok=False, cause=Interrupted("the run stopped early while run() worked"))
            self.kill()
            return Outcome(ok=False, cause=MiniBatchTimeout(
                f"run() did not return within run_invocation_timeout={timeout:g} s; the worker was killed "
                "and restarted"), traceback="Stack of the worker when it was killed:\n  hang\n")
        except Die:
            self.kill()
            return Outcome(ok=False, cause=WorkerDied("the worker process exited during run() (signal SIGKILL)"))
        except Exception as exc:  # noqa: BLE001 - the entry script's error
            error = protocol.RemoteError.from_exception(exc, f"Traceback (most recent call last):\n{exc!r}\n")
            return Outcome(ok=False, cause=error, traceback=error.traceback, cpu_s=0.001)
        return Outcome(ok=True, lines=tuple(lines), length=len(lines), cpu_s=0.001)
