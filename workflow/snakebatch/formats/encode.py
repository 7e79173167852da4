"""The worker's entry to the output formats: ``encode_result`` (the format's ``encode`` as a
tuple) and ``result_length``; each format's own code lives in ``snakebatch.formats.txt``,
``.csv`` and ``.parquet`` (``get_format``)."""

from __future__ import annotations

from snakebatch.formats import get_format
from snakebatch.formats.base import ResultTypeError, as_dataframe, result_length
from snakebatch.formats.csv import to_csv_lines
from snakebatch.formats.parquet import to_arrow_ipc
from snakebatch.formats.txt import to_txt_lines, txt_header


def encode_result(result, append_row_format: str,
                  dataframe_header: bool = False) -> tuple[list[str], str | None, bytes | None]:
    """Encode a run() result for ``append_row_format``: (lines, header, arrow_ipc) (see
    ``formats.base.Encoded``). ``txt``: lines, and with ``dataframe_header`` the column line of a
    DataFrame; ``csv``: lines and the header line; ``parquet``: the Arrow IPC bytes only. Raises
    ResultTypeError; ValueError for an unknown format."""
    return tuple(get_format(append_row_format).encode(result, dataframe_header))


__all__ = ["ResultTypeError", "as_dataframe", "encode_result", "result_length", "to_arrow_ipc", "to_csv_lines",
           "to_txt_lines", "txt_header"]
