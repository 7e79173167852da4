"""Reading a tabular mini-batch back as a pandas DataFrame, in the worker: a ``TableChunk``'s byte
range with the file's header and dtypes, its Parquet row groups or rows, or its partition-key
group; a file changed since it was partitioned is refused.
"""

from __future__ import annotations

import io
import os
import re
import warnings

from snakebatch.kinds.base import MaterialiseError
from snakebatch.kinds.tables import formats
from snakebatch.kinds.tables.chunk import TableChunk


class TableReadError(MaterialiseError):
    """A mini-batch's data cannot be read (a malformed row, a missing file); the message names the
    file and, where the reader tells, the line."""


_LINE = re.compile(r"(line|row) (\d+)")


def _with_file_line(message: str, chunk: TableChunk) -> str:
    """pandas reports lines counted inside the bytes it was given (header = line 1); turn them into
    the file's line numbers."""
    def shift(match):
        inner = int(match.group(2))
        offset = chunk.first_line - (2 if chunk.header_end else 1)
        return f"{match.group(1)} {inner + offset}"

    return _LINE.sub(shift, message, count=1) if chunk.start else message


def _check_unchanged(chunk: TableChunk, fs_of) -> None:
    """Raise TableReadError when a file of ``chunk`` differs from the one partitioned: its size
    and mtime (local files) or its change identity (files read through fsspec)."""
    recorded = [(chunk.path, (chunk.size, chunk.mtime_ns))] if chunk.size is not None else []
    recorded += list(zip(chunk.files, chunk.file_stats))
    for path, (size, mtime_ns) in recorded:
        stat = os.stat(path)
        if (stat.st_size, stat.st_mtime_ns) != (size, mtime_ns):
            raise TableReadError(f"input file {path!r} changed after it was partitioned (size "
                                 f"{size} -> {stat.st_size} bytes); the next run partitions it again")
    remote = [(chunk.path, chunk.ukey)] if chunk.ukey else []
    remote += list(zip(chunk.files, chunk.file_ukeys))
    if remote:
        from snakebatch.storage.locations import change_identity, local_identity

        for path, ukey in remote:
            fs = fs_of(path) if fs_of else None
            if fs is None:
                stat = os.stat(path)
                current = local_identity(stat.st_size, stat.st_mtime_ns)
            else:
                current = change_identity(fs, path)
            if current != ukey:
                raise TableReadError(f"input file {path!r} changed after it was partitioned (its change "
                                     "identity differs); the next run partitions it again")


def read_chunk(chunk: TableChunk, read_options: dict, cache: dict | None = None, fs_of=None):
    """The pandas DataFrame of ``chunk`` with the file's header and dtypes. ``cache`` (a dict)
    keeps whole files read for partition-key groups. ``fs_of``: path -> the fsspec filesystem
    holding it, or None for the local disk (None: all local). Raises TableReadError naming the
    file and line."""
    import pandas as pd
    import pyarrow.parquet as pq

    try:
        _check_unchanged(chunk, fs_of)
        if chunk.key_value is not None:
            return _read_group(chunk, read_options, cache if cache is not None else {}, fs_of)
        fs = fs_of(chunk.path) if fs_of else None
        if chunk.format == "parquet":
            with formats.open_source(chunk.path, fs) as source:
                handle = pq.ParquetFile(source)
                columns = read_options.get("columns")
                table = handle.read_row_groups(list(chunk.row_groups), columns=columns)
            if chunk.row_start is not None:
                table = table.slice(chunk.row_start, chunk.row_stop - chunk.row_start)
            return table.to_pandas()
        options = formats.text_reader_options(chunk.format, read_options)
        if chunk.dtypes:
            options["dtype"] = {**chunk.dtypes, **(options.get("dtype") or {})} if isinstance(
                options.get("dtype", {}), dict) else options["dtype"]
        if chunk.gzipped:
            with formats.open_binary(chunk.path, True, fs) as handle:
                data = handle.read()
        elif fs is not None:  # byte ranges: one ranged request each on an object store
            header = fs.cat_file(chunk.path, 0, chunk.header_end) if chunk.header_end else b""
            data = header + fs.cat_file(chunk.path, chunk.start, chunk.end)
        else:
            with open(chunk.path, "rb") as handle:
                header = handle.read(chunk.header_end) if chunk.header_end else b""
                handle.seek(chunk.start)
                data = header + handle.read(chunk.end - chunk.start)
        if chunk.format == "jsonl":
            return pd.read_json(io.BytesIO(data), lines=True, **options)
        # a first record with one field too many must not silently become the index
        options.setdefault("index_col", False)
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            return pd.read_csv(io.BytesIO(data), **options)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.ParserWarning) as exc:
        where = chunk.describe()
        raise TableReadError(f"{type(exc).__name__} reading {where}: {_with_file_line(str(exc).strip(), chunk)}") from None


def _read_group(chunk: TableChunk, read_options: dict, cache: dict, fs_of=None):
    import pandas as pd

    parts = []
    file_formats = chunk.file_formats or ((chunk.format, chunk.gzipped),) * len(chunk.files)
    for path, (fmt, gzipped) in zip(chunk.files, file_formats):
        frame = cache.get(path)
        if frame is None:
            frame = formats.read_whole(path, fmt, gzipped, read_options, fs_of(path) if fs_of else None,
                                read_options.get("columns"))
            while len(cache) >= 4:  # keep the last few files: groups of a shard share files
                cache.pop(next(iter(cache)))
            cache[path] = frame
        mask = pd.Series(True, index=frame.index)
        for key, value in chunk.key_value.items():
            column = frame[key]
            mask &= column.isna() if value is None else (column == value)
        parts.append(frame[mask])
    if not parts:
        return pd.DataFrame()
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)
