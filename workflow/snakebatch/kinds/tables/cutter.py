"""The byte cutter: cut CSV/TSV/JSON Lines files into mini-batches of about ``mini_batch_size``
bytes at record boundaries, and Parquet files by row groups (``input.type: tabular``).

A mini-batch never crosses a file boundary (ParallelRunStep). Text files are split at record
boundaries found by one streaming, numpy-vectorised pass over the bytes (``record_end_blocks``)
that tracks quotes the way pandas' C parser reads them, so a quoted field holding newlines or
delimiters never splits a record, and a literal quote inside an unquoted field (``5" screen``)
does not confuse it; each chunk is read with the file's header bytes in front, and with the
file's dtypes (``file_dtypes``: a chunked pandas pass over the whole file, only for files cut into
several chunks), so every mini-batch has the file's header and dtypes. Parquet files are split by
row groups, and a row group larger than the size by row ranges (ParallelRunStep cannot split a
single-row-group file). Gzip-compressed text (``.gz``) cannot be read from an offset: such a file
is one mini-batch. Reading a chunk back is ``kinds.tables.reader``'s.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field

from snakebatch.errors import DatasetError
from snakebatch.kinds.tables import formats
from snakebatch.kinds.tables.chunk import TableChunk

BLOCK = 8 * 1024 * 1024  # bytes read at a time while scanning for record boundaries
#: read_options that make byte offsets meaningless: a file read with them is one mini-batch
UNSPLITTABLE_OPTIONS = ("skiprows", "skipfooter", "nrows", "comment", "lineterminator", "encoding",
                        "compression", "escapechar", "chunksize", "iterator")


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


def _blank_bytes(sep: bytes | None):
    """A numpy lookup table (bool, 256): True for the bytes a line pandas skips as blank may hold
    (space, tab, CR and the line feed itself), the field separator excepted (``\t`` in a TSV file
    is data: a line of empty fields)."""
    import numpy as np

    blank = np.zeros(256, dtype=bool)
    blank[[9, 10, 13, 32]] = True
    if sep and sep[0] in (9, 32):
        blank[sep[0]] = False
    return blank


def _holds_data(array, rel_ends, carry: bool, blank):
    """(flags, carry) for one block: ``flags[i]`` True when the record ending at ``rel_ends[i]``
    (offsets in the block just past its newline) holds a byte that is not blank, so pandas reads
    it as a row; ``carry`` in: the record still open at the block's start holds one so far; out:
    the same for the record open at its end. A blank record starts with a blank byte, so blocks
    without one (the usual case) take one look per record; others one vectorised pass."""
    import numpy as np

    bounds = np.concatenate((np.zeros(1, dtype=np.int64), rel_ends))
    open_tail = bool(bounds[-1] < len(array))
    starts = bounds if open_tail else bounds[:-1]
    if blank[array[starts]].any():
        holds = np.logical_or.reduceat(~blank[array], starts)
    else:
        holds = np.ones(len(starts), dtype=bool)
    flags = holds[:len(rel_ends)].copy()
    if len(flags):
        flags[0] |= carry
        return flags, bool(open_tail and holds[-1])
    return flags, bool(carry or holds[-1])


def record_end_blocks(handle, quote: bytes | None, sep: bytes | None = b",", block: int = BLOCK,
                      skip_initial_space: bool = False, skip_blank: bool = False):
    """Yield, block by block, (ends, lines): numpy arrays (int64, ascending) of the offsets just
    past each record-ending newline of a text stream, and for each the count of record-ending
    newlines from the stream's start through it. A newline ends a record unless it lies inside a
    quoted field. Quotes are read as pandas' C parser reads them (see _quote_toggles): RFC 4180
    quoting is handled fully vectorised (no Python work per record); a block holding a literal
    quote in an unquoted field takes a slower exact path. ``skip_blank``: a record of spaces, tabs
    and CRs only (a blank line, which pandas skips) ends no record: its bytes join the next one,
    and ``lines`` still counts it."""
    import numpy as np

    offset = lines = 0
    inside = carry = False
    prev = 10  # the byte before the first one: as after a line break (a field starts)
    closed_before = False  # the previous block ended with a quote that closed a field
    starts = {10, 13} | ({sep[0]} if sep else set()) | ({32} if skip_initial_space else set())
    start_bytes = np.array(sorted(starts), dtype=np.uint8)
    blank = _blank_bytes(sep) if skip_blank else None
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
        ends = np.flatnonzero(newlines).astype(np.int64) + 1
        numbers = np.arange(lines + 1, lines + 1 + len(ends), dtype=np.int64)
        lines += len(ends)
        if blank is not None:
            keep, carry = _holds_data(array, ends, carry, blank)
            ends, numbers = ends[keep], numbers[keep]
        yield ends + offset, numbers
        offset += len(data)


@dataclass
class _Spans:
    """The byte spans one text file is cut into, made block by block: ``spans`` holds (start,
    end, records, first_line) of each closed one; ``start``, ``records`` and ``first_line`` are
    the open span's, ``previous`` the last record end seen."""

    size: int
    unsplittable: bool
    spans: list = field(default_factory=list)
    start: int = 0
    previous: int = 0
    records: int = 0
    first_line: int = 1

    def add(self, ends, lines) -> None:
        """Take the record ends of one block (and their line counts, see record_end_blocks):
        close a span at the first end at least ``size`` bytes past its start, again and again."""
        import numpy as np

        while len(ends):
            cut = len(ends) if self.unsplittable else int(np.searchsorted(ends, self.start + self.size))
            if cut == len(ends):  # no end far enough in this block: the span stays open
                self.records += len(ends)
                self.previous = int(ends[-1])
                return
            end = int(ends[cut])
            self.spans.append((self.start, end, self.records + cut + 1, self.first_line))
            self.start = self.previous = end
            self.records = 0
            self.first_line = int(lines[cut]) + 1
            ends, lines = ends[cut + 1:], lines[cut + 1:]


