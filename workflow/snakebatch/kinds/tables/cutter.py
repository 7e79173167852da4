"""Tabular datasets: cut CSV/TSV/JSON Lines/Parquet files into mini-batches by byte size, and read
a mini-batch back as a pandas DataFrame (``input.type: tabular``).

A mini-batch never crosses a file boundary (ParallelRunStep). Text files (CSV, TSV, JSONL) are
split at record boundaries found by one streaming, numpy-vectorised pass over the bytes that tracks
quotes the way pandas' C parser reads them, so a quoted field holding newlines or delimiters never
splits a record, and a literal quote inside an unquoted field (``5" screen``) does not confuse it; each chunk is read with the
file's header bytes in front, and with the file's dtypes (found by a chunked pandas pass over the
whole file, only for files cut into several chunks), so every mini-batch has the file's header and
dtypes. Parquet files are split by row groups, and a row group larger than the size by row ranges
(ParallelRunStep cannot split a single-row-group file). Gzip-compressed text (``.gz``) cannot be
read from an offset: such a file is one mini-batch. With ``partition_keys`` a mini-batch is every
row, across all files, with one combination of key values.

A ``TableChunk`` (JSON in the shard manifest) says what to read; ``read_chunk`` reads it.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import re
import warnings
from dataclasses import dataclass, field

from snakebatch.errors import DatasetError
from snakebatch.kinds.base import MaterialiseError

FORMATS = ("csv", "tsv", "parquet", "jsonl")
_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet",
               ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
_UNITS = {"": 1, "B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3, "TB": 1024 ** 4}
BLOCK = 8 * 1024 * 1024  # bytes read at a time while scanning for record boundaries
# read_options that make byte offsets meaningless: a file read with them is one mini-batch
_UNSPLITTABLE_OPTIONS = ("skiprows", "skipfooter", "nrows", "comment", "lineterminator", "encoding",
                         "compression", "escapechar", "chunksize", "iterator")


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


@dataclass(frozen=True)
class TableChunk:
    """What one tabular mini-batch reads.

    ``path``/``format``/``gzipped``: the file; ``start``/``end``: byte range of its records
    (text formats; ``header_end``: the header record is bytes [0, header_end)); ``row_groups``
    (Parquet) with ``row_start``/``row_stop`` when one row group is split by rows; ``records``:
    data records in the chunk (rows; for text a count of records, which blank lines may make
    larger than the rows pandas reads); ``first_record``: index of its first record in the file;
    ``first_line``: 1-based line of that record in the file; ``dtypes``: column -> dtype for
    files cut into several chunks; ``size``/``mtime_ns``: the file as partitioned (a file changed
    since cannot be read by offsets); ``files``/``key_value``: a partition-key group (all rows of
    ``files`` whose key columns equal ``key_value``); ``ukey``/``file_ukeys``: the change
    identity of a file read through fsspec (not on the local disk), instead of size and mtime."""

    path: str
    format: str
    records: int
    gzipped: bool = False
    start: int = 0
    end: int = 0
    header_end: int = 0
    first_record: int = 0
    first_line: int = 1
    row_groups: tuple[int, ...] = ()
    row_start: int | None = None
    row_stop: int | None = None
    dtypes: dict = field(default_factory=dict)
    size: int | None = None
    mtime_ns: int | None = None
    files: tuple[str, ...] = ()
    key_value: dict | None = None
    file_formats: tuple[tuple[str, bool], ...] = ()
    file_stats: tuple[tuple[int, int], ...] = ()
    ukey: str | None = None
    file_ukeys: tuple[str, ...] = ()

    def to_json(self) -> dict:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__}
        for name in ("ukey", "file_ukeys"):  # change identities of files outside the local disk:
            if not data[name]:               # left out when unset, so local chunks keep their JSON
                del data[name]
        if self.file_ukeys:
            data["file_ukeys"] = list(self.file_ukeys)
        data["row_groups"] = list(self.row_groups)
        data["files"] = list(self.files)
        data["file_formats"] = [list(f) for f in self.file_formats]
        data["file_stats"] = [list(f) for f in self.file_stats]
        data["dtypes"] = [[column, dtype] for column, dtype in self.dtypes.items()]  # keeps int column names
        return data

    @classmethod
    def from_json(cls, data: dict) -> TableChunk:
        data = dict(data)
        data["row_groups"] = tuple(data.get("row_groups", ()))
        data["files"] = tuple(data.get("files", ()))
        data["file_formats"] = tuple((str(f), bool(g)) for f, g in data.get("file_formats", ()))
        data["file_stats"] = tuple((int(n), int(t)) for n, t in data.get("file_stats", ()))
        data["file_ukeys"] = tuple(data.get("file_ukeys", ()))
        data["dtypes"] = {column: dtype for column, dtype in data.get("dtypes", ())}
        return cls(**data)

    def describe(self) -> str:
        """Where the chunk is, for messages: ``data.csv, lines 2-501`` or ``partition key {...}``."""
        if self.key_value is not None:
            return f"partition key {json.dumps(self.key_value, default=str)}"
        if self.format == "parquet":
            rows = f", rows {self.row_start}-{self.row_stop - 1}" if self.row_start is not None else ""
            return f"{self.path}, row group(s) {list(self.row_groups)}{rows}"
        if self.records == 0:
            return self.path
        last = self.first_line + self.records - 1
        return f"{self.path}, line{'s' if last > self.first_line else ''} {self.first_line}" + (
            f"-{last}" if last > self.first_line else "")

    def describe_row(self, row: int) -> str:
        """The ``row``-th row (0-based) of this chunk, for errors.jsonl: ``data.csv, record 17``."""
        if self.key_value is not None:
            return f"partition key {json.dumps(self.key_value, default=str)}, row {row}"
        if self.format == "parquet":
            base = self.row_start or 0
            return f"{self.path}, row group(s) {list(self.row_groups)}, row {base + row}"
        return f"{self.path}, record {self.first_record + row}"


# ----------------------------------------------------------------------------------- text files
def _separator(fmt: str, read_options: dict) -> bytes | None:
    """The one-byte field separator, None when it is not one byte (a regex, sniffing): then a file
    is not split, because fields cannot be told apart without pandas."""
    if fmt == "jsonl":
        return b"\n"
    sep = read_options.get("sep", read_options.get("delimiter", "\t" if fmt == "tsv" else ","))
    if read_options.get("delim_whitespace"):
        return None
    if not isinstance(sep, str) or len(sep.encode()) != 1:
        return None
    return sep.encode()


def _quote_char(fmt: str, read_options: dict) -> bytes | None:
    if fmt == "jsonl":
        return None  # a JSON string cannot hold a raw newline: every newline ends a record
    if read_options.get("quoting") == 3:  # csv.QUOTE_NONE
        return None
    return str(read_options.get("quotechar", '"')).encode()


def _quote_toggles(array, quote: int, starts, inside: bool, prev: int, closed_before: bool):
    """The quotes of one block that change the quoted/unquoted state, the way pandas' C parser
    reads them: outside a quoted field a quote opens one only at the start of a field (after a
    separator or line break) - elsewhere it is a literal character, as in ``5" screen``; inside,
    a quote closes the field, and a quote right after a closing one is an escaped quote (``""``)
    that reopens it. One Python step per quote: used only for blocks with literal quotes."""
    import numpy as np

    toggles = np.zeros(len(array), dtype=bool)
    last_close = -1 if closed_before else -2
    for position in np.flatnonzero(array == quote).tolist():
        before = int(array[position - 1]) if position else prev
        if inside:
            toggles[position], inside, last_close = True, False, position
        elif position == last_close + 1 or before in starts:
            toggles[position], inside = True, True
    return toggles


def record_end_blocks(handle, quote: bytes | None, sep: bytes | None = b",", block: int = BLOCK,
                      skip_initial_space: bool = False):
    """Yield, block by block, numpy arrays (int64, ascending) of the offsets just past each
    record-ending newline of a text stream: a newline ends a record unless it lies inside a quoted
    field. Quotes are read as pandas' C parser reads them (see _quote_toggles): RFC 4180 quoting
    is handled fully vectorised (no Python work per record); a block holding a literal quote in an
    unquoted field takes a slower exact path."""
    import numpy as np

    offset = 0
    inside = False
    prev = 10  # the byte before the first one: as after a line break (a field starts)
    closed_before = False  # the previous block ended with a quote that closed a field
    starts = {10, 13} | ({sep[0]} if sep else set()) | ({32} if skip_initial_space else set())
    start_bytes = np.array(sorted(starts), dtype=np.uint8)
    while True:
        data = handle.read(block)
        if not data:
            return
        array = np.frombuffer(data, dtype=np.uint8)
        newlines = array == 10
        if quote is not None and (inside or quote in data):
            quotes = array == quote[0]
            state_after = (np.cumsum(quotes, dtype=np.uint8) + inside) & 1  # uint8 wraps: the low bit survives
            state_before = np.empty_like(state_after)
            state_before[0] = inside
            state_before[1:] = state_after[:-1]
            previous = np.empty_like(array)
            previous[0] = prev
            previous[1:] = array[:-1]
            escaped = previous == quote[0]  # the second quote of a "" pair
            literal = quotes & (state_before == 0) & ~np.isin(previous, start_bytes) & ~escaped
            if literal.any():
                toggles = _quote_toggles(array, quote[0], starts, inside, prev, closed_before)
                state_after = (np.cumsum(toggles, dtype=np.uint8) + inside) & 1
                closed_before = bool(toggles[-1] and not state_after[-1])
            else:
                closed_before = bool(quotes[-1] and not state_after[-1])
            newlines &= state_after == 0
            inside = bool(state_after[-1])
        else:
            closed_before = False
        prev = data[-1]
        yield np.flatnonzero(newlines).astype(np.int64) + (offset + 1)
        offset += len(data)


@contextlib.contextmanager
def _open_binary(path: str, gzipped: bool, fs=None):
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
def _source(path: str, fs=None):
    """What pandas/pyarrow should read: ``path`` itself (local), or an open fsspec file."""
    if fs is None:
        yield path
    else:
        with fs.open(path, "rb") as handle:
            yield handle


def split_text_file(path: str, fmt: str, gzipped: bool, size: int, read_options: dict,
                    fs=None) -> list[TableChunk]:
    """The chunks of one CSV/TSV/JSONL file: consecutive record ranges of at least ``size`` bytes
    (the last may be smaller; a single record larger than ``size`` is a chunk of its own), no
    chunk for a file without data records. A gzipped file, or one read with options that shift
    byte offsets (``skiprows``, ``comment``, ...), is one chunk. ``first_line`` assumes one line
    per record (exact unless quoted fields hold newlines). ``fs``: the fsspec filesystem that
    holds ``path`` (None: the local disk). Raises DatasetError naming the file when it cannot be
    read."""
    import numpy as np

    header_option = read_options.get("header", "infer")
    has_header = fmt != "jsonl" and header_option is not None and header_option is not False
    quote = _quote_char(fmt, read_options)
    sep = _separator(fmt, read_options)
    unsplittable = (gzipped or sep is None or any(k in read_options for k in _UNSPLITTABLE_OPTIONS)
                    or (has_header and header_option not in ("infer", 0)))  # a header below line 1
    spans = []  # (start, end, records)
    try:
        with _open_binary(path, gzipped, fs) as handle:
            ends = record_end_blocks(handle, quote, sep, skip_initial_space=bool(read_options.get("skipinitialspace")))
            header_end = 0
            start = previous = 0
            records = 0
            pending = next(ends, None)
            if has_header:
                while pending is not None and not len(pending):
                    pending = next(ends, None)
                if pending is not None:
                    header_end, pending = int(pending[0]), pending[1:]
                    start = previous = header_end
            while pending is not None:
                block = pending
                while len(block):
                    if unsplittable:
                        records += len(block)
                        previous = int(block[-1])
                        break
                    cut = int(np.searchsorted(block, start + size))  # first end with end - start >= size
                    if cut == len(block):
                        records += len(block)
                        previous = int(block[-1])
                        break
                    end = int(block[cut])
                    spans.append((start, end, records + cut + 1))
                    start = previous = end
                    records = 0
                    block = block[cut + 1:]
                pending = next(ends, None)
            handle.seek(previous)
            tail = handle.read()  # the last record may lack its newline
            if not header_end and not spans and not records and b"\r" in tail.strip():
                # no line feed at all: old Mac line ends (\r only); read whole, as pandas does
                records = tail.strip().count(b"\r") + 1 - (1 if has_header else 0)
                return [TableChunk(path=path, format=fmt, gzipped=gzipped, records=records, start=0,
                                   end=len(tail), first_line=2 if has_header else 1)] if records > 0 else []
            if has_header and not header_end:
                return []  # empty, or a header without a line break: no data records
            if tail.strip():
                records += 1
            if records:
                spans.append((start, previous + len(tail), records))
    except OSError as exc:
        if isinstance(exc, gzip.BadGzipFile):
            raise DatasetError(f"input file {path!r} is not a valid gzip file: {exc}") from None
        raise DatasetError(f"input file {path!r} cannot be read: {exc.strerror or exc}") from None
    except EOFError as exc:
        raise DatasetError(f"input file {path!r} is a truncated gzip file: {exc}") from None
    if unsplittable and spans:  # one chunk: the whole file, read as it is (header included)
        (_, end, records), = spans
        return [TableChunk(path=path, format=fmt, gzipped=gzipped, records=records, start=0, end=end,
                           first_line=2 if has_header else 1)]
    chunks, first_record = [], 0
    header_lines = 1 if has_header else 0
    for start, end, records in spans:
        chunks.append(TableChunk(path=path, format=fmt, gzipped=gzipped, records=records, start=start, end=end,
                                 header_end=header_end, first_record=first_record,
                                 first_line=header_lines + first_record + 1))
        first_record += records
    return chunks


def file_dtypes(path: str, fmt: str, gzipped: bool, read_options: dict, fs=None) -> dict:
    """column -> dtype name of the whole file as pandas reads it, from a chunked pass (bounded
    memory): a column int in one part and float in another is float64; one that mixes numbers
    or bools with text is text (``str``, pandas 3's string dtype). Columns the user typed through
    ``read_options`` (``dtype``, ``parse_dates``, ``converters``) are left out. ``{}`` when the
    file has a malformed record."""
    import pandas as pd

    seen: dict[str, set[str]] = {}
    options = {k: v for k, v in read_options.items() if k not in ("dtype",)}
    try:
        for part in _iter_text(path, fmt, gzipped, options, chunksize=500_000, fs=fs):
            for column, dtype in part.dtypes.items():
                seen.setdefault(column, set()).add(str(dtype))
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError):
        return {}  # a malformed record: its mini-batch fails when read, naming the line; the others
        # are read with their own inferred dtypes
    typed = set()
    for key in ("dtype", "converters"):
        if isinstance(read_options.get(key), dict):
            typed |= set(read_options[key])
    if isinstance(read_options.get("parse_dates"), list):
        typed |= set(read_options["parse_dates"])
    result = {}
    for column, kinds in seen.items():
        if column in typed:
            continue
        if len(kinds) == 1:
            kind = next(iter(kinds))
        elif kinds <= {"int64", "float64"}:
            kind = "float64"
        elif "object" in kinds:
            kind = "object"
        else:  # numbers or bools in one part, text in another: text, as a whole-file read gives
            kind = "str"
        if kind in ("int64", "float64", "bool", "object", "str"):
            result[column] = kind
    return result


def _text_reader_options(fmt: str, read_options: dict) -> dict:
    options = dict(read_options)
    if fmt == "tsv":
        options.setdefault("sep", "\t")
    return options


def _iter_text(path: str, fmt: str, gzipped: bool, read_options: dict, chunksize: int, fs=None):
    import pandas as pd

    options = _text_reader_options(fmt, read_options)
    compression = "gzip" if gzipped else None
    with _source(path, fs) as source:
        if fmt == "jsonl":
            reader = pd.read_json(source, lines=True, chunksize=chunksize, compression=compression, **options)
        else:
            reader = pd.read_csv(source, chunksize=chunksize, compression=compression, **options)
        with reader:
            yield from reader


# ------------------------------------------------------------------------------------ parquet
def row_group_bytes(meta, index: int) -> int:
    """Bytes row group ``index`` takes in the file (its columns' compressed sizes), at least 1."""
    rg = meta.row_group(index)
    return max(1, sum(rg.column(c).total_compressed_size for c in range(rg.num_columns)))


def split_parquet_file(path: str, size: int, fs=None) -> list[TableChunk]:
    """The chunks of one Parquet file: consecutive row groups while their compressed size stays
    under ``size``; a row group larger than ``size`` split into row ranges of about ``size``
    bytes. ``fs``: the fsspec filesystem holding ``path`` (None: the local disk). Raises
    DatasetError naming the file when it is not Parquet."""
    import pyarrow.parquet as pq

    try:
        with _source(path, fs) as source:
            meta = pq.ParquetFile(source).metadata
    except OSError as exc:
        raise DatasetError(f"input file {path!r} cannot be read as Parquet: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - pyarrow raises ArrowInvalid for a corrupt file
        raise DatasetError(f"input file {path!r} is not a valid Parquet file: {exc}") from None
    chunks: list[TableChunk] = []
    group: list[int] = []
    group_rows = group_bytes = 0
    record = 0

    def flush():
        nonlocal group, group_rows, group_bytes, record
        if group and group_rows:
            chunks.append(TableChunk(path=path, format="parquet", records=group_rows,
                                     row_groups=tuple(group), first_record=record))
        record += group_rows
        group, group_rows, group_bytes = [], 0, 0

    for index in range(meta.num_row_groups):
        rg = meta.row_group(index)
        rows, nbytes = rg.num_rows, row_group_bytes(meta, index)
        if nbytes > size and rows > 1:
            flush()
            pieces = min(rows, -(-nbytes // size))
            step = -(-rows // pieces)
            for row_start in range(0, rows, step):
                row_stop = min(rows, row_start + step)
                chunks.append(TableChunk(path=path, format="parquet", records=row_stop - row_start,
                                         row_groups=(index,), row_start=row_start, row_stop=row_stop,
                                         first_record=record + row_start))
            record += rows
            continue
        if group and group_bytes + nbytes > size:
            flush()
        group.append(index)
        group_rows += rows
        group_bytes += nbytes
    flush()
    return chunks


# ----------------------------------------------------------------------------- partition keys
def _read_whole(path: str, fmt: str, gzipped: bool, read_options: dict, fs=None, columns=None):
    """A whole file as a DataFrame (Parquet: only ``columns``, None = all)."""
    import pandas as pd
    import pyarrow.parquet as pq

    with _source(path, fs) as source:
        if fmt == "parquet":
            return pq.read_table(source, columns=columns).to_pandas()
        if fmt == "jsonl":
            return pd.read_json(source, lines=True, compression="gzip" if gzipped else None,
                                **_text_reader_options(fmt, read_options))
        return pd.read_csv(source, compression="gzip" if gzipped else None,
                           **_text_reader_options(fmt, read_options))


def read_columns(path: str, fmt: str, gzipped: bool, columns: list[str], read_options: dict, fs=None):
    """Only ``columns`` of a whole file, as a DataFrame. Raises DatasetError naming the file and
    the missing column."""
    import pandas as pd

    try:
        frame = _read_whole(path, fmt, gzipped, read_options, fs, columns if fmt == "parquet" else None)
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
    import pandas as pd

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


# ------------------------------------------------------------------------------------ reading
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
            with _source(chunk.path, fs) as source:
                handle = pq.ParquetFile(source)
                columns = read_options.get("columns")
                table = handle.read_row_groups(list(chunk.row_groups), columns=columns)
            if chunk.row_start is not None:
                table = table.slice(chunk.row_start, chunk.row_stop - chunk.row_start)
            return table.to_pandas()
        options = _text_reader_options(chunk.format, read_options)
        if chunk.dtypes:
            options["dtype"] = {**chunk.dtypes, **(options.get("dtype") or {})} if isinstance(
                options.get("dtype", {}), dict) else options["dtype"]
        if chunk.gzipped:
            with _open_binary(chunk.path, True, fs) as handle:
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
    formats = chunk.file_formats or ((chunk.format, chunk.gzipped),) * len(chunk.files)
    for path, (fmt, gzipped) in zip(chunk.files, formats):
        frame = cache.get(path)
        if frame is None:
            frame = _read_whole(path, fmt, gzipped, read_options, fs_of(path) if fs_of else None,
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
