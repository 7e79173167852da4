"""The worker: a child process of the runner that imports the entry script, calls ``init()``
once, then ``run()`` once per mini-batch it is sent, and ``shutdown()`` (if defined) at the end.

It talks to the runner over a ``multiprocessing`` pipe with tuples:
runner -> worker ``("run", items, MiniBatchContext)``, ``("load", table_chunk_json)`` (tabular: read
the mini-batch's DataFrame; later ``items`` are row positions in it) or ``("stop",)``;
worker -> runner ``("ready", module_files, takes_context, main_thread_id)``, ``("load_error", message, traceback)``
(importing the script failed), ``("init_error", message, traceback)``,
``("ok", lines, result_length, cpu_s, module_files, extra)`` (``extra``: ``header`` for csv, ``ipc``
Arrow bytes for parquet; a load answers ``ok`` with the row count), ``("error", message, traceback, cpu_s, module_files)`` or
``("stopped", module_files)``. ``module_files`` are the files of the modules loaded from
``source_directory`` besides the entry script (its helpers, also those imported inside run()), so
the runner can tell when they change; None in a reply when nothing was imported since the last.
``cpu_s`` is the CPU time (user + system, all threads) the worker spent in that run() call. ``lines``
is empty for ``output_action: summary_only``: only the length counts. On SIGUSR1 the worker writes the
stack of every thread to ``stack_path`` (how the runner learns where a timed-out run() was stuck).
Its stdout and stderr (file descriptors 1 and 2, so native code's output too) go to the worker's
user log files.
"""

from __future__ import annotations

import faulthandler
import importlib.util
import inspect
import logging
import os
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass

from . import entry, tabular
from .outputs import encode_result, result_length

COMPAT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "compat")


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


def load_entry_script(path: str, source_directory: str):
    """Import the entry script at ``path`` as a module named after its file.

    ``source_directory`` goes first on ``sys.path``; the ParallelRunStep import shims go last.
    Raises FileNotFoundError, or any exception of the module's top-level code, or
    AttributeError when ``init`` or ``run`` is missing or not callable.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"entry_script {path!r} does not exist")
    if source_directory not in sys.path:
        sys.path.insert(0, source_directory)
    if COMPAT_DIR not in sys.path:
        sys.path.append(COMPAT_DIR)
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    for func in ("init", "run"):
        if not callable(getattr(module, func, None)):
            raise AttributeError(f"entry_script {path!r} defines no {func}() function")
    return module


PACKAGE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "")


def source_modules(source_directory: str, entry_script: str) -> list[str]:
    """Sorted absolute files of the loaded modules that live under ``source_directory``: the
    entry script's own helpers. Left out: the entry script, snakebatch itself, and installed
    packages (anything under a ``site-packages`` or ``dist-packages`` folder, e.g. a venv
    inside the project)."""
    root = os.path.join(os.path.abspath(source_directory), "")
    found = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not path:
            continue
        path = os.path.abspath(path)
        if (path.startswith(root) and path != entry_script and not path.startswith(PACKAGE_DIR)
                and "site-packages" not in path and "dist-packages" not in path):
            found.add(path)
    return sorted(found)


def _takes_context(run) -> bool:
    try:
        params = [p for p in inspect.signature(run).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    except (TypeError, ValueError):
        return False
    return len(params) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)


def _user_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` without this module's own frame (the call of init()/run())."""
    tb = exc.__traceback__
    if tb is not None and tb.tb_frame.f_code.co_filename == __file__ and tb.tb_next is not None:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def worker_main(conn, setup: WorkerSetup) -> None:
    """Body of the worker process (``multiprocessing`` spawn target)."""
    _bind_to_runner()
    _redirect_output(setup)
    stack_file = open(setup.stack_path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the worker
    faulthandler.register(signal.SIGUSR1, file=stack_file, all_threads=True)
    os.environ.update(setup.environment_variables)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["AZUREML_BI_OUTPUT_PATH"] = setup.context.output_dir
    if setup.context.models:
        os.environ["AZUREML_MODEL_DIR"] = next(iter(setup.context.models.values()))
    logging.basicConfig(level=setup.context.logging_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    entry.set_context(setup.context)
    sys.argv = [setup.entry_script, *setup.arguments]
    stage = "load_error"
    try:
        module = load_entry_script(setup.entry_script, setup.source_directory)
        stage = "init_error"
        module.init()
    except BaseException as exc:  # noqa: BLE001 - report everything, SystemExit included
        tb = _user_traceback(exc)
        print(tb, file=sys.stderr)
        conn.send((stage, f"{type(exc).__name__}: {exc}", tb))
        return
    run = module.run
    with_context = _takes_context(run)
    modules = source_modules(setup.source_directory, setup.entry_script)
    loaded = len(sys.modules)
    table = None  # tabular: the DataFrame of the mini-batch being run
    file_cache: dict = {}  # tabular partition keys: whole files, shared by the groups they hold
    conn.send(("ready", modules, with_context, threading.get_ident()))
    while True:
        try:
            message = conn.recv()
        except EOFError:
            break
        if message[0] == "stop":
            shutdown = getattr(module, "shutdown", None)
            if callable(shutdown):
                try:
                    shutdown()
                except Exception:  # noqa: BLE001
                    traceback.print_exc()
            conn.send(("stopped", source_modules(setup.source_directory, setup.entry_script)))
            break
        cpu_start = time.process_time()
        if message[0] == "load":  # tabular: read the mini-batch's rows once, run() gets slices
            try:
                table = None
                table = tabular.read_chunk(tabular.TableChunk.from_json(message[1]), setup.read_options or {}, file_cache)
                reply = ("ok", [], len(table), time.process_time() - cpu_start, {})
            except tabular.TableReadError as exc:
                reply = ("error", f"TableReadError: {exc}", "", time.process_time() - cpu_start)
            except BaseException as exc:  # noqa: BLE001
                tb = _user_traceback(exc)
                reply = ("error", f"{type(exc).__name__}: {exc}", tb, time.process_time() - cpu_start)
            conn.send((*reply[:4], None, *reply[4:]))
            continue
        _, items, context = message
        try:
            if table is not None:  # items are row positions of the loaded table, contiguous; a copy,
                # so a run() that edits its mini-batch cannot change what a retry or a bisected half gets
                batch = (table.iloc[items[0]:items[-1] + 1] if items else table.iloc[0:0]).copy()
            else:
                batch = list(items)
            result = run(batch, context) if with_context else run(batch)
            extra = {}
            if setup.output_action == "append_row":
                lines, extra["header"], extra["ipc"] = encode_result(result, setup.append_row_format,
                                                                     setup.append_row_dataframe_header)
            else:  # summary_only: the script wrote its own outputs; only the count matters
                lines = []
            reply = ("ok", lines, result_length(result), time.process_time() - cpu_start, extra)
        except BaseException as exc:  # noqa: BLE001
            tb = _user_traceback(exc)
            print(tb, file=sys.stderr)
            reply = ("error", f"{type(exc).__name__}: {exc}", tb, time.process_time() - cpu_start)
        news = None
        if len(sys.modules) != loaded:  # run() imported something: maybe a helper
            loaded = len(sys.modules)
            current = source_modules(setup.source_directory, setup.entry_script)
            if current != modules:
                modules = news = current
        conn.send((*reply[:4], news, *reply[4:]))
    sys.stdout.flush()
    sys.stderr.flush()
