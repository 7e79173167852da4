"""The worker: a child process of the runner that imports the entry script, calls ``init()``
once, then ``run()`` once per mini-batch it is sent, and ``shutdown()`` (if defined) at the end.

It speaks the records of ``protocol`` (see there for the message flow) over a ``multiprocessing``
pipe: it answers the spawn with ``Ready`` (or a ``Failure`` of stage ``import``/``init``, then
exits), then serves ``Load``, ``Run`` and ``Shutdown`` requests. Three threads share the work: a
reader thread receives every request; ``Load`` requests go to a loader thread (so the next
mini-batch is read while run() works on this one); ``Run`` and ``Shutdown`` are carried out in
order on the main thread, the one that imported the script and called init(). A ``Run`` that
refers to a loaded mini-batch waits for its load to finish. Loaders are looked up by
``Load.kind`` in ``LOADERS`` (``"mini_batch"``: the mini-batch's input kind materialises its
``kinds.MiniBatch``, file paths or a DataFrame; run() then gets the part its items name).

``modules`` in the replies are the files of the modules loaded from ``source_directory`` besides
the entry script (its helpers, also those imported inside run()), so the runner can tell when
they change. On SIGUSR1 the worker writes the stack of every thread to ``stack_path`` (how the
runner learns where a timed-out run() was stuck; ``Ready.main_thread_id`` tells which thread runs
run()). Its stdout and stderr (file descriptors 1 and 2, so native code's output too) go to the
worker's user log files. The working directory is the worker's first again after init(), before
and after each run() and before shutdown(), whatever the script does to it (relative item paths
stay valid). What the worker needs after init() returned and fails is answered as a ``Failure``
of stage ``ready``, not an init() failure.
"""

from __future__ import annotations

import dataclasses
import faulthandler
import logging
import os
import queue
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass

from snakebatch.infer import entry, protocol
from snakebatch.infer.script import fetch_resources, load_entry_script, source_modules, takes_context
from snakebatch.kinds import Cache, MiniBatch, MaterialiseError, get_kind
from snakebatch.formats import get_format
from snakebatch.formats.base import result_length

@dataclass(frozen=True)
class WorkerSetup:
    """Everything a worker needs, picklable. Paths are absolute; ``stdout_path`` and
    ``stderr_path`` are appended to."""

    entry_script: str
    source_directory: str
    arguments: tuple
    environment_variables: dict
    append_row_format: str
    output_action: str
    stdout_path: str
    stderr_path: str
    stack_path: str
    context: entry.WorkerContext
    read_options: dict | None = None
    append_row_dataframe_header: bool = False
    # set in the worker's environment when it is spawned, before any import (thread caps,
    # CUDA_VISIBLE_DEVICES; environment_variables already merged over them): see snakebatch.infer.devices
    process_environment: dict | None = None
    storage_options: dict | None = None
    download_dir: str | None = None
    resources_dir: str | None = None


def _redirect_output(setup: WorkerSetup) -> None:
    for fd, path in ((1, setup.stdout_path), (2, setup.stderr_path)):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(target, fd)
        os.close(target)
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr.reconfigure(line_buffering=True)


