"""append_row encoding: turn what ``run()`` returned into the lines of the merged file
(``txt``, ``csv``) or into an Arrow table (``parquet``).

txt follows ParallelRunStep: ``str(element)`` per element of a list or tuple; a pandas DataFrame
gives one line per row, values separated by a space, no header, no index. A line break inside an
element is written as its escape (``\\n``, ``\\r``, ``\\x0b``, ``\\u2028`` ...: every break
``str.splitlines`` knows), and a lone surrogate as ``\\udcff``, so one result is always one UTF-8 line.
"""

from __future__ import annotations

from snakebatch.formats.csv_text import frame_csv_text


class ResultTypeError(TypeError):
    """run() returned something other than a list, tuple or pandas DataFrame."""


def _is_dataframe(value) -> bool:
    return type(value).__name__ == "DataFrame" and type(value).__module__.startswith("pandas")


# Every character str.splitlines() breaks on, written as its escape, so one result is one line.
_LINE_BREAKS_CHARS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_LINE_BREAKS = {ord(c): c.encode("unicode_escape").decode("ascii") for c in _LINE_BREAKS_CHARS}


# the same characters as a regular expression (pyarrow's RE2 syntax: [\x{a}\x{d}...\x{2029}])
_LINE_BREAK_PATTERN = "[" + "".join(f"\\x{{{ord(c):x}}}" for c in _LINE_BREAKS_CHARS) + "]"


def _one_line(text: str) -> str:
    line = text.translate(_LINE_BREAKS)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: keep them visible as \udcff
        line = line.encode("utf-8", "backslashreplace").decode("utf-8")
    return line


def result_length(result) -> int:
    """Number of elements (list/tuple) or rows (DataFrame) in a run() result.

    Raises ResultTypeError naming the type for anything else (None included)."""
    if isinstance(result, (list, tuple)) or _is_dataframe(result):
        return len(result)
    raise ResultTypeError(
        f"run() returned {type(result).__name__}; it must return a list, tuple or pandas DataFrame "
        "with one element per successful item of the mini-batch"
    )


def _has_line_break(frame) -> bool:
    """True when a text column of ``frame`` holds a character ``_one_line`` escapes (the numbers,
    booleans and empty fields ``csv_text`` formats hold none)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for position in range(frame.shape[1]):
        column = frame.iloc[:, position]
        if column.dtype.kind in "iufb":
            continue
        if pc.any(pc.match_substring_regex(pa.array(column, type=pa.large_string(), from_pandas=True),
                                           _LINE_BREAK_PATTERN)).as_py():
            return True
    return False


def to_txt_lines(result) -> list[str]:
    """The txt lines of a run() result (see module doc). Raises ResultTypeError."""
    result_length(result)
    if _is_dataframe(result):
        if result.shape[1] == 0:
            return [""] * len(result)
        text = frame_csv_text(result, " ")
        if text is not None and not _has_line_break(result):  # each row one line, nothing to escape
            return text.split("\n")[:-1]
        try:
            text = result.to_csv(sep=" ", header=False, index=False, lineterminator="\n")
            lines = text.split("\n")[:-1] if text else []
        except UnicodeError:
            lines = []
        if len(lines) != len(result) or any(_one_line(line) != line for line in lines):
            # a value held a line break or an unencodable character: escape value by value
            lines = [" ".join(_one_line(str(v)) for v in row) for row in result.itertuples(index=False)]
        return lines
    return [_one_line(str(element)) for element in result]


def as_dataframe(result):
    """A run() result as a DataFrame: a DataFrame as is; a list or tuple as one column named
    ``result``. Raises ResultTypeError."""
    import pandas as pd

    result_length(result)
    return result if _is_dataframe(result) else pd.DataFrame({"result": list(result)})


def to_csv_lines(result) -> tuple[list[str], str]:
    """(lines, header) of a run() result for ``append_row_format: csv``: the header line of its
    columns, and its rows as CSV text (pandas quoting: a value holding the separator, a quote or a
    line break is quoted, so ``pd.read_csv`` reads back what run() returned; NaN is an empty
    field), no index. The rows come as one element (the merged file writes element + newline),
    none for zero rows. Raises ResultTypeError."""
    import pandas as pd

    frame = as_dataframe(result)
    header = pd.DataFrame(columns=frame.columns).to_csv(index=False, lineterminator="\n")[:-1]
    if not len(frame):
        return [], header
    body = frame_csv_text(frame, ",")
    if body is None:  # a column type csv_text does not format
        body = frame.to_csv(index=False, header=False, lineterminator="\n")
    return [body[:-1]], header


def to_arrow_ipc(result) -> bytes:
    """A run() result for ``append_row_format: parquet`` as an Arrow IPC stream (the schema
    pyarrow infers from the DataFrame, no index). Raises ResultTypeError."""
    import pyarrow as pa

    table = pa.Table.from_pandas(as_dataframe(result), preserve_index=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def txt_header(result) -> str | None:
    """The column names of a DataFrame result as one txt line (space-separated, pandas quoting),
    for ``append_row_dataframe_header``; None for a list or tuple."""
    import pandas as pd

    if not _is_dataframe(result):
        return None
    return _one_line(pd.DataFrame(columns=result.columns).to_csv(sep=" ", index=False, lineterminator="\n")[:-1])


def encode_result(result, append_row_format: str,
                  dataframe_header: bool = False) -> tuple[list[str], str | None, bytes | None]:
    """Encode a run() result for ``append_row_format``: (lines, header, arrow_ipc). ``txt``: lines,
    and with ``dataframe_header`` the column line of a DataFrame; ``csv``: lines and the header
    line; ``parquet``: the Arrow IPC bytes only. Raises ResultTypeError."""
    if append_row_format == "csv":
        lines, header = to_csv_lines(result)
        return lines, header, None
    if append_row_format == "parquet":
        return [], None, to_arrow_ipc(result)
    return to_txt_lines(result), txt_header(result) if dataframe_header else None, None
