"""``append_row_format: parquet``: a run() result as a table (a DataFrame's columns, a list or
tuple as one column ``result``, no index). The worker sends it as an Arrow IPC stream, the shard
job stores it as a table file next to the mini-batch's result (``infer.store``), and gather
writes the merged Parquet file from those files, one row group per mini-batch, in input order:
the only Parquet encoding of the run. Item-level reuse does not apply."""

from __future__ import annotations

import os

from snakebatch.errors import ManifestError, ResultSchemaError
from snakebatch.formats.base import Encoded, MergeWriter, OutputFormat, as_dataframe, check_same_columns


def to_arrow_ipc(result) -> bytes:
    """A run() result as an Arrow IPC stream (the schema pyarrow infers from the DataFrame, no
    index). Raises ResultTypeError."""
    import pyarrow as pa

    table = pa.Table.from_pandas(as_dataframe(result), preserve_index=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def read_table_file(path: str):
    """The pyarrow Table stored at ``path`` by ``infer.store.MiniBatchStore.save_table``: an Arrow IPC stream
    (``.arrow``), read memory-mapped (no copy), or a Parquet file (``.parquet``, what stores
    written before held). Raises OSError (pyarrow's ArrowInvalid is one) when it cannot be read."""
    import pyarrow as pa

    if path.endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.read_table(path)
    with pa.memory_map(path) as source:
        return pa.ipc.open_stream(source).read_all()


def read_table_schema(path: str):
    """The schema of a table file (see ``read_table_file``), read without its rows."""
    import pyarrow as pa

    if path.endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.read_schema(path)
    with pa.memory_map(path) as source:
        return pa.ipc.open_stream(source).schema


def _unreadable(index: int, table_file: str, exc: Exception) -> ManifestError:
    return ManifestError(f"the result table of mini-batch {index} ({table_file!r}) cannot be read: {exc}")


def _shown(schema) -> str:
    return "schema (" + ", ".join(f"{f.name}: {f.type}" for f in schema) + ")"


class ParquetMergeWriter(MergeWriter):
    """Collects each result's table file (``(mini-batch, path)``: a path per mini-batch, never a
    table) and at ``commit`` writes the merged Parquet file from them: every schema is checked
    first; types may widen (int64 + double -> double, an all-null column -> its type); then one
    table at a time is read memory-mapped, cast and written. Raises ManifestError for a table
    file that cannot be read and ResultSchemaError naming two mini-batches whose columns differ."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.parts: list[tuple[int, str]] = []

    def add(self, result) -> None:
        if result.table_file:
            self.parts.append((result.index, result.table_file))

    def discard(self) -> None:
        self.parts = []

    def _schema(self):
        """(merged schema, each part's own schema) of the parts."""
        import pyarrow as pa

        schemas = []
        for index, table_file in self.parts:  # check every schema before writing anything
            try:
                schemas.append(read_table_schema(table_file).remove_metadata())
            except (OSError, pa.ArrowException) as exc:
                raise _unreadable(index, table_file, exc) from None
        try:  # same columns; types may widen (int64 + double -> double, an all-null column -> its type)
            schema = pa.unify_schemas(schemas, promote_options="permissive") if schemas else pa.schema([])
            if any(s.names != schema.names for s in schemas):
                raise pa.ArrowInvalid("different columns")
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            first = (self.parts[0][0], schemas[0])
            for (index, _), other in zip(self.parts, schemas):
                check_same_columns("parquet", first, index, other, _shown)
            raise
        return schema, schemas

    def commit(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema, schemas = self._schema()
        tmp = os.path.join(os.path.dirname(self.path), f".tmp-{os.path.basename(self.path)}-{os.getpid()}")
        try:
            with pq.ParquetWriter(tmp, schema) as writer:
                for (index, table_file), own in zip(self.parts, schemas):
                    try:
                        table = read_table_file(table_file).replace_schema_metadata(None)
                    except (OSError, pa.ArrowException) as exc:
                        raise _unreadable(index, table_file, exc) from None
                    try:
                        writer.write_table(table.cast(schema) if own != schema else table)
                    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                        raise ResultSchemaError(f"append_row_format parquet: mini-batch {index} cannot be "
                                                f"converted to the merged schema: {exc}") from None
                    del table  # unmapped before the next is read
            os.replace(tmp, self.path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


class ParquetFormat(OutputFormat):
    """``parquet`` (see module doc); ``dataframe_header`` does not apply."""

    name = "parquet"
    item_reuse = False

    def encode(self, result, dataframe_header: bool = False) -> Encoded:
        return Encoded([], None, to_arrow_ipc(result))

    def open_merge(self, path: str, dataframe_header: bool = False) -> ParquetMergeWriter:
        return ParquetMergeWriter(path)

    def read(self, path: str, dataframe_header: bool = False):
        import pandas as pd

        return pd.read_parquet(path)
