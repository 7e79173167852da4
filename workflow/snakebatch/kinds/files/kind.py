"""The ``file`` kind: a mini-batch is a list of local file paths (ParallelRunStep's FileDataset).

Listing (``list_items``) is shared with the tabular kind. Local roots (plain paths, ``file://``
URLs) are listed with ``os`` exactly as ``snakebatch.kinds.files.walk`` does (folders recursive following
links, each real folder once, ``.snakemake*`` entries skipped, sorted by path, a file reached twice
listed once, by real path); other fsspec URLs with ``fs.find``/``fs.glob``, sorted, named by URL.
"""

from __future__ import annotations

import contextlib
import fnmatch
import glob
import hashlib
import os
import posixpath
from concurrent.futures import ThreadPoolExecutor

from snakebatch.kinds.files.walk import GLOB_CHARS, folder_files, is_glob
from snakebatch.errors import ConfigError, DatasetError
from snakebatch.partition.listing import fingerprint
from snakebatch.storage.locations import (change_identity, check_reachable, filesystem, is_local, local_path, storage_error,
                         with_retries)
from snakebatch.kinds.files.partition_format import PartitionFormat, check_items, key_groups
from snakebatch.kinds.base import Cache, Descriptor, InputKind, Item, Materialised, MaterialiseError, key_text


def _expand_local(given: str, root: str) -> tuple[list[str], bool]:
    """(files, twice): the files of the local root ``root`` (``given``: the root as configured,
    for messages), and whether one file may be among them twice (a glob's matches overlap, or a
    file is reached through a link; see ``datasets.folder_files``)."""
    if is_glob(root):
        files: list[str] = []
        for match in sorted(glob.glob(root, recursive=True)):
            files.extend(folder_files(match)[0] if os.path.isdir(match) else [match])
        if not files:
            raise DatasetError(f"input.path: glob {given!r} matched no files")
        return files, True
    if os.path.isdir(root):
        return folder_files(root)
    if os.path.isfile(root):
        return [root], False
    if os.path.exists(root):
        raise DatasetError(f"input.path: {given!r} is neither a file nor a folder")
    raise DatasetError(f"input.path: {given!r} does not exist")


def _local_items(given: str, pattern: str | None, inodes: dict | None):
    """The Items of the local root ``given``, one ``os.stat`` each (size and mtime_ns, the change
    identity). A file reached again (through a link, or by two roots) is listed once, at its
    first place, as before by real path; but ``os.path.realpath`` (an lstat per path component)
    runs only for paths whose (device, inode) was seen before (``inodes``: (dev, ino) -> real
    paths listed, None until a second path reaches it): hard links stay distinct files.
    ``inodes`` None: this is the only root, so only a root whose walk met a link, or a glob,
    keeps that record (a walk of real folders reaches each file once)."""
    paths, twice = _expand_local(given, local_path(given))
    if pattern is not None:
        match = fnmatch.fnmatchcase
        basename = os.path.basename
        paths = [p for p in paths if match(basename(p), pattern)]
    if inodes is None and twice:
        inodes = {}
    stat = os.stat
    for path in paths:
        try:
            st = stat(path)
        except OSError as exc:
            raise DatasetError(f"input file {path!r} cannot be read: {exc.strerror}") from None
        if inodes is not None:
            node = (st.st_dev, st.st_ino)
            if node in inodes:
                reals = inodes[node]
                if isinstance(reals, str):  # the first path's real path, computed on the first collision
                    reals = inodes[node] = {os.path.realpath(reals)}
                real = os.path.realpath(path)
                if real in reals:
                    continue
                reals.add(real)
            else:
                inodes[node] = path
        size = st.st_size
        mtime_ns = st.st_mtime_ns
        yield Item(path, size, f"{size}:{mtime_ns}", mtime_ns)  # locations.local_identity, inlined


def _remote_items(given: str, pattern: str | None, seen: set, storage_options: dict):
    try:
        check_reachable(given, storage_options)
    except ConnectionError as exc:
        raise DatasetError(f"input.path: {exc}") from None
    try:
        fs, root = filesystem(given, storage_options)
        if any(ch in root for ch in GLOB_CHARS) and not fs.exists(root):
            found: list[tuple[str, dict]] = []
            for match, info in sorted(fs.glob(root, detail=True).items()):
                if info.get("type") == "directory":
                    found.extend(sorted(fs.find(match, detail=True).items()))
                else:
                    found.append((match, info))
            if not found:
                raise DatasetError(f"input.path: glob {given!r} matched no files")
        elif fs.isdir(root):
            found = sorted(fs.find(root, detail=True).items())
        elif fs.isfile(root):
            found = [(root, fs.info(root))]
        else:
            raise DatasetError(f"input.path: {given!r} does not exist")
    except DatasetError:
        raise
    except Exception as exc:  # noqa: BLE001 - each store raises its own types (azure.core, botocore)
        raise DatasetError("input.path: " + storage_error(given, exc, "cannot be listed")) from None
    for path, info in found:
        if pattern is not None and not fnmatch.fnmatchcase(posixpath.basename(path), pattern):
            continue
        url = _url(given, fs, path)
        if url in seen:
            continue
        seen.add(url)
        try:
            ukey = change_identity(fs, path, info)
        except Exception as exc:  # noqa: BLE001
            raise DatasetError("input file " + storage_error(url, exc)) from None
        yield Item(path=url, size=int(info.get("size") or 0), ukey=ukey)