def _bind_to_runner() -> None:
    """Start a process group of our own (so a timeout kills what run() spawned too) and ask Linux
    to SIGKILL this worker when the runner dies, so no worker outlives a killed shard job."""
    try:
        os.setsid()
    except OSError:
        pass
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def _user_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` without this module's own frame (the call of init()/run())."""
    tb = exc.__traceback__
    if tb is not None and tb.tb_frame.f_code.co_filename == __file__ and tb.tb_next is not None:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def _load_mini_batch(payload, setup: WorkerSetup, cache: Cache):
    """The ``"mini_batch"`` loader: what run() gets for the mini-batch whose ``kinds.MiniBatch``
    JSON is ``payload``, as its input kind materialises it (file paths, a DataFrame). Returns
    (kind, materialised); the kind's ``select`` later cuts the part a Run names."""
    descriptor = MiniBatch.from_dict(payload)
    kind = get_kind(descriptor.kind)
    return kind, kind.materialise(descriptor, setup.read_options or {}, cache)


LOADERS = {"mini_batch": _load_mini_batch}
"""``Load.kind`` -> loader(payload, setup, cache) returning (input kind, loaded input); the
loaded input must have a ``len()``: the item count the runner is told. Called on the loader
thread."""


class _Channel:
    """The worker's end of the pipe; ``send`` is safe from several threads."""

    def __init__(self, conn) -> None:
        self.conn = conn
        self.lock = threading.Lock()

    def send(self, message) -> None:
        with self.lock:
            self.conn.send(message)

    def event(self, request_id: int, kind: str) -> None:
        self.send(protocol.Event(request_id, kind, time.time()))


class _Loaded:
    """The inputs the loader thread read, by mini-batch key, in load order. A key is *pending*
    from the moment its Load is received until it is read (or failed), so a Run that follows
    its Load waits for it."""

    def __init__(self, release=None) -> None:
        self.cond = threading.Condition()
        self.pending: dict[str, int] = {}
        self.inputs: dict[str, object] = {}
        self.release = release or (lambda value: None)  # frees what a dropped input left on disk

    def expect(self, key: str) -> None:
        with self.cond:
            self.pending[key] = self.pending.get(key, 0) + 1

    def put(self, key: str, value) -> None:
        """Store what the load of ``key`` gave (None: it failed)."""
        with self.cond:
            self.inputs.pop(key, None)
            if value is not None:
                self.inputs[key] = value  # last in load order
            self.pending[key] -= 1
            if not self.pending[key]:
                del self.pending[key]
            self.cond.notify_all()

    def clear(self) -> None:
        """Let go of every input read so far (a ``Load`` with ``replace``)."""
        with self.cond:
            for value in self.inputs.values():
                self.release(value)
            self.inputs.clear()

    def take(self, key: str):
        """The input of ``key`` (after its pending load finished); drops those loaded before it
        (their mini-batches are done; the ones loaded after are prefetched). Raises LookupError
        when ``key`` was not loaded or its load failed."""
        with self.cond:
            self.cond.wait_for(lambda: key not in self.pending)
            if key not in self.inputs:
                raise LookupError(f"mini-batch {key!r} is not loaded in this worker (no Load, or it failed)")
            for older in list(self.inputs):
                if older == key:
                    break
                self.release(self.inputs.pop(older))
            return self.inputs[key]


def _read_requests(conn, loaded: _Loaded, runs: queue.Queue, loads: queue.Queue) -> None:
    """Reader thread: every request off the pipe; Loads to the loader thread, the rest to the main
    thread; None to both at the end of the pipe."""
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            break
        if isinstance(message, protocol.Load):
            loaded.expect(message.key)
            loads.put(message)
        else:
            runs.put(message)
    loads.put(None)
    runs.put(None)


def _serve_loads(channel: _Channel, setup: WorkerSetup, loaded: _Loaded, loads: queue.Queue,
                 cache: Cache) -> None:
    """Loader thread: carry out each Load in turn, answer Result (length: rows; failed_items:
    the items that could not be read) or Failure."""
    while True:
        request = loads.get()
        if request is None:
            break
        if request.replace:  # free the memory of the last mini-batch before reading the next
            loaded.clear()
        channel.event(request.request_id, "started")
        cpu_start = time.thread_time()
        try:
            value = LOADERS[request.kind](request.payload, setup, cache)
            length = len(value[1])
        except BaseException as exc:  # noqa: BLE001 - a read error is an answer, not the worker's end
            loaded.put(request.key, None)
            # a MaterialiseError names file and line: its traceback (our reader's frames) says nothing more
            tb = "" if isinstance(exc, MaterialiseError) else _user_traceback(exc)
            channel.send(protocol.Failure(request.request_id, protocol.RemoteError.from_exception(exc, tb),
                                          "load", time.thread_time() - cpu_start))
            continue
        loaded.put(request.key, value)
        channel.event(request.request_id, "loaded")
        failed = tuple(sorted(getattr(value[1], "failed", {}).items()))
        channel.send(protocol.Result(request.request_id, length=length, cpu_s=time.thread_time() - cpu_start,
                                     failed_items=failed))


def _mini_batch(request: protocol.Run, loaded: _Loaded):
    """What run() gets for ``request``: the items as a list, or the part of the loaded input the
    items name (contiguous positions), cut by its kind's ``select`` (a copy, so a run() that edits
    its mini-batch cannot change what a retry or a bisected half gets)."""
    if request.loaded is None:
        return list(request.items)
    kind, value = loaded.take(request.loaded)
    items = request.items
    return kind.select(value, items[0], items[-1] + 1) if items else kind.select(value, 0, 0)


def worker_main(conn, setup: WorkerSetup) -> None:
    """Body of the worker process (``multiprocessing`` spawn target): import the entry script,
    init(), answer Ready, then serve requests until Shutdown or the end of the pipe."""
    _prepare_process(setup)
    home = os.getcwd()  # relative paths (items, the script's own) are meant from here
    channel = _Channel(conn)
    module = _start_script(channel, setup, home)
    if module is None:
        return
    try:  # what init() did may break what follows: that is no init() failure, and no silent death
        run = module.run
        with_context = takes_context(run)
        modules = tuple(source_modules(setup.source_directory, setup.entry_script))
        # the filesystem objects fsspec makes for URLs live in this (spawned) process only; the
        # download folder is this shard's alone: what a killed worker left there is removed
        if setup.download_dir:
            import shutil

            shutil.rmtree(setup.download_dir, ignore_errors=True)
        cache = Cache(folder=setup.download_dir, storage_options=dict(setup.storage_options or {}))
        loaded = _Loaded(lambda value: value[0].release(value[1], cache))
        runs: queue.Queue = queue.Queue()
        loads: queue.Queue = queue.Queue()
        threading.Thread(target=_read_requests, args=(conn, loaded, runs, loads), name="snakebatch-reader",
                         daemon=True).start()
        threading.Thread(target=_serve_loads, args=(channel, setup, loaded, loads, cache),
                         name="snakebatch-loader", daemon=True).start()
    except BaseException as exc:  # noqa: BLE001
        tb = _user_traceback(exc)
        print(tb, file=sys.stderr)
        channel.send(protocol.Failure(0, protocol.RemoteError.from_exception(exc, tb), "ready"))
        return
    channel.send(protocol.Ready(modules, with_context, threading.get_ident()))
    known = len(sys.modules)
    while True:
        request = runs.get()
        if request is None:  # the runner closed the pipe
            break
        if isinstance(request, protocol.Shutdown):
            _go_home(home)
            _shut_down(channel, setup, module, loaded, request)
            break
        _go_home(home)  # a run() before may have changed the working directory
        reply = _run(channel, request, setup, loaded, run, with_context)
        _go_home(home)  # at once: the loader thread reads the next mini-batch (relative paths) meanwhile
        if len(sys.modules) != known:  # run() imported something: maybe a helper
            known = len(sys.modules)
            current = tuple(source_modules(setup.source_directory, setup.entry_script))
            if current != modules:
                modules = current
                reply = dataclasses.replace(reply, modules=current)
        channel.send(reply)
    sys.stdout.flush()
    sys.stderr.flush()


def _prepare_process(setup: WorkerSetup) -> None:
    """The worker process's own setup before the script is imported: its process group, its
    output files, the stack dump on SIGUSR1, the environment, logging and ``sys.argv``."""
    _bind_to_runner()
    _redirect_output(setup)
    # lives as long as the worker
    stack_file = open(setup.stack_path, "a", encoding="utf-8", errors="backslashreplace")  # noqa: SIM115
    faulthandler.register(signal.SIGUSR1, file=stack_file, all_threads=True)
    os.environ.update(setup.environment_variables)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["AZUREML_BI_OUTPUT_PATH"] = setup.context.output_dir
    logging.basicConfig(level=setup.context.logging_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.argv = [setup.entry_script, *setup.arguments]


def _go_home(home: str) -> None:
    """Make ``home`` the working directory again (the worker's first: relative item paths and
    the script's own are meant from there), whatever init() or run() did to it."""
    try:
        if os.getcwd() == home:
            return
    except FileNotFoundError:  # the folder the script went to was removed
        pass
    os.chdir(home)


def _start_script(channel: _Channel, setup: WorkerSetup, home: str):
    """Fetch the models and side inputs, import the entry script and call its init(); the
    module, or None after answering the Failure (stage ``init`` or ``import``). The working
    directory is ``home`` again after init()."""
    stage = "init"
    try:
        context = fetch_resources(setup.context, setup.resources_dir, setup.storage_options)
    except OSError as exc:  # a model or side input by URL that cannot be downloaded: init cannot run
        print(str(exc), file=sys.stderr)
        channel.send(protocol.Failure(0, protocol.RemoteError.from_exception(exc, ""), stage))
        return None
    if context.models:
        os.environ["AZUREML_MODEL_DIR"] = next(iter(context.models.values()))
    entry.set_context(context)
    stage = "import"
    try:
        module = load_entry_script(setup.entry_script, setup.source_directory)
        stage = "init"
        init = getattr(module, "init", None)
        if init is not None:
            init()
        _go_home(home)
    except BaseException as exc:  # noqa: BLE001 - report everything, SystemExit included
        tb = _user_traceback(exc)
        print(tb, file=sys.stderr)
        channel.send(protocol.Failure(0, protocol.RemoteError.from_exception(exc, tb), stage))
        return None
    return module


def _run(channel: _Channel, request: protocol.Run, setup: WorkerSetup, loaded: _Loaded, run, with_context: bool):
    """Carry out one Run: the Result (encoded lines, length, CPU seconds) or the Failure."""
    cpu_start = time.process_time()
    try:
        batch = _mini_batch(request, loaded)
        channel.event(request.request_id, "started")
        result = run(batch, request.context) if with_context else run(batch)
        header = ipc = None
        if setup.output_action == "append_row":
            lines, header, ipc = get_format(setup.append_row_format).encode(result, setup.append_row_dataframe_header)
        else:  # summary_only: the script wrote its own outputs; only the count matters
            lines = []
        return protocol.Result(request.request_id, tuple(lines), result_length(result),
                               time.process_time() - cpu_start, header, ipc)
    except BaseException as exc:  # noqa: BLE001
        tb = _user_traceback(exc)
        print(tb, file=sys.stderr)
        return protocol.Failure(request.request_id, protocol.RemoteError.from_exception(exc, tb), "run",
                                time.process_time() - cpu_start)


def _shut_down(channel: _Channel, setup: WorkerSetup, module, loaded: _Loaded, request: protocol.Shutdown) -> None:
    """Carry out Shutdown: the script's shutdown() (if any), free the inputs, answer Stopped."""
    shutdown = getattr(module, "shutdown", None)
    if callable(shutdown):
        try:
            shutdown()
        except Exception:  # noqa: BLE001
            traceback.print_exc()
    loaded.clear()  # the downloaded copies of the last mini-batches
    channel.send(protocol.Stopped(request.request_id,
                                  tuple(source_modules(setup.source_directory, setup.entry_script))))
