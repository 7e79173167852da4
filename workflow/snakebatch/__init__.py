"""snakebatch: ParallelRunStep-style batch inference as a Snakemake workflow.

Entry scripts use ``from snakebatch import EntryScript, Model``.
"""

from .entry import EntryScript, MiniBatchContext, Model

__all__ = ["EntryScript", "Model", "MiniBatchContext"]
__version__ = "0.1.0"
