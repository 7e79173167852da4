"""The Parquet files of one tabular dataset must agree on their columns: ``SchemaCheck``.

The partition reads every Parquet file's footer anyway (``cutter.split_parquet_file``, the
row groups); its schema comes with it, so files whose columns disagree (a missing column, string
in one file and int64 in another) are refused there, naming the two files and the columns, before
any shard runs (else the run fails only at gather, naming mini-batches). What pandas and the
merged Parquet file accept stays accepted: another column order, types that widen (int32 and
int64, int64 and double, an all-null column and any type), a dictionary column and its values'
type, pandas' index columns (``__index_level_N__``) and schema metadata. With
``read_options.columns`` only those columns are compared (and each file must have them).
"""

from __future__ import annotations

from snakebatch.errors import DatasetError

_INDEX_PREFIX = "__index_level_"


def read_parquet_schema(path: str, fs=None):
    """The Arrow schema in the footer of the Parquet file ``path`` (``fs``: its fsspec
    filesystem, None on the local disk); reads the footer only. Raises DatasetError naming the
    file when it is not Parquet."""
    import pyarrow.parquet as pq

    from snakebatch.kinds.tables.formats import open_source

    try:
        with open_source(path, fs) as source:
            return pq.read_schema(source)
    except OSError as exc:
        raise DatasetError(f"input file {path!r} cannot be read as Parquet: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - pyarrow raises ArrowInvalid for a corrupt file
        raise DatasetError(f"input file {path!r} is not a valid Parquet file: {exc}") from None


def _columns(schema, selected: tuple[str, ...] | None) -> dict:
    """name -> Arrow type of the columns of ``schema`` that are compared (dictionary columns as
    their values' type; pandas' index columns left out; only ``selected`` when given)."""
    import pyarrow as pa

    out = {}
    for field in schema:
        if field.name.startswith(_INDEX_PREFIX) or (selected is not None and field.name not in selected):
            continue
        out[field.name] = field.type.value_type if pa.types.is_dictionary(field.type) else field.type
    return out


def _compatible(first, other) -> bool:
    """Do Arrow types ``first`` and ``other`` unify (pyarrow's permissive promotion)?"""
    import pyarrow as pa

    try:
        pa.unify_schemas([pa.schema([pa.field("c", first)]), pa.schema([pa.field("c", other)])],
                         promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return False
    return True


class SchemaCheck:
    """Compares the schema of each Parquet file of a dataset, in listing order, with the first
    one's. ``columns``: ``read_options.columns`` (None: every column)."""

    def __init__(self, columns=None) -> None:
        self.selected = tuple(columns) if columns else None
        self.first: tuple[str, dict] | None = None

    def add(self, path: str, schema) -> None:
        """Check the Arrow ``schema`` of the file ``path``. Raises DatasetError naming ``path``
        and the first file and every column that differs (missing, or of a type that does not
        widen to the other), or a selected column the file lacks."""
        columns = _columns(schema, self.selected)
        if self.selected is not None:
            lacking = [name for name in self.selected if name not in columns]
            if lacking:
                raise DatasetError(f"input file {path!r} has no column {', '.join(map(repr, lacking))} of "
                                   "input.read_options.columns")
        if self.first is None:
            self.first = (path, columns)
            return
        first_path, first = self.first
        problems = [f"column {name!r} is not in {path!r}" for name in first if name not in columns]
        problems += [f"column {name!r} is not in {first_path!r}" for name in columns if name not in first]
        problems += [f"column {name!r} is {first[name]} in {first_path!r} and {kind} in {path!r}"
                     for name, kind in columns.items() if name in first and not _compatible(first[name], kind)]
        if problems:
            raise DatasetError(f"input files {first_path!r} and {path!r} have different Parquet schemas: "
                               + "; ".join(problems) + ". Every Parquet file of a tabular dataset needs the same "
                               "columns, of the same types" + (" (of input.read_options.columns)" if self.selected
                                                                else ""))
