"""The entry script as the worker imports it: where it and its helpers live, the models and
side inputs it is given (downloaded when they are URLs), and whether its run() takes the
mini-batch context. Used in the worker process only (``worker``).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import os
import sys
import sysconfig

from snakebatch.infer import entry

# The snakebatch package folder (this module is in its infer/ stage) and its import shims.
PACKAGE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "")
COMPAT_DIR = os.path.join(PACKAGE_DIR, "compat")


def fetch_resources(context: entry.WorkerContext, resources_dir: str | None,
                    storage_options: dict | None) -> entry.WorkerContext:
    """``context`` with every model and side input given by URL downloaded (once per version,
    into ``resources_dir``, with fsspec's ``storage_options``) and named by its local path, so
    ``EntryScript().side_inputs`` and ``Model.get_model_path`` give local paths. Raises OSError naming the URL."""
    from snakebatch.storage.locations import fetch, is_local

    def local(mapping):
        return {name: path if is_local(path) else fetch(path, os.path.join(resources_dir, name), storage_options)
                for name, path in mapping.items()}

    return dataclasses.replace(context, models=local(context.models), side_inputs=local(context.side_inputs))


ENTRY_MODULE = "__snakebatch_entry__"
"""The name the entry script is imported under (``sys.modules``): never one that snakebatch or a
library imports, whatever the script's file is called (``logging.py``, ``shutil.py``)."""


def _put_on_path(source_directory: str) -> None:
    """Put ``source_directory`` on ``sys.path`` after the standard library's folders and before
    everything else there (installed packages): the script's helpers are found before an
    installed package of the same name, but a file there named like a standard-library module
    (``logging.py``) never replaces that module. Where it is on the path before the standard
    library already (the working directory ``python -m`` put first, when that is the source
    directory), it is moved."""
    stdlib = {os.path.realpath(sysconfig.get_path(key)) for key in ("stdlib", "platstdlib")}
    zips = {os.path.join(os.path.dirname(folder), "") for folder in stdlib}

    def standard(entry: str) -> bool:
        real = os.path.realpath(entry or ".")
        if "site-packages" in real or "dist-packages" in real:
            return False
        return (any(real == folder or real.startswith(folder + os.sep) for folder in stdlib)
                or (real.endswith(".zip") and any(real.startswith(prefix) for prefix in zips)))

    last = max((index for index, entry in enumerate(sys.path) if standard(entry)), default=-1)
    target = os.path.realpath(source_directory)
    if any(os.path.realpath(entry or ".") == target for entry in sys.path[last + 1:]):
        return
    sys.path[:last + 1] = [entry for entry in sys.path[:last + 1] if os.path.realpath(entry or ".") != target]
    last = max((index for index, entry in enumerate(sys.path) if standard(entry)), default=-1)
    sys.path.insert(last + 1, source_directory)


def load_entry_script(path: str, source_directory: str):
    """Import the entry script at ``path`` under the private module name ``ENTRY_MODULE``; also
    under its own file name (``score`` for ``score.py``, then its ``__name__``) when ``import
    score`` finds that very file, so tracebacks name its exceptions as before and code that
    pickles the script's objects by module name still finds them. A script named
    like a module of the standard library or of an installed package is then not that module
    for anyone (snakebatch, libraries, the script's own ``import logging``).

    ``source_directory`` goes on ``sys.path`` after the standard library (``_put_on_path``); the
    ParallelRunStep import shims go last. ``init()`` and ``shutdown()`` are optional
    (ParallelRunStep v1: a script "must contain a run() function and optionally contains an
    init()"). Raises FileNotFoundError, or any exception of the module's top-level code, or
    AttributeError when ``run`` is missing or not callable, or when ``init`` is defined but not
    callable.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"entry_script {path!r} does not exist")
    _put_on_path(source_directory)
    if COMPAT_DIR not in sys.path:
        sys.path.append(COMPAT_DIR)
    own_name = os.path.splitext(os.path.basename(path))[0]
    # its own name only where `import own_name` finds this very file (no clash): then its classes'
    # __module__ is that name, so tracebacks say score.MyError and pickle finds them
    free = own_name.isidentifier() and own_name not in sys.modules and _found_as(own_name) == os.path.realpath(path)
    spec = importlib.util.spec_from_file_location(own_name if free else ENTRY_MODULE, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[ENTRY_MODULE] = module
    if free:
        sys.modules[own_name] = module
    spec.loader.exec_module(module)
    if not callable(getattr(module, "run", None)):
        raise AttributeError(f"entry_script {path!r} defines no run() function")
    for func in ("init", "shutdown"):
        if getattr(module, func, None) is not None and not callable(getattr(module, func)):
            raise AttributeError(f"entry_script {path!r}: {func} is not a function")
    return module


def _found_as(name: str) -> str | None:
    """The real path of the file ``import name`` would load now, None when none (or a builtin)."""
    try:
        found = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    origin = getattr(found, "origin", None)
    return os.path.realpath(origin) if origin and os.path.exists(origin) else None


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


def takes_context(run) -> bool:
    """True when ``run`` takes a second positional argument (the mini-batch context)."""
    try:
        params = [p for p in inspect.signature(run).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    except (TypeError, ValueError):
        return False
    return len(params) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)
