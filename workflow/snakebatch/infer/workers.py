"""What the shard loop and its policies need of a worker: the ``Worker`` protocol, the ``Outcome``
of one request, and the typed ways a request or a start fails.

``supervisor.WorkerProcess`` is the real worker (a supervised process); tests drive the policies
with an in-process fake (``tests/infer/fake_worker.py``). Errors stay typed here: an Outcome
holds its ``cause`` (the worker's ``protocol.RemoteError``, a ``MiniBatchTimeout``, a
``WorkerDied`` or an ``Interrupted``) and a failed start raises ``ScriptImportFailed`` or
``InitFailed``; only a policy (``attempts``) decides whether to retry, bisect or give up, and only
``Outcome.error`` spells a cause as ``"Type: message"`` text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, Union

from snakebatch.errors import EntryScriptError, MiniBatchTimeout, WorkerDied
from snakebatch.infer import protocol
from snakebatch.infer.entry import MiniBatchContext


class ScriptImportFailed(EntryScriptError):
    """The entry script cannot be imported (or lacks run()): the same code fails the same way,
    so a policy does not start the worker again."""


class InitFailed(EntryScriptError):
    """init() raised, did not return within init_timeout, or the worker died in it: a new worker
    may succeed (a flaky model download), so a policy may start one again."""


class Interrupted(Exception):
    """A run() call was stopped because the caller's ``interrupt()`` said so (an early stop)."""


Cause = Union[protocol.RemoteError, MiniBatchTimeout, WorkerDied, Interrupted]
"""Why a request failed: the worker's exception as data, or what the supervisor saw."""

_LOST = (MiniBatchTimeout, WorkerDied, Interrupted)  # causes after which the worker is gone


@dataclass(frozen=True)
class Outcome:
    """The answer to one request (a ``load`` or a run() ``call``): ``ok`` with ``lines`` and
    ``length`` (len of run()'s result, or a load's row count), or not ok with ``cause`` (see
    ``Cause``) and ``traceback`` (the worker's, or its stack when it was killed); ``cpu_s``: CPU
    seconds the worker spent on it (0 when it was lost); ``header``/``ipc``: csv header and Arrow
    IPC table of a successful call; ``failed_items``: of a load, (position, error text) of items
    that could not be read."""

    ok: bool
    lines: tuple[str, ...] = ()
    length: int = 0
    cause: Cause | None = None
    traceback: str = ""
    cpu_s: float = 0.0
    header: str | None = None
    ipc: bytes | None = None
    failed_items: tuple = ()

    @property
    def error(self) -> str:
        """The cause as ``"Type: message"`` ('' when ok): what the error log and FailedItem hold."""
        if self.cause is None:
            return ""
        if isinstance(self.cause, protocol.RemoteError):
            return self.cause.error
        return f"{type(self.cause).__name__}: {self.cause}"

    @property
    def restart(self) -> bool:
        """True when the worker was lost (timed out, died, interrupted): the next request starts one."""
        return isinstance(self.cause, _LOST)

    @property
    def interrupted(self) -> bool:
        """True when ``interrupt()`` stopped the call."""
        return isinstance(self.cause, Interrupted)

    @classmethod
    def from_reply(cls, reply: protocol.Result | protocol.Failure) -> Outcome:
        """The Outcome of a worker's answer."""
        if isinstance(reply, protocol.Result):
            return cls(ok=True, lines=tuple(reply.lines), length=int(reply.length), cpu_s=float(reply.cpu_s),
                       header=reply.header, ipc=reply.ipc, failed_items=tuple(reply.failed_items or ()))
        return cls(ok=False, cause=reply.error, traceback=reply.error.traceback, cpu_s=float(reply.cpu_s))


@dataclass(frozen=True)
class InFlight:
    """The run() call a worker is in: of mini-batch ``mini_batch`` (index), with ``items`` items
    (a part of it while it is retried or bisected), started at ``since`` (``time.time()``
    seconds, the worker's ``started`` Event)."""

    mini_batch: int
    items: int
    since: float


class Worker(Protocol):
    """A worker as the shard loop's policies see it.

    ``start(timeout)`` starts it and waits for init() (raises ScriptImportFailed or InitFailed);
    ``alive()``; ``load(key, payload, timeout)`` materialises a mini-batch's input (``payload``:
    its ``MiniBatch.to_dict``) and ``send_load`` asks for that ahead without waiting (prefetch);
    ``call(items, context, timeout, interrupt, loaded=key)`` is one run() of ``items`` (positions
    in the input ``key`` loaded); ``stop()`` lets it call shutdown(), ``kill()`` ends it now (a
    restart is ``kill`` then ``start``). Requests answer an ``Outcome``, never raise for the
    worker's errors. Attributes: ``name`` (agent name), ``modules`` (source modules it reported),
    ``takes_context`` (run() takes the mini-batch context), ``loaded`` (key of the input it
    holds, None after a restart) and ``running`` (the InFlight call, from its events)."""

    name: str
    modules: list[str]
    takes_context: bool
    loaded: str | None
    running: InFlight | None

    def start(self, timeout: float | None = None) -> None:
        """Start the worker; wait at most ``timeout`` s for init(). Raises ScriptImportFailed, InitFailed."""

    def alive(self) -> bool:
        """True while the worker runs."""

    def load(self, key: str, payload, timeout: float) -> Outcome:
        """Materialise mini-batch ``key`` (``payload``: its ``MiniBatch.to_dict``); ``length``: its items."""

    def send_load(self, key: str, payload) -> int:
        """Ask for ``load(key, ...)`` ahead without waiting; its request id. Raises WorkerDied."""

    def call(self, items: tuple, context: MiniBatchContext, timeout: float,
             interrupt: Callable[[], bool] | None = None, poll_s: float = 1.0,
             loaded: str | None = None) -> Outcome:
        """One run() of ``items`` (positions in the input ``loaded``) within ``timeout`` s."""

    def stop(self) -> None:
        """Let the worker call shutdown() and exit (killed when it does not)."""

    def kill(self) -> None:
        """End the worker now (its whole process group)."""
