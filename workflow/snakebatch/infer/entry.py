"""What the entry script sees: ``EntryScript``, ``Model`` and the mini-batch context.

Copies ParallelRunStep's ``azureml_user.parallel_run.EntryScript`` (logger, output_dir,
working_dir, log_dir, agent_name) and ``azureml.core.Model.get_model_path``; adds ``side_inputs``
and ``models``. The worker fills the process-wide context before it imports the entry script.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field


@dataclass(frozen=True)
class WorkerContext:
    """The facts one worker process exposes to the entry script. Paths are absolute."""

    agent_name: str
    output_dir: str
    working_dir: str
    log_dir: str
    logging_level: str = "INFO"
    side_inputs: dict = field(default_factory=dict)
    models: dict = field(default_factory=dict)


_CONTEXT: WorkerContext | None = None


def set_context(context: WorkerContext) -> None:
    """Install ``context`` for this process (called by the worker before importing the script)."""
    global _CONTEXT
    _CONTEXT = context


def _context() -> WorkerContext:
    global _CONTEXT
    if _CONTEXT is None:  # outside a worker (a test, a notebook): everything is the current folder
        cwd = os.getcwd()
        _CONTEXT = WorkerContext(agent_name="local", output_dir=cwd, working_dir=cwd, log_dir=cwd)
    return _CONTEXT


class EntryScript:
    """The entry script's view of its worker (ParallelRunStep's ``EntryScript``).

    Attributes: ``logger`` (a ``logging.Logger`` writing to the worker's stderr log),
    ``output_dir`` (folder for ``summary_only`` outputs, shared by all workers),
    ``working_dir`` (the run's working directory), ``log_dir`` (the user log folder),
    ``agent_name`` (this worker's name, ``processNNN`` with NNN its shard number), ``side_inputs`` and ``models``
    (``{name: absolute path}``). Outside a worker every folder is the current directory.
    A singleton per process, as in ParallelRunStep: ``EntryScript() is EntryScript()``.
    """

    _instance: EntryScript | None = None

    def __new__(cls) -> EntryScript:
        if cls._instance is None or cls._instance._context is not _context():
            instance = super().__new__(cls)
            instance._setup()
            cls._instance = instance
        return cls._instance

    def _setup(self) -> None:
        ctx = self._context = _context()
        self.agent_name = ctx.agent_name
        self.output_dir = ctx.output_dir
        self.working_dir = ctx.working_dir
        self.log_dir = ctx.log_dir
        self.side_inputs = dict(ctx.side_inputs)
        self.models = dict(ctx.models)
        self.logger = logging.getLogger(f"snakebatch.entry_script.{ctx.agent_name}")
        self.logger.setLevel(ctx.logging_level)


class Model:
    """``azureml.core.Model`` stand-in: model paths come from the config's ``models`` mapping."""

    @staticmethod
    def get_model_path(model_name: str, version: int | None = None, _workspace=None) -> str:
        """Absolute path of model ``model_name`` (a file or folder). ``version`` is ignored.

        Raises KeyError naming the model and the names that exist when it is not in ``models``.
        """
        models = _context().models
        if model_name not in models:
            raise KeyError(
                f"model {model_name!r} is not in the config key 'models' (known: {sorted(models) or 'none'})"
            )
        return models[model_name]


@dataclass(frozen=True)
class MiniBatchDataset:
    """``mini_batch_context.dataset``: the subset of the input dataset one ``run()`` call gets
    (ParallelRunStep passes a FileDataset / TabularDataset filtered by ``partition_key_value``).

    ``kind``: ``file`` or ``tabular``; ``files``: the files it reads (local paths or URLs, as
    listed), in order; ``partition_key_value``: as on the context ({} without partition_keys).
    ``str()`` is ``FileDataset`` (or ``TabularDataset``) and a JSON object of ``source`` (the
    files) and ``partition_key_value``, in the spirit of the Azure SDK's dataset repr."""

    kind: str
    files: tuple[str, ...] = ()
    partition_key_value: dict = field(default_factory=dict)

    def to_path(self) -> list[str]:
        """The files of the subset (``FileDataset.to_path()``), in order."""
        return list(self.files)

    def __str__(self) -> str:
        name = "TabularDataset" if self.kind == "tabular" else "FileDataset"
        body = {"source": list(self.files), "partition_key_value": dict(self.partition_key_value)}
        return f"{name}\n{json.dumps(body, indent=2)}"


@dataclass(frozen=True)
class MiniBatchContext:
    """Second argument of ``run(mini_batch, mini_batch_context)``: ``minibatch_index`` (0-based
    position in the whole input), ``global_row_index_lower_bound`` (index of the first item),
    ``partition_key_value`` (dict, empty without partition_keys) and ``dataset`` (a
    ``MiniBatchDataset``: the files of this call's items and their partition_key_value)."""

    minibatch_index: int
    global_row_index_lower_bound: int
    partition_key_value: dict = field(default_factory=dict)
    dataset: MiniBatchDataset | None = None
