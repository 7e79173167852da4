"""The merged file of the line formats (``txt``, ``csv``): ``LineMergeWriter``."""

from __future__ import annotations

from snakebatch.errors import ResultSchemaError
from snakebatch.formats.base import MergeWriter, check_same_columns
from snakebatch.formats.staged import StagedFile


class LineMergeWriter(MergeWriter):
    """Writes a merged line file while results arrive, in order, to a temporary file
    (``StagedFile``) that becomes ``path`` at ``commit``. With ``wants_header`` (``csv``, or
    ``txt`` with ``append_row_dataframe_header``) the first result's header line is written once,
    first; then every result's lines, each ending in ``\\n``. Holds one header, never a line.
    ``add`` raises ResultSchemaError naming two mini-batches whose headers differ, or a mini-batch
    with a header after one that wrote lines without (a list after a DataFrame)."""

    def __init__(self, path: str, append_row_format: str, wants_header: bool) -> None:
        self.format = append_row_format
        self.wants_header = wants_header
        self.header: tuple[int, str] | None = None  # (mini-batch, header line) of the first header
        self.headerless: int | None = None  # a mini-batch that wrote lines without a header
        self.file = StagedFile(path)

    def add(self, result) -> None:
        if self.wants_header and result.header is not None:
            if self.header is None:
                if self.headerless is not None:
                    raise ResultSchemaError(
                        f"append_row_dataframe_header: mini-batch {result.index} returned a DataFrame but mini-batch "
                        f"{self.headerless} returned a list, so the header cannot be the first line; return "
                        "DataFrames from every run()")
                self.header = (result.index, result.header)
                self.file.write(result.header + "\n")
            check_same_columns(self.format, self.header, result.index, result.header, lambda h: f"columns {h!r}")
        elif self.wants_header and result.lines and self.headerless is None:
            self.headerless = result.index
        write = self.file.write
        for line in result.lines:
            write(line + "\n")

    def commit(self) -> None:
        self.file.commit()

    def discard(self) -> None:
        self.file.discard()
