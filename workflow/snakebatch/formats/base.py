"""The interface of an output format (``append_row_format``): ``OutputFormat``.

A format does four things, each in one stage: the worker ``encode``\\ s what ``run()`` returned
(``Encoded``: lines, a header line, or an Arrow IPC stream); gather writes the merged file from
the shard results in input order through a ``MergeWriter`` (``open_merge``); ``read_results``
reads the merged file back as a pandas DataFrame (``read``); and the shard job asks whether
item-level reuse applies (``item_reuse``: one line per item that can be reused alone).

A run() result is a list, a tuple or a pandas DataFrame (``result_length`` says so, or raises
``ResultTypeError``). Concrete formats live one per module (``txt``, ``csv``, ``parquet``) and
are found by name through ``snakebatch.formats.get_format``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import NamedTuple


class ResultTypeError(TypeError):
    """run() returned something other than a list, tuple or pandas DataFrame."""


def is_dataframe(value) -> bool:
    """Whether ``value`` is a pandas DataFrame (checked without importing pandas)."""
    return type(value).__name__ == "DataFrame" and type(value).__module__.startswith("pandas")


def result_length(result) -> int:
    """Number of elements (list/tuple) or rows (DataFrame) in a run() result.

    Raises ResultTypeError naming the type for anything else (None included)."""
    if isinstance(result, (list, tuple)) or is_dataframe(result):
        return len(result)
    raise ResultTypeError(
        f"run() returned {type(result).__name__}; it must return a list, tuple or pandas DataFrame "
        "with one element per successful item of the mini-batch"
    )


def as_dataframe(result):
    """A run() result as a DataFrame: a DataFrame as is; a list or tuple as one column named
    ``result``. Raises ResultTypeError."""
    import pandas as pd

    result_length(result)
    return result if is_dataframe(result) else pd.DataFrame({"result": list(result)})


def check_same_columns(append_row_format: str, first: tuple[int, object], index: int, value, shown) -> None:
    """Raise ResultSchemaError when ``value`` (the columns of mini-batch ``index``) differs
    from ``first`` (``(mini-batch, columns)`` of the first result); ``shown(columns)`` words them."""
    from snakebatch.errors import ResultSchemaError

    if value != first[1]:
        raise ResultSchemaError(
            f"append_row_format {append_row_format}: mini-batch {index} returned {shown(value)} but "
            f"mini-batch {first[0]} returned {shown(first[1])}; every run() must return the same columns, with "
            "compatible types")


class Encoded(NamedTuple):
    """One run() result as the worker sends it: ``lines`` (the merged file's lines, no line
    ends), ``header`` (the column line written once before them, or None) and ``arrow_ipc``
    (an Arrow IPC stream of the result table, parquet only, else None)."""

    lines: list[str]
    header: str | None
    arrow_ipc: bytes | None


class MergeWriter(ABC):
    """Writes one merged file from mini-batch results handed over in input order (``add``).
    Nothing is visible at the merged path until ``commit``; ``discard`` (also on an error inside
    a ``with`` block) removes whatever was written. ``add`` raises ResultSchemaError naming two
    mini-batches whose columns differ; ``commit`` may raise it too, and ManifestError for a stored
    table that cannot be read."""

    @abstractmethod
    def add(self, result) -> None:
        """Take the next mini-batch result (a ``MiniBatchResult``) in input order."""

    @abstractmethod
    def commit(self) -> None:
        """Finish the merged file and move it to its path, atomically."""

    @abstractmethod
    def discard(self) -> None:
        """Remove what was written (the merged path is left as it was)."""

    def __enter__(self) -> MergeWriter:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is not None:
            self.discard()


class OutputFormat(ABC):
    """One ``append_row_format``. ``name``: its config value; ``item_reuse``: whether a result's
    lines are one per item, so the item index may reuse them item by item."""

    name: str = ""
    item_reuse: bool = False

    @abstractmethod
    def encode(self, result, dataframe_header: bool = False) -> Encoded:
        """Encode a run() result (list, tuple or DataFrame); raises ResultTypeError."""

    @abstractmethod
    def open_merge(self, path: str, dataframe_header: bool = False) -> MergeWriter:
        """A MergeWriter for the merged file ``path``."""

    @abstractmethod
    def read(self, path: str, dataframe_header: bool = False):
        """The merged file ``path`` as a pandas DataFrame, one row per successful item."""
