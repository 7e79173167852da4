"""``append_row_format: txt``: one line per successful item, as ParallelRunStep writes it.

Encoding: ``str(element)`` per element of a list or tuple; a pandas DataFrame gives one line per
row, values separated by a space, no header, no index (with ``append_row_dataframe_header`` its
column line once, first). A line break inside an element is written as its escape (``\\n``,
``\\r``, ``\\x0b``, ``\\u2028`` ...: every break ``str.splitlines`` knows), and a lone surrogate
as ``\\udcff``, so one result is always one UTF-8 line. Item-level reuse applies: each line is
one item's.

Reading back: lines shaped ``"<item>: <result>"`` (the demo's ``"0.png: 7"``) as two columns
``item`` and ``result``; other lines as one column ``result``; a file with a column line as the
DataFrame's own columns.
"""

from __future__ import annotations

from snakebatch.formats.base import Encoded, OutputFormat, is_dataframe, result_length
from snakebatch.formats.csv_text import frame_csv_text
from snakebatch.formats.lines import LineMergeWriter

ITEM_COLUMN, RESULT_COLUMN = "item", "result"

# Every character str.splitlines() breaks on, written as its escape, so one result is one line.
_LINE_BREAKS_CHARS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_LINE_BREAKS = {ord(c): c.encode("unicode_escape").decode("ascii") for c in _LINE_BREAKS_CHARS}
# the same characters as a regular expression (pyarrow's RE2 syntax: [\x{a}\x{d}...\x{2029}])
_LINE_BREAK_PATTERN = "[" + "".join(f"\\x{{{ord(c):x}}}" for c in _LINE_BREAKS_CHARS) + "]"


def one_line(text: str) -> str:
    """``text`` with its line breaks escaped and lone surrogates as ``\\udcXX``: one UTF-8 line."""
    line = text.translate(_LINE_BREAKS)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: keep them visible as \udcff
        line = line.encode("utf-8", "backslashreplace").decode("utf-8")
    return line


def _has_line_break(frame) -> bool:
    """True when a text column of ``frame`` holds a character ``one_line`` escapes (the numbers,
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
    if is_dataframe(result):
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
        if len(lines) != len(result) or any(one_line(line) != line for line in lines):
            # a value held a line break or an unencodable character: escape value by value
            lines = [" ".join(one_line(str(v)) for v in row) for row in result.itertuples(index=False)]
        return lines
    return [one_line(str(element)) for element in result]


def txt_header(result) -> str | None:
    """The column names of a DataFrame result as one txt line (space-separated, pandas quoting),
    for ``append_row_dataframe_header``; None for a list or tuple."""
    import pandas as pd

    if not is_dataframe(result):
        return None
    return one_line(pd.DataFrame(columns=result.columns).to_csv(sep=" ", index=False, lineterminator="\n")[:-1])


def split_item_result(lines: list[str]):
    """Lines shaped ``"<item>: <result>"`` (the demo's ``"0.png: 7"``, split at the last
    ``": "``) as two columns, the results as integers or floats when every one is a number;
    None when some line has another shape."""
    import pandas as pd

    pairs = [line.rpartition(": ") for line in lines]
    if not pairs or any(not sep or not item for item, sep, _ in pairs):
        return None
    frame = pd.DataFrame({ITEM_COLUMN: [p[0] for p in pairs], RESULT_COLUMN: [p[2] for p in pairs]})
    try:
        frame[RESULT_COLUMN] = pd.to_numeric(frame[RESULT_COLUMN])
    except (ValueError, TypeError):
        pass  # not every result is a number: they stay text
    return frame


class TxtFormat(OutputFormat):
    """``txt``: lines (see module doc)."""

    name = "txt"
    item_reuse = True

    def encode(self, result, dataframe_header: bool = False) -> Encoded:
        return Encoded(to_txt_lines(result), txt_header(result) if dataframe_header else None, None)

    def open_merge(self, path: str, dataframe_header: bool = False) -> LineMergeWriter:
        return LineMergeWriter(path, self.name, wants_header=dataframe_header)

    def read(self, path: str, dataframe_header: bool = False):
        import pandas as pd

        if dataframe_header:  # DataFrame rows, space-separated, with the column line first (pandas quoting)
            return pd.read_csv(path, sep=" ")
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        split = split_item_result(lines)
        return split if split is not None else pd.DataFrame({RESULT_COLUMN: pd.Series(lines, dtype=object)})
