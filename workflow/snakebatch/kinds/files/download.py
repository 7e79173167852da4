"""Downloading the files of a ``file`` mini-batch that are not on the local disk (fsspec URLs)
into a worker's download folder: each through a ``.part`` file renamed when complete, transient
store errors retried, a few at a time on a thread pool.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
from concurrent.futures import ThreadPoolExecutor

from snakebatch.kinds.base import Cache
from snakebatch.storage.locations import filesystem, with_retries


def local_name(name: str, ukey: str) -> str:
    """Where the copy of ``name`` (version ``ukey``) lives in the download folder."""
    digest = hashlib.sha256(f"{name}\0{ukey}".encode("utf-8", "surrogateescape")).hexdigest()[:20]
    return os.path.join(digest, posixpath.basename(name) or "item")


def fetch(name: str, target: str, storage_options: dict) -> None:
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


def fetch_all(downloads, cache: Cache) -> dict[int, Exception]:
    """Run ``fetch`` for each (position, URL, target) of ``downloads``, at most
    ``cache.download_threads`` at a time; return {position: error} of those that failed (every
    download runs, whatever the others do)."""
    if not downloads:
        return {}
    errors: dict[int, Exception] = {}
    threads = max(1, min(cache.download_threads, len(downloads)))
    if threads == 1:
        for position, name, target in downloads:
            try:
                fetch(name, target, cache.storage_options)
            except Exception as exc:  # noqa: BLE001 - each store raises its own types
                errors[position] = exc
        return errors
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="snakebatch-download") as pool:
        futures = {pool.submit(fetch, name, target, cache.storage_options): position
                   for position, name, target in downloads}
        for future, position in futures.items():
            error = future.exception()
            if error is not None:
                errors[position] = error
    return errors
