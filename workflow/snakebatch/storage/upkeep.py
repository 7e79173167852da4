"""Keeping the item index small: compaction of a fingerprint's index files, removal of the index
folders of old runner fingerprints (``StoreLayout``: ``minibatches/items/{fp32}/*.idx``; the
index itself is ``snakebatch.infer.store.ItemIndex``).

Every runner process appends to its own index file, so each rerun adds files and an item indexed
again adds a record. **Compaction** rewrites the quiet files of one fingerprint into one file
(``+compacted-{ns}.idx``, written to a temporary sibling, flushed, renamed into place) that keeps
one record per item, then removes the files it read. A file is **quiet** when nothing was appended
to it for ``quiet_s`` seconds (or it is itself a compacted file): a writer that is still running
is left alone. Should a writer append after all (it idled longer than ``quiet_s``), its lines since
the compaction read its file go to a file that is gone (``ItemIndex.add`` then opens a new one): a
cache loss, recomputed when next needed, never a wrong line. Of several records of one item the
one the reader would use is kept (the last in file-name order); all of them are lines the same
runner fingerprint produced for the same input file.

A fingerprint's folder is **old** when it is not the current fingerprint's and neither the folder
nor any file in it changed for ``older_than_s`` seconds (default a day). A run using a fingerprint
touches its folder when it opens the index and appends to it whenever it computes a mini-batch, so
an old folder belongs to no run in progress; removing it costs at most recomputation.

A compaction killed before its rename leaves its temporary file (``.tmp-+compacted-...``, never
read as an index file); the next compaction removes it.

Both run under ``StoreLayout.upkeep_lock`` (``storage.locks.FileLock``, taken only if free: one
process does the upkeep, the others go on).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time

from snakebatch.storage.atomic import atomic_open
from snakebatch.storage.layout import COMPACTED_PREFIX, INDEX_SUFFIX, StoreLayout
from snakebatch.storage.locks import FileLock

COMPACT_AFTER_FILES = 8  # a fingerprint's index is compacted once it has this many quiet files
QUIET_S = 300.0  # a file not appended to for this long belongs to no running writer
OLD_AFTER_S = 86400.0  # a folder of another fingerprint untouched for this long is removed
PASS_BYTES = 256 * 2 ** 20  # compaction holds about this much index text in memory at once
UPKEEP_STALE_S = 600.0  # the upkeep lock's holder refreshes it per file; silent this long: dead


def index_entries(handle):
    """``(identity, line)`` of each record of an open index file (text, ``surrogateescape``):
    ``{identity}\\t{line}\\n`` with a 64-hex-digit identity. A torn last line (no newline) and
    lines of another shape are skipped."""
    for line in handle:
        if line.endswith("\n") and line[64:65] == "\t":
            yield line[:64], line[65:-1]


def index_files(folder: str) -> list[os.DirEntry]:
    """The index files (``*.idx``) of ``folder`` in the order a reader applies them (by name:
    compacted files first); ``[]`` when the folder is missing."""
    try:
        return sorted((e for e in os.scandir(folder) if e.name.endswith(INDEX_SUFFIX)), key=lambda e: e.name)
    except OSError:
        return []


def _quiet(entries: list[os.DirEntry], quiet_s: float, now: float) -> list[os.DirEntry]:
    quiet = []
    for entry in entries:
        with contextlib.suppress(OSError):
            if entry.name.startswith(COMPACTED_PREFIX) or now - entry.stat().st_mtime > quiet_s:
                quiet.append(entry)
    return quiet


def compact_item_index(store_root: str, fingerprint: str, quiet_s: float = QUIET_S,
                       min_files: int = COMPACT_AFTER_FILES, now: float | None = None) -> list[str]:
    """Compact the index of ``fingerprint`` (hex) in the store at ``store_root`` when it holds at
    least ``min_files`` quiet files (see the module doc); returns the paths of the files merged
    (``[]``: nothing done, or another process holds the upkeep lock). Raises OSError when the
    compacted file cannot be written (a full disk: the files read are then kept)."""
    layout = StoreLayout(store_root)
    now = time.time() if now is None else now
    if len(_quiet(index_files(layout.item_index_dir(fingerprint)), quiet_s, now)) < min_files:
        return []
    lock = FileLock(layout.upkeep_lock, stale_after_s=UPKEEP_STALE_S)
    if not lock.try_acquire():
        return []
    try:
        _remove_dead_temporaries(layout.item_index_dir(fingerprint), now)
        sources = _quiet(index_files(layout.item_index_dir(fingerprint)), quiet_s, now)
        if len(sources) < min_files:
            return []
        paths = [e.path for e in sources]
        _merge(paths, layout.compacted_index_file(fingerprint, time.time_ns()), lock)
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        return paths
    finally:
        lock.release()


def _remove_dead_temporaries(folder: str, now: float) -> None:
    """Remove the temporary files (``.tmp-+compacted-...``, ``storage.atomic.atomic_open``) of
    compactions that were killed before their rename: under the upkeep lock, one older than
    UPKEEP_STALE_S belongs to no compaction in progress."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            if entry.name.startswith(".tmp-" + COMPACTED_PREFIX):
                with contextlib.suppress(OSError):
                    if now - entry.stat().st_mtime > UPKEEP_STALE_S:
                        os.unlink(entry.path)