def split_text_file(path: str, fmt: str, gzipped: bool, size: int, read_options: dict,
                    fs=None) -> list[TableChunk]:
    """The chunks of one CSV/TSV/JSONL file: consecutive record ranges of at least ``size`` bytes
    (the last may be smaller; a single record larger than ``size`` is a chunk of its own), no
    chunk for a file without data records. Blank lines (spaces, tabs, CRs only), which pandas
    skips, are no records: they end no chunk and are not counted, so every chunk holds a row
    (unless ``skip_blank_lines`` is False). A gzipped file, or one read with options that shift
    byte offsets (``skiprows``, ``comment``, ...), is one chunk. ``first_line`` assumes one line
    per record (exact unless quoted fields hold newlines). ``fs``: the fsspec filesystem that
    holds ``path`` (None: the local disk). Raises DatasetError naming the file when it cannot be
    read."""
    header_option = read_options.get("header", "infer")
    has_header = fmt != "jsonl" and header_option is not None and header_option is not False
    quote = _quote_char(fmt, read_options)
    sep = _separator(fmt, read_options)
    unsplittable = (gzipped or sep is None or any(k in read_options for k in UNSPLITTABLE_OPTIONS)
                    or (has_header and header_option not in ("infer", 0)))  # a header below line 1
    skip_blank = fmt == "jsonl" or read_options.get("skip_blank_lines", True) is not False
    cut = _Spans(size, unsplittable)
    header_end = 0
    try:
        with formats.open_binary(path, gzipped, fs) as handle:
            blocks = record_end_blocks(handle, quote, sep, skip_initial_space=bool(read_options.get("skipinitialspace")),
                                       skip_blank=skip_blank)
            pending = next(blocks, None)
            if has_header:
                while pending is not None and not len(pending[0]):
                    pending = next(blocks, None)
                if pending is not None:
                    (ends, lines) = pending
                    header_end, pending = int(ends[0]), (ends[1:], lines[1:])
                    cut.start = cut.previous = header_end
                    cut.first_line = int(lines[0]) + 1
            while pending is not None:
                cut.add(*pending)
                pending = next(blocks, None)
            handle.seek(cut.previous)
            tail = handle.read()  # the last record may lack its newline
    except OSError as exc:
        if isinstance(exc, gzip.BadGzipFile):
            raise DatasetError(f"input file {path!r} is not a valid gzip file: {exc}") from None
        raise DatasetError(f"input file {path!r} cannot be read: {exc.strerror or exc}") from None
    except EOFError as exc:
        raise DatasetError(f"input file {path!r} is a truncated gzip file: {exc}") from None
    if not header_end and not cut.spans and not cut.records and b"\r" in tail.strip():
        # no line feed at all: old Mac line ends (\r only); read whole, as pandas does
        records = tail.strip().count(b"\r") + 1 - (1 if has_header else 0)
        return [TableChunk(path=path, format=fmt, gzipped=gzipped, records=records, start=0,
                           end=len(tail), first_line=2 if has_header else 1)] if records > 0 else []
    if has_header and not header_end:
        return []  # empty, or a header without a line break: no data records
    records = cut.records + (1 if tail.strip() else 0)
    spans = cut.spans + ([(cut.start, cut.previous + len(tail), records, cut.first_line)] if records else [])
    if unsplittable and spans:  # one chunk: the whole file, read as it is (header included)
        (_, end, records, _), = spans
        return [TableChunk(path=path, format=fmt, gzipped=gzipped, records=records, start=0, end=end,
                           first_line=2 if has_header else 1)]
    chunks, first_record = [], 0
    for start, end, records, first_line in spans:
        chunks.append(TableChunk(path=path, format=fmt, gzipped=gzipped, records=records, start=start, end=end,
                                 header_end=header_end, first_record=first_record, first_line=first_line))
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


def _iter_text(path: str, fmt: str, gzipped: bool, read_options: dict, chunksize: int, fs=None):
    """Iterate the DataFrames of a text file, ``chunksize`` rows at a time (bounded memory)."""
    import pandas as pd

    options = formats.text_reader_options(fmt, read_options)
    compression = "gzip" if gzipped else None
    with formats.open_source(path, fs) as source:
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


def split_parquet_file(path: str, size: int, fs=None, on_schema=None) -> list[TableChunk]:
    """The chunks of one Parquet file: consecutive row groups while their compressed size stays
    under ``size``; a row group larger than ``size`` split into row ranges of about ``size``
    bytes. ``fs``: the fsspec filesystem holding ``path`` (None: the local disk); ``on_schema``:
    called with the file's Arrow schema (from the footer read for the row groups). Raises
    DatasetError naming the file when it is not Parquet."""
    import pyarrow.parquet as pq

    try:
        with formats.open_source(path, fs) as source:
            meta = pq.ParquetFile(source).metadata
            if on_schema is not None:
                on_schema(meta.schema.to_arrow_schema())
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
