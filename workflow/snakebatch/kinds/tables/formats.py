"""Table file formats: telling a file's format (CSV, TSV, JSON Lines, Parquet; text maybe
gzipped), a tabular ``mini_batch_size`` in bytes, and opening and reading a table file (local, or
through fsspec) for the cutter, the partition-key groups and the reader.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re

from snakebatch.errors import DatasetError

FORMATS = ("csv", "tsv", "parquet", "jsonl")
_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet",
               ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
_UNITS = {"": 1, "B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3, "TB": 1024 ** 4}

def parse_byte_size(value) -> int:
    """Bytes of a tabular ``mini_batch_size``: an int >= 1, or a string ``"512"``, ``"64KB"``,
    ``"1MB"``, ``"1GB"`` (1024-based, case-insensitive, optional space). None = 1MB (ParallelRunStep's
    default). Raises ValueError with a message naming the accepted forms."""
    if value is None:
        return 1024 ** 2
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a byte size")
    if isinstance(value, int):
        number, unit = value, ""
    else:
        match = re.fullmatch(r"\s*(\d+)\s*([A-Za-z]*)\s*", str(value))
        if not match or match.group(2).upper() not in _UNITS:
            raise ValueError(f"{value!r} is not a byte size such as 1024, '64KB', '1MB' or '1GB'")
        number, unit = int(match.group(1)), match.group(2).upper()
    size = number * _UNITS[unit]
    if size < 1:
        raise ValueError(f"{value!r} must be at least 1 byte")
    return size


def detect_format(path: str, configured: str | None) -> tuple[str, bool]:
    """(format, gzipped) of ``path``: ``configured`` (input.format) wins, else the extension
    (``.csv``, ``.tsv``, ``.parquet``, ``.jsonl``/``.ndjson``/``.json``, each maybe ``.gz``).
    Raises DatasetError naming the file when the format cannot be told."""
    name = path.lower()
    gzipped = name.endswith(".gz")
    if gzipped:
        name = name[:-3]
    fmt = configured or _EXTENSIONS.get(os.path.splitext(name)[1])
    if fmt is None:
        raise DatasetError(f"input file {path!r}: cannot tell its tabular format from the extension; "
                           f"set input.format to one of {', '.join(FORMATS)}")
    if fmt == "parquet" and gzipped:
        raise DatasetError(f"input file {path!r}: a gzip-compressed Parquet file cannot be read; "
                           "Parquet compresses its own pages")
    return fmt, gzipped


def text_reader_options(fmt: str, read_options: dict) -> dict:
    """The keyword arguments of ``pandas.read_csv``/``read_json`` for a file of format ``fmt``:
    ``read_options`` (input.read_options), with ``sep="\\t"`` for TSV unless set."""
    options = dict(read_options)
    if fmt == "tsv":
        options.setdefault("sep", "\t")
    return options


@contextlib.contextmanager
def open_binary(path: str, gzipped: bool, fs=None):
    """A binary, seekable reader of ``path``: the local file, or with ``fs`` (an fsspec
    filesystem) ``fs.open(path, "rb")``; decompressed when ``gzipped``."""
    if fs is None:
        with (gzip.open(path, "rb") if gzipped else open(path, "rb")) as handle:
            yield handle
        return
    with fs.open(path, "rb") as raw:
        if gzipped:
            with gzip.open(raw, "rb") as handle:
                yield handle
        else:
            yield raw


@contextlib.contextmanager
def open_source(path: str, fs=None):
    """What pandas/pyarrow should read: ``path`` itself (local, ``fs`` None), or an open fsspec
    file of ``fs``."""
    if fs is None:
        yield path
    else:
        with fs.open(path, "rb") as handle:
            yield handle


def read_whole(path: str, fmt: str, gzipped: bool, read_options: dict, fs=None, columns=None):
    """A whole file as a DataFrame (Parquet: only ``columns``, None = all; text: every column).
    ``fs``: the fsspec filesystem holding ``path``, None for the local disk. Raises what pandas
    or pyarrow raise (OSError, ValueError, ``pandas.errors.ParserError``...)."""
    import pandas as pd
    import pyarrow.parquet as pq

    with open_source(path, fs) as source:
        if fmt == "parquet":
            return pq.read_table(source, columns=columns).to_pandas()
        if fmt == "jsonl":
            return pd.read_json(source, lines=True, compression="gzip" if gzipped else None,
                                **text_reader_options(fmt, read_options))
        return pd.read_csv(source, compression="gzip" if gzipped else None,
                           **text_reader_options(fmt, read_options))
