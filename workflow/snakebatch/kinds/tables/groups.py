"""Partition keys of a tabular dataset: one mini-batch per distinct combination of the
``partition_keys`` columns' values, across all files (ParallelRunStep's ``partition_keys``).
"""

from __future__ import annotations

from snakebatch.errors import DatasetError
from snakebatch.kinds.tables import formats
from snakebatch.kinds.tables.chunk import TableChunk


def read_columns(path: str, fmt: str, gzipped: bool, columns: list[str], read_options: dict, fs=None):
    """Only ``columns`` of a whole file, as a DataFrame. Raises DatasetError naming the file and
    the missing column."""
    import pandas as pd

    try:
        frame = formats.read_whole(path, fmt, gzipped, read_options, fs, columns if fmt == "parquet" else None)
    except pd.errors.EmptyDataError:
        return pd.DataFrame(columns=columns)
    except (OSError, ValueError, KeyError) as exc:
        raise DatasetError(f"input file {path!r} cannot be read: {exc}") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DatasetError(f"input file {path!r} has no column {missing[0]!r} named in partition_keys "
                           f"(columns: {', '.join(map(str, frame.columns))})")
    return frame[columns]


def _plain(value):
    """A JSON-friendly Python value of a pandas/numpy scalar (NaN stays float('nan'))."""
    return value.item() if hasattr(value, "item") else value


def _key_value(path: str, column: str, value):
    """A partition-key value as plain JSON (str, int, float, bool; NaN/None -> None, so missing
    keys of all files form one group). Raises DatasetError naming the file and column for other
    types (timestamps...), which would not survive the manifest."""
    import pandas as pd

    value = _plain(value)
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, (str, int, float, bool)):
        return value
    raise DatasetError(f"input file {path!r}: partition key column {column!r} holds {type(value).__name__} "
                       "values; partition_keys support text, integer, float and boolean columns (read it "
                       "as text with input.read_options, e.g. dtype: {" + f"{column}: str" + "})")


def key_groups(files: list[tuple[str, str, bool]], keys: list[str], read_options: dict,
               fs_of=None) -> list[TableChunk]:
    """One TableChunk per distinct combination of ``keys`` across ``files`` ((path, format,
    gzipped) in input order), in order of first appearance; ``records`` = its rows. ``fs_of``:
    path -> the fsspec filesystem holding it, or None for the local disk (None: all local)."""

    groups: dict[tuple, dict] = {}
    for path, fmt, gzipped in files:
        frame = read_columns(path, fmt, gzipped, keys, read_options, fs_of(path) if fs_of else None)
        if frame.empty:
            continue
        counts = frame.groupby(keys, sort=False, dropna=False).size()
        for key, rows in counts.items():
            key = tuple(_key_value(path, column, value) for column, value in
                        zip(keys, key if isinstance(key, tuple) else (key,)))
            entry = groups.setdefault(key, {"files": [], "rows": 0, "formats": []})
            entry["files"].append(path)
            entry["rows"] += int(rows)
            entry["formats"].append((fmt, gzipped))
    chunks = []
    for key, entry in groups.items():
        fmt, gzipped = entry["formats"][0]
        value = dict(zip(keys, key))
        chunks.append(TableChunk(path=entry["files"][0], format=fmt, gzipped=gzipped, records=entry["rows"],
                                 files=tuple(entry["files"]), key_value=value,
                                 file_formats=tuple(entry["formats"])))
    return chunks