def _url(given: str, fs, path: str) -> str:
    """The URL of ``path`` (as ``fs`` names it) with the protocol the root ``given`` used
    (``az://`` stays ``az://``, though adlfs calls itself ``abfs``)."""
    if "://" in path:
        return path
    protocol = given.split("://", 1)[0]
    return f"{protocol}://{path}" if protocol else fs.unstrip_protocol(path)


def list_items(paths, pattern: str | None = None, storage_options: dict | None = None):
    """Iterate the Items of the roots ``paths`` (folder, glob, file; plain path, ``file://`` or
    other fsspec URL) in input order: roots in the order given, each root's files sorted by path,
    a file reached again listed once, at its first place. ``pattern``: keep files whose base name
    matches this glob (``fnmatch``), None = all. ``storage_options``: fsspec options for URLs.
    Raises DatasetError naming the root when it does not exist or a glob matches nothing, naming
    the file when it cannot be read, and, once every root is listed, when no file was found."""
    seen: set[str] = set()
    inodes: dict | None = {} if len(paths) > 1 else None
    any_found = False
    for root in paths:
        if is_local(root):
            items = _local_items(root, pattern, inodes)
        else:
            items = _remote_items(root, pattern, seen, storage_options or {})
        for item in items:
            any_found = True
            yield item
    if not any_found:
        where = ", ".join(repr(p) for p in paths)
        suffix = f" matching pattern {pattern!r}" if pattern else ""
        raise DatasetError(f"input.path: no files{suffix} under {where}: the dataset is empty")


def _download_name(name: str, ukey: str) -> str:
    """Where the copy of ``name`` (version ``ukey``) lives in the download folder."""
    digest = hashlib.sha256(f"{name}\0{ukey}".encode("utf-8", "surrogateescape")).hexdigest()[:20]
    return os.path.join(digest, posixpath.basename(name) or "item")


def _download(name: str, target: str, storage_options: dict) -> None:
    """Download the object ``name`` to ``target`` (through ``target.part``, renamed when
    complete; a failed try leaves no partial file). Transient errors are retried."""
    fs, path = filesystem(name, storage_options)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    partial = target + ".part"
    try:
        with_retries(lambda: fs.get_file(path, partial))
        os.replace(partial, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise


def _download_all(downloads, cache: Cache) -> dict[int, Exception]:
    """Run ``_download`` for each (position, URL, target) of ``downloads``, at most
    ``cache.download_threads`` at a time; return {position: error} of those that failed (every
    download runs, whatever the others do)."""
    if not downloads:
        return {}
    errors: dict[int, Exception] = {}
    threads = max(1, min(cache.download_threads, len(downloads)))
    if threads == 1:
        for position, name, target in downloads:
            try:
                _download(name, target, cache.storage_options)
            except Exception as exc:  # noqa: BLE001 - each store raises its own types
                errors[position] = exc
        return errors
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="snakebatch-download") as pool:
        futures = {pool.submit(_download, name, target, cache.storage_options): position
                   for position, name, target in downloads}
        for future, position in futures.items():
            error = future.exception()
            if error is not None:
                errors[position] = error
    return errors


def mini_batch_key(items, partition_key_value: dict | None = None) -> str:
    """Hex SHA-256 over the items' key lines (see ``Item.key_line``), each followed by a newline:
    for local files the same digest as ``partition.mini_batch_key`` (path, absolute path, size,
    mtime_ns). A ``partition_key_value`` (run() sees it) goes into the digest too. The lines are
    joined and encoded once per mini-batch."""
    digest = hashlib.sha256(key_text(list(items)).encode("utf-8", "surrogateescape"))
    if partition_key_value:
        digest.update(("\0partition_key_value\0" + repr(sorted(partition_key_value.items()))).encode())
    return digest.hexdigest()


def _partition_format(spec) -> PartitionFormat | None:
    text = getattr(spec, "partition_format", None)
    return PartitionFormat.parse(text) if text else None


def listing_fingerprint(items) -> str:
    """Hex SHA-256 of the listing file of ``items`` (Items, in order; ``snakebatch.partition.listing``): it
    changes when a file is added, removed or renamed or changes size, mtime or ukey."""
    return fingerprint(items)


