"""The runner <-> worker protocol: one small frozen record per message, sent pickled over the
``multiprocessing`` pipe between a ``supervisor.WorkerProcess`` (the runner's side) and
``worker.worker_main`` (the worker process).

Message flow::

    runner                                   worker
      |  spawn(WorkerSetup)  ------------->    import entry script, init()
      |  <-------------  Ready                 (or Failure stage "import"/"init"/"ready", request_id 0)
      |  Load(1, key k, payload)  -------->    loader thread: Event(1, "started"),
      |  <------  Event(1, "started"/"loaded")   read the input, Event(1, "loaded"),
      |  <------  Result(1, length=rows)         Result(1) - or Failure(1, stage "load")
      |  Run(2, items, context, loaded=k) ->   main thread: Event(2, "started"), run()
      |  Load(3, key k+1, payload)  ------>    read while run() of request 2 works (prefetch)
      |  <------  Event(3, ...), Result(3)     (may come before or after the answer to 2)
      |  <------  Result(2, lines, ...)        or Failure(2, stage "run", RemoteError)
      |  Shutdown(4)  -------------------->    shutdown() when the script defines it
      |  <------  Stopped(4, modules)          the worker exits

Every request carries a ``request_id`` (a positive int, unique per worker process, chosen by the
runner); every answer (``Result``, ``Failure``) and ``Event`` carries the id of the request it
belongs to, so answers are matched by id, not by order. The worker reads the pipe on a thread of
its own: a ``Load`` sent while ``run()`` works is read and carried out at once (on the worker's
loader thread), which is how the runner prefetches the next mini-batch. Requests other than
``Load`` are carried out one at a time, in the order sent, on the worker's main thread (the one
the runner's stack dump puts first).

An exception crosses the pipe as a ``RemoteError``: its type's name and module, its message and
the formatted traceback; ``RemoteError.error`` is the ``"Type: message"`` string the rest of
snakebatch records, ``to_exception()`` rebuilds an exception of the same type when it can.
"""

from __future__ import annotations

import sys
import traceback as _traceback
from dataclasses import dataclass
from typing import Any, Union

from snakebatch.infer.entry import MiniBatchContext

STAGES = ("import", "init", "ready", "load", "run")
"""Where a ``Failure`` happened: importing the entry script, its ``init()``, the worker's own setup
after init() returned (before ``Ready``), reading a mini-batch's input (``Load``), or ``run()`` (a
``Run``, including building the mini-batch it gets)."""

EVENT_KINDS = ("started", "loaded")
"""``Event.kind``: ``started`` when the worker begins a request (run() is called, a read starts),
``loaded`` when a ``Load``'s input is read (its ``Result`` follows)."""


# ------------------------------------------------------------------------------------ exceptions
@dataclass(frozen=True)
class RemoteError:
    """An exception raised in the worker, as data: ``type_name`` (``"ValueError"``), ``module``
    (of the type: ``"builtins"``, ``"snakebatch.kinds.tables.cutter"``), ``message`` (``str(exception)``) and
    ``traceback`` (formatted, '' when it says nothing useful)."""

    type_name: str
    module: str
    message: str
    traceback: str = ""

    @classmethod
    def from_exception(cls, exc: BaseException, traceback: str | None = None) -> RemoteError:
        """The record of ``exc``; ``traceback`` defaults to the full formatted traceback."""
        if traceback is None:
            traceback = "".join(_traceback.format_exception(type(exc), exc, exc.__traceback__))
        return cls(type(exc).__name__, type(exc).__module__, str(exc), traceback)

    @property
    def error(self) -> str:
        """``"Type: message"`` (what FailedItem.error and the error log hold)."""
        return f"{self.type_name}: {self.message}"

    def to_exception(self) -> BaseException:
        """An exception of the original type with the original message when that type is already
        imported here and can be built from one string (nothing is imported to find it);
        otherwise a ``RemoteException`` whose str() is ``error``. Either way its ``remote``
        attribute is this record."""
        exc: BaseException | None = None
        kind = getattr(sys.modules.get(self.module), self.type_name, None)
        if isinstance(kind, type) and issubclass(kind, BaseException):
            try:
                exc = kind(self.message)
            except Exception:  # noqa: BLE001 - a constructor with other arguments
                exc = None
            if exc is not None and str(exc) != self.message:  # e.g. KeyError quotes its argument
                exc = None
        if exc is None:
            exc = RemoteException(self.error)
        exc.remote = self
        return exc


