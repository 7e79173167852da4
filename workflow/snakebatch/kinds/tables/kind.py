"""The ``tabular`` kind: a mini-batch is a pandas DataFrame (ParallelRunStep's TabularDataset).

The adapter between the kind interface and the modules beside it: ``cutter`` splits CSV/TSV/JSONL
files at record boundaries, Parquet files by row groups, gzip files whole; ``groups`` groups rows
by partition keys; ``reader`` reads a mini-batch back. A MiniBatch's payload is the
``TableChunk`` JSON (``chunk``). Files on the local disk are read with ``open``; others through
fsspec (byte ranges with ``cat_file``).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor

from snakebatch.errors import DatasetError
from snakebatch.kinds.base import Cache, MiniBatch, InputKind, Item
from snakebatch.kinds.listing import list_items
from snakebatch.kinds.tables import cutter, groups, reader
from snakebatch.kinds.tables.chunk import TableChunk
from snakebatch.kinds.tables.formats import detect_format
from snakebatch.kinds.tables.schemas import SchemaCheck, read_parquet_schema
from snakebatch.storage.locations import filesystem


def _split_threads() -> int:
    """Threads the partition splits local files on: the CPUs this process may use (its
    affinity: a SLURM allocation's), at most 4."""
    try:
        return max(1, min(4, len(os.sched_getaffinity(0))))
    except AttributeError:  # not on Linux
        return max(1, min(4, os.cpu_count() or 1))


@functools.cache
def _copy_on_write() -> bool:
    """True when pandas always copies on write (pandas >= 3)."""
    import pandas as pd

    return int(pd.__version__.split(".")[0]) >= 3


def _fs_resolver(storage_options: dict | None):
    """path -> fsspec filesystem of a non-local file, None for a local one."""
    def fs_of(path: str):
        return filesystem(path, storage_options)[0]
    return fs_of


def chunk_key(item: Item, chunk: TableChunk) -> str:
    """Hex SHA-256 of one file's part of a tabular mini-batch: the file (Item.key_line) and the
    range it reads (the chunk's JSON). For local files the digest earlier versions' partition gave
    (store keys unchanged)."""
    digest = hashlib.sha256()
    digest.update(item.key_line().encode("utf-8", "surrogateescape") + b"\n")
    digest.update(json.dumps(chunk.to_dict(), sort_keys=True, default=str).encode())
    return digest.hexdigest()


def _with_identity(chunk: TableChunk, item: Item) -> TableChunk:
    """The chunk with the file's identity as partitioned: size and mtime (local) or ukey."""
    if item.local:
        return dataclasses.replace(chunk, size=item.size, mtime_ns=item.mtime_ns)
    return dataclasses.replace(chunk, ukey=item.ukey)


def _with_group_identities(chunk: TableChunk, items: list[Item]) -> TableChunk:
    if all(i.local for i in items):
        return dataclasses.replace(chunk, file_stats=tuple((i.size, i.mtime_ns) for i in items))
    return dataclasses.replace(chunk, file_ukeys=tuple(i.ukey for i in items))


class TableKind(InputKind):
    """``input.type: tabular``: mini-batches of about ``mini_batch_size`` bytes that never cross
    a file's end, or one per distinct ``partition_keys`` combination across all files."""

    name = "tabular"
    item_unit = "records"
    count_is_exact = False  # records counted by line ends; blank lines may make pandas read fewer

    def list(self, spec):
        return list_items(spec.paths, spec.pattern, getattr(spec, "storage_options", None))

    def chunks(self, listing, spec, log=print):
        """Iterate (TableChunk, [Item, ...]) of ``listing`` under ``spec``; without partition keys
        one file at a time. Raises DatasetError naming a file that cannot be read or split, two
        Parquet files whose columns disagree (``schemas.SchemaCheck``; before any mini-batch of
        the later file), or the roots when no file holds a record."""
        fs_of = _fs_resolver(getattr(spec, "storage_options", None))
        read_options = dict(spec.read_options or {})
        seen_files = 0
        found = False
        check = SchemaCheck(read_options.get("columns"))
        if spec.partition_keys:
            files = [(item, *detect_format(item.path, spec.format)) for item in listing]
            seen_files = len(files)
            for item, fmt, _ in files:
                if fmt == "parquet":
                    check.add(item.path, read_parquet_schema(item.path, fs_of(item.path)))
            by_path = {item.path: item for item, _, _ in files}
            for chunk in groups.key_groups([(i.path, f, g) for i, f, g in files], list(spec.partition_keys),
                                            read_options, fs_of):
                items = [by_path[p] for p in chunk.files]
                found = True
                yield _with_group_identities(chunk, items), items
        else:
            # local files are split (and their dtypes found) on a few threads, pandas' parser and
            # numpy release the GIL; the mini-batches stay in listing order
            pool = ThreadPoolExecutor(max_workers=_split_threads(), thread_name_prefix="snakebatch-split")
            try:
                pending = [(item, pool.submit(self._file_parts, item, spec, read_options, None)
                            if fs_of(item.path) is None else None) for item in listing]
                for item, future in pending:
                    seen_files += 1
                    parts, warning, schema = (future.result() if future is not None
                                              else self._file_parts(item, spec, read_options, fs_of(item.path)))
                    if schema is not None:  # a Parquet file: its columns agree with the first one's
                        check.add(item.path, schema)
                    if warning:
                        log(warning)
                    for part in parts:
                        found = True
                        yield _with_identity(part, item), [item]
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        if not found:
            raise DatasetError(f"input.path: {', '.join(map(repr, spec.paths))}: the tabular dataset has no "
                               f"records ({seen_files} file(s), all empty or header only)")

    @staticmethod
    def _file_parts(item: Item, spec, read_options: dict, fs) -> tuple[list[TableChunk], str | None, object]:
        """(the TableChunks of one file, a warning to log or None, its Arrow schema when it is
        Parquet, else None); ``fs``: its fsspec filesystem, None on the local disk. A text file
        cut into several chunks gets the file's dtypes (``cutter.file_dtypes``). Raises
        DatasetError naming the file."""
        fmt, gzipped = detect_format(item.path, spec.format)
        if fmt == "parquet":
            schema = []
            return cutter.split_parquet_file(item.path, spec.mini_batch_size, fs, schema.append), None, schema[0]
        parts = cutter.split_text_file(item.path, fmt, gzipped, spec.mini_batch_size, read_options, fs)
        warning = None
        if gzipped and item.size > spec.mini_batch_size:
            warning = (f"snakebatch partition: warning: {item.path!r} is gzip-compressed and cannot be split; "
                       f"it is one mini-batch of {item.size} bytes (mini_batch_size {spec.mini_batch_size})")
        if len(parts) > 1:
            dtypes = cutter.file_dtypes(item.path, fmt, gzipped, read_options, fs)
            parts = [dataclasses.replace(part, dtypes=dtypes) for part in parts]
        return parts, warning, None

    def mini_batches(self, listing, spec, log=print) -> list[MiniBatch]:
        """One MiniBatch per chunk (see ``chunks``); ``first_item`` counts records. The key is
        the digest earlier versions' partition gave for local files (store keys unchanged)."""
        batches, first = [], 0
        for chunk, items in self.chunks(listing, spec, log):
            digest = hashlib.sha256()
            for item in items:
                digest.update(chunk_key(item, chunk).encode())
            batches.append(MiniBatch(kind=self.name, index=len(batches), first_item=first, key=digest.hexdigest(),
                                      count=chunk.records, payload=chunk.to_dict()))
            first += chunk.records
        return batches

    @staticmethod
    def chunk(descriptor: MiniBatch) -> TableChunk:
        """The TableChunk a tabular MiniBatch reads."""
        return TableChunk.from_dict(descriptor.payload)

    def materialise(self, descriptor: MiniBatch, read_options: dict, cache: Cache):
        """The DataFrame of the mini-batch (``reader.read_chunk``); raises
        ``reader.TableReadError`` (a MaterialiseError) naming the file and line."""
        return reader.read_chunk(self.chunk(descriptor), read_options or {}, cache.frames,
                                  _fs_resolver(cache.storage_options))

    def select(self, materialised, start: int, stop: int):
        """Rows ``start:stop``, which edits in run() cannot leak from into a retry: a view under
        pandas' Copy-on-Write (always on from pandas 3: an edit copies, the arrays it hands out
        are read-only), a copy before."""
        part = materialised.iloc[start:stop]
        return part if _copy_on_write() else part.copy()

    def item_names(self, descriptor: MiniBatch) -> tuple[str, ...]:
        chunk = self.chunk(descriptor)
        return chunk.files or (chunk.path,)

    def describe(self, descriptor: MiniBatch) -> str:
        return self.chunk(descriptor).describe()

    def describe_item(self, descriptor: MiniBatch, position: int) -> str:
        return self.chunk(descriptor).describe_row(position)

    def cut_description(self, spec) -> str:
        """``mini_batch_size N bytes``, or ``one mini-batch per value of k1, k2``."""
        if spec.partition_keys:
            return f"one mini-batch per value of {', '.join(spec.partition_keys)}"
        return f"mini_batch_size {spec.mini_batch_size} bytes"

    def partition_key_value(self, descriptor: MiniBatch) -> dict:
        chunk = self.chunk(descriptor)
        return dict(chunk.key_value) if chunk.key_value else {}