def _merge(paths: list[str], target: str, lock: FileLock) -> None:
    """Write the last record per identity of ``paths`` (in order) to ``target``, in passes over
    slices of the identity space so memory stays near PASS_BYTES."""
    total = 0
    for path in paths:
        with contextlib.suppress(OSError):
            total += os.path.getsize(path)
    passes = min(16, 1 + total // PASS_BYTES)
    with atomic_open(target, "wb") as out:  # bytes: the records as the store appended them (surrogateescape)
        for part in range(passes):
            latest: dict[str, str] = {}
            for path in paths:
                lock.refresh()
                try:
                    with open(path, encoding="utf-8", errors="surrogateescape") as handle:
                        for identity, line in index_entries(handle):
                            if passes == 1 or ord(identity[0]) % passes == part:
                                latest[identity] = line
                except (OSError, ValueError):
                    continue
            out.writelines(f"{identity}\t{line}\n".encode("utf-8", "surrogateescape") for identity, line in latest.items())


def remove_old_item_indexes(store_root: str, current: str, older_than_s: float = OLD_AFTER_S,
                            now: float | None = None) -> list[str]:
    """Remove the index folders of runner fingerprints other than ``current`` (hex) that are old
    (see the module doc); returns their names (fingerprints' first 32 hex digits), sorted.
    ``[]`` when another process holds the upkeep lock."""
    layout = StoreLayout(store_root)
    now = time.time() if now is None else now
    keep = os.path.basename(layout.item_index_dir(current))
    try:
        folders = [e for e in os.scandir(layout.items_dir) if e.is_dir(follow_symlinks=False) and e.name != keep
                   and not e.name.startswith(".")]
    except OSError:
        return []
    old = [e for e in folders if now - _newest_change(e.path) > older_than_s]
    with contextlib.suppress(OSError):  # what a remover that died left half removed
        old += [e for e in os.scandir(layout.items_dir) if e.name.startswith(".removing-")]
    if not old:
        return []
    lock = FileLock(layout.upkeep_lock, stale_after_s=UPKEEP_STALE_S)
    if not lock.try_acquire():
        return []
    removed = []
    try:
        for entry in old:
            if entry.name.startswith(".removing-"):
                shutil.rmtree(entry.path, ignore_errors=True)
            elif now - _newest_change(entry.path) > older_than_s:  # again, under the lock
                gone = os.path.join(layout.items_dir, f".removing-{entry.name}-{os.getpid()}")
                with contextlib.suppress(OSError):
                    os.rename(entry.path, gone)  # vanishes at once for readers
                    shutil.rmtree(gone, ignore_errors=True)
                    removed.append(entry.name)
    finally:
        lock.release()
    return sorted(removed)


def _newest_change(folder: str) -> float:
    """The newest mtime of ``folder`` and the files in it (seconds; now when it cannot be read)."""
    try:
        newest = os.stat(folder).st_mtime
        for entry in os.scandir(folder):
            newest = max(newest, entry.stat(follow_symlinks=False).st_mtime)
        return newest
    except OSError:
        return time.time()


def touch_folder(folder: str) -> None:
    """Mark ``folder`` (a fingerprint's index folder) as in use now: its mtime is set to now."""
    with contextlib.suppress(OSError):
        os.utime(folder)
