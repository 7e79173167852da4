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


def load_entry_script(path: str, source_directory: str):
    """Import the entry script at ``path`` as a module named after its file.

    ``source_directory`` goes first on ``sys.path``; the ParallelRunStep import shims go last.
    ``init()`` and ``shutdown()`` are optional (ParallelRunStep v1: a script "must contain a run()
    function and optionally contains an init()"). Raises FileNotFoundError, or any exception of the
    module's top-level code, or AttributeError when ``run`` is missing or not callable, or when
    ``init`` is defined but not callable.
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
    if not callable(getattr(module, "run", None)):
        raise AttributeError(f"entry_script {path!r} defines no run() function")
    for func in ("init", "shutdown"):
        if getattr(module, func, None) is not None and not callable(getattr(module, func)):
            raise AttributeError(f"entry_script {path!r}: {func} is not a function")
    return module


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
