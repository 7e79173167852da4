"""``TableChunk``: what one tabular mini-batch reads (a byte range of a text file, row groups or a
row range of a Parquet file, or the rows of one partition-key combination across files). It is
the payload of a tabular ``MiniBatch`` in the shard manifest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field


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

    def to_dict(self) -> dict:
        """The chunk as plain JSON values (a MiniBatch's payload): unset change identities left
        out, tuples as lists, ``dtypes`` as [column, dtype] pairs (keeps int column names)."""
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
    def from_dict(cls, data: dict) -> TableChunk:
        """The chunk of ``to_dict``'s values (as read back from JSON)."""
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