class RemoteException(Exception):
    """Stands in for a worker's exception whose type cannot be rebuilt here; str() is
    ``"Type: message"``, ``remote`` the RemoteError."""


# -------------------------------------------------------------------------- runner -> worker
@dataclass(frozen=True)
class Load:
    """Read and prepare a mini-batch's input ahead of ``run()``. ``key``: the mini-batch key (the
    later ``Run.loaded``); ``kind``: which loader of the worker reads it (``"mini_batch"``: the
    mini-batch's input kind materialises it); ``payload``: opaque to the protocol, picklable,
    what the loader needs (``"mini_batch"``: a ``kinds.MiniBatch.to_json()`` dict). Answered by
    ``Result`` (``length``: the number of items: files or rows) or ``Failure`` with stage ``load``. The worker keeps the loaded input
    until a ``Run`` refers to a mini-batch loaded after it, or a ``Load`` with ``replace``
    arrives: that one first lets go of every input loaded before (the runner waits for it and
    is done with them; a prefetch, sent while run() works, has ``replace`` False)."""

    request_id: int
    key: str
    payload: Any
    kind: str = "mini_batch"
    replace: bool = False


@dataclass(frozen=True)
class Run:
    """Call ``run()`` once. ``items``: the mini-batch's items (file paths), or, with ``loaded``,
    row positions (contiguous, ascending) in the input the ``Load`` of mini-batch ``loaded`` read
    (run() then gets a copy of those rows); ``context``: the MiniBatchContext (second argument
    of run() when it takes one). Answered by ``Result`` or ``Failure`` (stage ``run``)."""

    request_id: int
    items: tuple
    context: MiniBatchContext
    loaded: str | None = None


@dataclass(frozen=True)
class Shutdown:
    """Call the script's ``shutdown()`` (when defined) and exit; answered by ``Stopped``."""

    request_id: int


Request = Union[Load, Run, Shutdown]


# -------------------------------------------------------------------------- worker -> runner
@dataclass(frozen=True)
class Ready:
    """The worker imported the entry script and ``init()`` returned (the handshake; the setup
    itself travels with the spawn). ``modules``: sorted absolute files of the modules loaded from
    ``source_directory`` besides the entry script; ``takes_context``: run() takes a second
    argument; ``main_thread_id``: ``threading.get_ident()`` of the thread that runs run()."""

    modules: tuple[str, ...]
    takes_context: bool
    main_thread_id: int


@dataclass(frozen=True)
class Result:
    """A request succeeded. For a ``Run``: ``lines`` (encoded results, one per line; empty for
    ``output_action: summary_only``), ``length`` (len of run()'s result), ``header`` (csv: the
    header line) and ``ipc`` (parquet: Arrow IPC bytes). For a ``Load``: ``length`` is the row
    count, the rest empty. ``cpu_s``: CPU seconds (user + system) spent on the request (run():
    the whole process, all threads; a load: its thread). ``modules``: the source modules when
    they changed since the last answer (run() imported a helper), else None."""

    request_id: int
    lines: tuple[str, ...] = ()
    length: int = 0
    cpu_s: float = 0.0
    header: str | None = None
    ipc: bytes | None = None
    modules: tuple[str, ...] | None = None
    #: a Load whose items could partly not be read: (position, "Error: message") of each such
    #: item (a blob deleted since the listing); run() never gets them
    failed_items: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True)
class Failure:
    """A request raised: ``error`` is the exception (RemoteError), ``stage`` one of STAGES,
    ``cpu_s`` and ``modules`` as in Result. ``request_id`` 0 answers the handshake (stage
    ``import``, ``init`` or ``ready``: the worker exits after sending it)."""

    request_id: int
    error: RemoteError
    stage: str = "run"
    cpu_s: float = 0.0
    modules: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Event:
    """Progress, not an answer: ``kind`` (one of EVENT_KINDS) happened to request
    ``request_id`` at ``time`` (``time.time()`` seconds in the worker)."""

    request_id: int
    kind: str
    time: float


@dataclass(frozen=True)
class Stopped:
    """The answer to ``Shutdown``: shutdown() returned (or raised: that goes to the worker's
    stderr log); ``modules``: the source modules at the end. The worker then exits."""

    request_id: int
    modules: tuple[str, ...] = ()


Reply = Union[Ready, Result, Failure, Event, Stopped]
