"""The ``file`` kind: a mini-batch is a list of local file paths (ParallelRunStep's FileDataset).

Listing is every kind's (``kinds.listing``); this kind cuts a listing into runs of
``mini_batch_size`` files, or one mini-batch per ``partition_keys`` combination read from the
paths (``kinds.files.partition_format``), and downloads files that are not on the local disk
(``kinds.files.download``) for ``run()``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os

from snakebatch.errors import ConfigError
from snakebatch.kinds.base import Cache, MiniBatch, InputKind, Item, Materialised, MaterialiseError, key_text
from snakebatch.kinds.files import download
from snakebatch.kinds.files.partition_format import PartitionFormat, check_items, key_groups
from snakebatch.kinds.listing import list_items
from snakebatch.storage.locations import is_local, local_path, storage_error


def mini_batch_key(items, partition_key_value: dict | None = None) -> str:
    """Hex SHA-256 over the items' key lines (see ``Item.key_line``), each followed by a newline:
    for local files the same digest earlier versions' partition gave (path, absolute path, size,
    mtime_ns), so store keys are unchanged. A ``partition_key_value`` (run() sees it) goes into
    the digest too. The lines are joined and encoded once per mini-batch."""
    digest = hashlib.sha256(key_text(list(items)).encode("utf-8", "surrogateescape"))
    if partition_key_value:
        digest.update(("\0partition_key_value\0" + repr(sorted(partition_key_value.items()))).encode())
    return digest.hexdigest()


def _partition_format(spec) -> PartitionFormat | None:
    text = getattr(spec, "partition_format", None)
    return PartitionFormat.parse(text) if text else None


class FileKind(InputKind):
    """``input.type: file``: ``mini_batch_size`` files per mini-batch, ``run()`` gets their paths.

    Payload of a MiniBatch: ``items`` (names, as Item.path) and, when any file is not on the
    local disk, ``ukeys`` (their change identities, which name the downloaded copies);
    ``partition_key_value`` for a mini-batch of one ``partition_keys`` combination.

    With ``input.partition_format`` (``spec.partition_format``) every listed file must match it
    (see ``kinds.files.partition_format``); with ``partition_keys`` too, a mini-batch is every
    file of one key combination (``mini_batches_by_key``) instead of ``mini_batch_size`` files."""

    name = "file"
    item_unit = "files"

    def list(self, spec):
        """The dataset's Items (``kinds.listing.list_items``); with ``spec.partition_format``, a
        file that does not match it raises DatasetError naming the file."""
        items = list_items(spec.paths, spec.pattern, getattr(spec, "storage_options", None))
        fmt = _partition_format(spec)
        return check_items(items, fmt, spec.paths) if fmt is not None else items

    def _descriptor(self, chunk: list[Item], index: int, first: int, key_value: dict | None = None) -> MiniBatch:
        payload: dict = {"items": [i.path for i in chunk]}
        if None in [i.mtime_ns for i in chunk]:  # a file not on the local disk
            payload["ukeys"] = [i.ukey for i in chunk]
            payload["sizes"] = [i.size for i in chunk]
        if key_value is not None:
            payload["partition_key_value"] = dict(key_value)
        return MiniBatch(kind=self.name, index=index, first_item=first, key=mini_batch_key(chunk, key_value),
                          count=len(chunk), payload=payload)

    def mini_batches_by_key(self, listing, spec) -> list[MiniBatch]:
        """ParallelRunStep's partition per folder: one MiniBatch per distinct combination of
        ``spec.partition_keys`` values read from the files' paths by ``spec.partition_format``,
        in sorted key order, each holding that combination's files in listing order (whatever
        their number: ``mini_batch_size`` does not apply). Raises ConfigError naming a key that
        is not a field of the format, DatasetError naming a file that does not match it."""
        fmt = _partition_format(spec)
        if fmt is None:
            raise ConfigError("config key 'partition_keys': a file dataset needs input.partition_format "
                              "to read the keys from its paths")
        fmt.check_keys(spec.partition_keys)
        batches: list[MiniBatch] = []
        first = 0
        for key_value, chunk in key_groups(listing, fmt, spec.paths, list(spec.partition_keys)):
            batches.append(self._descriptor(chunk, len(batches), first, key_value))
            first += len(chunk)
        return batches

    def mini_batches(self, listing, spec, log=print) -> list[MiniBatch]:
        """Consecutive runs of ``spec.mini_batch_size`` items (the last may be shorter), in
        listing order; with ``spec.partition_keys``, ``mini_batches_by_key``. Raises ValueError
        when ``mini_batch_size`` < 1."""
        if getattr(spec, "partition_keys", ()):
            return self.mini_batches_by_key(listing, spec)
        fmt = _partition_format(spec)
        if fmt is not None:
            listing = check_items(listing, fmt, spec.paths)
        size = spec.mini_batch_size
        if size < 1:
            raise ValueError(f"mini_batch_size must be >= 1, got {size}")
        batches: list[MiniBatch] = []
        chunk: list[Item] = []
        first = 0

        def flush():
            batches.append(self._descriptor(chunk, len(batches), first))

        for item in listing:
            chunk.append(item)
            if len(chunk) == size:
                flush()
                first += len(chunk)
                chunk = []
        if chunk:
            flush()
        return batches

    def materialise(self, descriptor: MiniBatch, read_options: dict, cache: Cache) -> list[str]:
        """The local paths of the mini-batch's files: local files as listed; other files
        downloaded once into ``cache.folder`` (``<folder>/<hash of URL and ukey>/<file name>``),
        up to ``cache.download_threads`` at a time (a thread pool; the filesystem object is shared,
        fsspec's async stores run every request on their own event loop), each written to a
        ``.part`` file and renamed, transient store errors (connection reset, 5xx, throttling)
        retried with backoff. A file that cannot be downloaded (deleted since the listing,
        unreadable) fails alone: the result is then a ``Materialised`` whose ``failed`` names it by
        URL; when every file fails, MaterialiseError. Only this mini-batch's files are fetched, so
        the runner's ``prefetch_bytes`` bound (checked per mini-batch) still holds."""
        names = descriptor.payload["items"]
        ukeys = descriptor.payload.get("ukeys") or [""] * len(names)
        paths: list[str] = []
        downloads: list[tuple[int, str, str]] = []  # (position, URL, target)
        for position, (name, ukey) in enumerate(zip(names, ukeys)):
            if is_local(name):
                paths.append(local_path(name))
                continue
            target = os.path.join(cache.download_folder(), download.local_name(name, ukey))
            paths.append(target)
            if not os.path.exists(target):
                downloads.append((position, name, target))
        failed = {}
        for position, error in download.fetch_all(downloads, cache).items():
            failed[position] = "DownloadError: input file " + storage_error(names[position], error,
                                                                            "cannot be downloaded")
            paths[position] = names[position]
        if failed and len(failed) == len(names):
            raise MaterialiseError(failed[min(failed)][len("DownloadError: "):])
        return Materialised(paths, failed) if failed else paths

    def release(self, materialised, cache: Cache) -> None:
        """Remove the downloaded copies of a mini-batch that is done (files under
        ``cache.folder``, with their folders)."""
        if cache.folder is None:
            return
        root = os.path.join(os.path.abspath(cache.folder), "")
        for path in materialised:
            if os.path.abspath(path).startswith(root):
                with contextlib.suppress(OSError):
                    os.unlink(path)
                with contextlib.suppress(OSError):
                    os.rmdir(os.path.dirname(path))

    def prefetch_bytes(self, descriptor: MiniBatch) -> int:
        """The bytes of the mini-batch's files that are not on the local disk (downloaded)."""
        return sum(descriptor.payload.get("sizes") or ())

    def item_identities(self, descriptor: MiniBatch) -> list[str | None]:
        """Per file, the hex SHA-256 of its ``Item.key_line`` (the line its mini-batch key
        hashes): a local file's path, absolute path, size and mtime_ns as ``os.stat`` gives them
        now (None when it cannot be stat'ed), another file's URL and ukey from the payload. One
        ``stat`` per local file; called only for mini-batches the store does not hold."""
        names = descriptor.payload["items"]
        ukeys = descriptor.payload.get("ukeys")
        identities: list[str | None] = []
        for position, name in enumerate(names):
            if ukeys is not None and not is_local(name):
                line = Item(path=name, size=0, ukey=ukeys[position]).key_line()
            else:
                try:
                    st = os.stat(local_path(name))
                except OSError:
                    identities.append(None)
                    continue
                line = Item(path=name, size=st.st_size, ukey="", mtime_ns=st.st_mtime_ns).key_line()
            identities.append(hashlib.sha256(line.encode("utf-8", "surrogateescape")).hexdigest())
        return identities

    def item_names(self, descriptor: MiniBatch) -> tuple[str, ...]:
        return tuple(descriptor.payload["items"])

    def describe(self, descriptor: MiniBatch) -> str:
        names = descriptor.payload["items"]
        if len(names) <= 1:
            return names[0] if names else "no files"
        return f"{names[0]} and {len(names) - 1} more file(s)"

    def describe_item(self, descriptor: MiniBatch, position: int) -> str:
        return descriptor.payload["items"][position]

    def cut_description(self, spec) -> str:
        """``mini_batch_size N``, or ``one mini-batch per value of k1, k2 (partition_format F)``."""
        if getattr(spec, "partition_keys", ()):
            return (f"one mini-batch per value of {', '.join(spec.partition_keys)} "
                    f"(partition_format {spec.partition_format!r})")
        return f"mini_batch_size {spec.mini_batch_size}"

    def partition_key_value(self, descriptor: MiniBatch) -> dict:
        return dict(descriptor.payload.get("partition_key_value") or {})

    def dataset(self, descriptor: MiniBatch, positions=None):
        """The files at ``positions`` (None: all) and the mini-batch's partition_key_value."""
        from snakebatch.infer.entry import MiniBatchDataset

        names = descriptor.payload["items"]
        chosen = names if positions is None else [names[p] for p in positions]
        return MiniBatchDataset(kind=self.name, files=tuple(chosen),
                                partition_key_value=self.partition_key_value(descriptor))