class FileKind(InputKind):
    """``input.type: file``: ``mini_batch_size`` files per mini-batch, ``run()`` gets their paths.

    Payload of a Descriptor: ``items`` (names, as Item.path) and, when any file is not on the
    local disk, ``ukeys`` (their change identities, which name the downloaded copies);
    ``partition_key_value`` for a mini-batch of one ``partition_keys`` combination.

    With ``input.partition_format`` (``spec.partition_format``) every listed file must match it
    (see ``snakebatch.kinds.files.partition_format``); with ``partition_keys`` too, a mini-batch is every file
    of one key combination (``mini_batches_by_key``) instead of ``mini_batch_size`` files."""

    name = "file"
    item_unit = "files"

    def list(self, spec):
        """The dataset's Items (``list_items``); with ``spec.partition_format``, a file that does
        not match it raises DatasetError naming the file."""
        items = list_items(spec.paths, spec.pattern, getattr(spec, "storage_options", None))
        fmt = _partition_format(spec)
        return check_items(items, fmt, spec.paths) if fmt is not None else items

    def _descriptor(self, chunk: list[Item], index: int, first: int, key_value: dict | None = None) -> Descriptor:
        payload: dict = {"items": [i.path for i in chunk]}
        if None in [i.mtime_ns for i in chunk]:  # a file not on the local disk
            payload["ukeys"] = [i.ukey for i in chunk]
            payload["sizes"] = [i.size for i in chunk]
        if key_value is not None:
            payload["partition_key_value"] = dict(key_value)
        return Descriptor(kind=self.name, index=index, first_item=first, key=mini_batch_key(chunk, key_value),
                          count=len(chunk), payload=payload)

    def mini_batches_by_key(self, listing, spec) -> list[Descriptor]:
        """ParallelRunStep's partition per folder: one Descriptor per distinct combination of
        ``spec.partition_keys`` values read from the files' paths by ``spec.partition_format``,
        in sorted key order, each holding that combination's files in listing order (whatever
        their number: ``mini_batch_size`` does not apply). Raises ConfigError naming a key that
        is not a field of the format, DatasetError naming a file that does not match it."""
        fmt = _partition_format(spec)
        if fmt is None:
            raise ConfigError("config key 'partition_keys': a file dataset needs input.partition_format "
                              "to read the keys from its paths")
        fmt.check_keys(spec.partition_keys)
        batches: list[Descriptor] = []
        first = 0
        for key_value, chunk in key_groups(listing, fmt, spec.paths, list(spec.partition_keys)):
            batches.append(self._descriptor(chunk, len(batches), first, key_value))
            first += len(chunk)
        return batches

    def mini_batches(self, listing, spec, log=print) -> list[Descriptor]:
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
        batches: list[Descriptor] = []
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

    def materialise(self, descriptor: Descriptor, read_options: dict, cache: Cache) -> list[str]:
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
            target = os.path.join(cache.download_folder(), _download_name(name, ukey))
            paths.append(target)
            if not os.path.exists(target):
                downloads.append((position, name, target))
        failed = {}
        for position, error in _download_all(downloads, cache).items():
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

    def prefetch_bytes(self, descriptor: Descriptor) -> int:
        """The bytes of the mini-batch's files that are not on the local disk (downloaded)."""
        return sum(descriptor.payload.get("sizes") or ())

    def item_identities(self, descriptor: Descriptor) -> list[str | None]:
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

    def item_names(self, descriptor: Descriptor) -> tuple[str, ...]:
        return tuple(descriptor.payload["items"])

    def describe(self, descriptor: Descriptor) -> str:
        names = descriptor.payload["items"]
        if len(names) <= 1:
            return names[0] if names else "no files"
        return f"{names[0]} and {len(names) - 1} more file(s)"

    def describe_item(self, descriptor: Descriptor, position: int) -> str:
        return descriptor.payload["items"][position]

    def cut_description(self, spec) -> str:
        """``mini_batch_size N``, or ``one mini-batch per value of k1, k2 (partition_format F)``."""
        if getattr(spec, "partition_keys", ()):
            return (f"one mini-batch per value of {', '.join(spec.partition_keys)} "
                    f"(partition_format {spec.partition_format!r})")
        return f"mini_batch_size {spec.mini_batch_size}"

    def partition_key_value(self, descriptor: Descriptor) -> dict:
        return dict(descriptor.payload.get("partition_key_value") or {})

    def dataset(self, descriptor: Descriptor, positions=None):
        """The files at ``positions`` (None: all) and the mini-batch's partition_key_value."""
        from snakebatch.infer.entry import MiniBatchDataset

        names = descriptor.payload["items"]
        chosen = names if positions is None else [names[p] for p in positions]
        return MiniBatchDataset(kind=self.name, files=tuple(chosen),
                                partition_key_value=self.partition_key_value(descriptor))
