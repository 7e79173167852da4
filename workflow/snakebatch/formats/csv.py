"""``append_row_format: csv``: the header line of the result's columns once, then every row as
CSV text (pandas quoting: a value holding the separator, a quote or a line break is quoted, so
``pd.read_csv`` reads back what run() returned; NaN is an empty field), no index. A list or tuple
is one column named ``result``. Item-level reuse does not apply (a mini-batch's rows are one
block)."""

from __future__ import annotations

from snakebatch.formats.base import Encoded, OutputFormat, as_dataframe
from snakebatch.formats.csv_text import frame_csv_text
from snakebatch.formats.lines import LineMergeWriter


def to_csv_lines(result) -> tuple[list[str], str]:
    """(lines, header) of a run() result: the header line of its columns, and its rows as CSV
    text (see module doc). The rows come as one element (the merged file writes element +
    newline), none for zero rows. Raises ResultTypeError."""
    import pandas as pd

    frame = as_dataframe(result)
    header = pd.DataFrame(columns=frame.columns).to_csv(index=False, lineterminator="\n")[:-1]
    if not len(frame):
        return [], header
    body = frame_csv_text(frame, ",")
    if body is None:  # a column type csv_text does not format
        body = frame.to_csv(index=False, header=False, lineterminator="\n")
    return [body[:-1]], header


class CsvFormat(OutputFormat):
    """``csv`` (see module doc); the header is written whatever ``dataframe_header`` says."""

    name = "csv"
    item_reuse = False

    def encode(self, result, dataframe_header: bool = False) -> Encoded:
        lines, header = to_csv_lines(result)
        return Encoded(lines, header, None)

    def open_merge(self, path: str, dataframe_header: bool = False) -> LineMergeWriter:
        return LineMergeWriter(path, self.name, wants_header=True)

    def read(self, path: str, dataframe_header: bool = False):
        import pandas as pd

        return pd.read_csv(path)
