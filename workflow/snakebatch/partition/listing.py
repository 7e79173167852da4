"""The dataset listing file: the Items of a listing (``kinds.Item``), as the main snakemake process
hands them to the partition job, and the fingerprint the listing is named by.

Format: for each Item, in input order, four fields, each ended by a NUL byte (``find -print0``'s
convention: a path holds any byte but NUL, so a name with a newline needs no escape): ``path``,
``size`` (decimal), ``mtime_ns`` (decimal; empty for a file that is not on the local disk) and
``ukey``; the text is UTF-8 with ``surrogateescape``, so a name whose bytes are not UTF-8 reads
back as the same ``str`` (the bytes Python decoded it from). A million local files take about
70 bytes each, and are written and read with a few calls per 65,536 files instead of a JSON
document per file. The fingerprint of a listing is the hex SHA-256 of these bytes, so a listing
file is named by the digest of its own content.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import itertools

from snakebatch.errors import DatasetError
from snakebatch.kinds.base import Item
from snakebatch.storage.atomic import atomic_open

#: Items encoded (or decoded) at a time: one join, one encode, one hash update per chunk
CHUNK_ITEMS = 65_536
#: bytes read at a time by ``iter_listing``
READ_BYTES = 1 << 22
_FIELDS = 4


@contextlib.contextmanager
def gc_paused():
    """Pause Python's cyclic garbage collector for the block (restored as it was, also on an
    error). Listing and cutting a million files creates millions of small objects that hold no
    cycles; each collection would walk all of them again (about half the time of a listing)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _check_nul(chunk: list[Item], text: str) -> None:
    """Raise DatasetError naming the first Item of ``chunk`` whose path or ukey holds a NUL
    character, when ``text`` (their records) holds more NULs than the field ends."""
    if text.count("\0") == _FIELDS * len(chunk):
        return
    for item in chunk:
        if "\0" in item.path or "\0" in item.ukey:
            raise DatasetError(f"input file {item.path!r}: a NUL character in its name or change identity "
                               f"({item.ukey!r}) cannot be listed")


def encode_chunks(items):
    """Iterate the bytes of the listing of ``items`` (Items, in order), ``CHUNK_ITEMS`` Items at a
    time (their concatenation is the file). Raises DatasetError naming an Item whose path or
    ukey holds a NUL character."""
    iterator = iter(items)
    while True:
        chunk = list(itertools.islice(iterator, CHUNK_ITEMS))
        if not chunk:
            return
        text = "".join([f"{i.path}\0{i.size}\0{'' if i.mtime_ns is None else i.mtime_ns}\0{i.ukey}\0" for i in chunk])
        _check_nul(chunk, text)
        yield text.encode("utf-8", "surrogateescape")


def encode(items) -> tuple[str, list[bytes]]:
    """(fingerprint, chunks): the hex SHA-256 of the listing of ``items`` and its bytes as
    ``encode_chunks`` gives them (kept, so a caller can write them once it knows the name)."""
    digest = hashlib.sha256()
    chunks = []
    for chunk in encode_chunks(items):
        digest.update(chunk)
        chunks.append(chunk)
    return digest.hexdigest(), chunks


def fingerprint(items) -> str:
    """The hex SHA-256 of the listing of ``items`` (Items, in order), without keeping its bytes:
    it changes when a file is added, removed, renamed, or changes size, mtime or ukey."""
    digest = hashlib.sha256()
    for chunk in encode_chunks(items):
        digest.update(chunk)
    return digest.hexdigest()


def write_chunks(path: str, chunks) -> None:
    """Write the listing bytes ``chunks`` (from ``encode``) to ``path`` atomically (temporary
    file, fsync, rename; parent folders made)."""
    with atomic_open(path, "wb") as handle:
        for chunk in chunks:
            handle.write(chunk)


def write_listing(path: str, items) -> str:
    """Write the listing of ``items`` (Items, in order) to ``path`` atomically; return its
    fingerprint. Raises DatasetError as ``encode_chunks`` does (nothing is written then)."""
    digest = hashlib.sha256()
    with atomic_open(path, "wb") as handle:
        for chunk in encode_chunks(items):
            digest.update(chunk)
            handle.write(chunk)
    return digest.hexdigest()


def _items(fields: list[str]):
    it = iter(fields)
    for path, size, mtime_ns, ukey in zip(it, it, it, it):
        yield Item(path, int(size), ukey, int(mtime_ns) if mtime_ns else None)


def iter_listing(path: str, block_bytes: int = READ_BYTES):
    """Iterate the Items of the listing file ``path`` (``write_listing``'s format), reading
    ``block_bytes`` at a time (memory: the Items the caller keeps, not the file). Raises
    DatasetError naming the file when it cannot be read or is not a whole listing."""
    try:
        with open(path, "rb") as handle:
            tail = b""
            pending: list[str] = []
            while True:
                block = handle.read(block_bytes)
                if not block:
                    break
                data = tail + block
                cut = data.rfind(b"\0") + 1  # a field ends at a NUL, never inside a UTF-8 sequence
                tail = data[cut:]
                if not cut:
                    continue
                fields = data[:cut].decode("utf-8", "surrogateescape").split("\0")
                fields.pop()  # after the last NUL: nothing
                if pending:
                    fields[:0] = pending
                whole = len(fields) - len(fields) % _FIELDS
                pending = fields[whole:]
                del fields[whole:]
                yield from _items(fields)
            if tail or pending:
                raise ValueError(f"it ends inside a record ({len(pending)} field(s) and {len(tail)} byte(s) left)")
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read the dataset listing {path!r}: {exc}") from None


def read_listing(path: str) -> list[Item]:
    """The Items of the listing file ``path`` (``iter_listing``), as a list."""
    return list(iter_listing(path))

