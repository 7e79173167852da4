"""snakebatch: ParallelRunStep-style batch inference as a Snakemake workflow.

Entry scripts use ``from snakebatch import EntryScript, Model``; a finished run reads back with
``snakebatch.read_results("results/<run>")`` and ``snakebatch.read_errors(...)`` (pandas
DataFrames, snakebatch.read).
"""

from snakebatch.infer.entry import EntryScript, MiniBatchContext, Model

__all__ = ["EntryScript", "Model", "MiniBatchContext", "read_results", "read_errors"]


def __getattr__(name):
    # read_results / read_errors import pandas: only when asked for (workers import this package)
    if name in ("read_results", "read_errors"):
        from snakebatch import read

        return getattr(read, name)
    raise AttributeError(f"module 'snakebatch' has no attribute {name!r}")
__version__ = "0.1.0"
