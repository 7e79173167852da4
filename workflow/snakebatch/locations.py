"""Where data lives: plain local paths, ``file://`` URLs and other fsspec URLs.

A *location* is what the config gives (``input.path``, ``models``, ``side_inputs``): a plain path
(relative to the working directory or absolute), a ``file://`` URL, or an fsspec URL such as
``s3://bucket/x``. Local locations are read with ``os`` (exact, fast); the others through fsspec.
"""

from __future__ import annotations

FILE_SCHEME = "file://"
# info() keys that name a version of an object's content, in order of preference
IDENTITY_KEYS = ("ETag", "etag", "version_id", "VersionId", "generation")


def is_url(location: str) -> bool:
    """True for anything with ``scheme://`` (``file://`` included)."""
    return "://" in location


def is_local(location: str) -> bool:
    """True for a plain path or a ``file://`` URL."""
    return not is_url(location) or location.startswith(FILE_SCHEME)


def local_path(location: str) -> str:
    """The local path of a plain path (itself, unchanged) or of a ``file://`` URL
    (``file:///data/x`` -> ``/data/x``, ``file://data/x`` -> ``data/x``: relative stays relative,
    so a run sees the same item names as with the plain path). Raises ValueError for other URLs."""
    if not is_url(location):
        return location
    if location.startswith(FILE_SCHEME):
        return location[len(FILE_SCHEME):] or "."
    raise ValueError(f"{location!r} is not a local path or file:// URL")


def filesystem(location: str, storage_options: dict | None = None):
    """(fsspec filesystem, path inside it) of a non-local URL; (None, local path) of a local one."""
    if is_local(location):
        return None, local_path(location)
    from fsspec.core import url_to_fs

    return url_to_fs(location, **(storage_options or {}))


def change_identity(fs, path: str, info: dict | None = None) -> str:
    """The change identity (``ukey``) of the file ``path`` of the fsspec filesystem ``fs``: the
    store's own version of the content (``ETag``, ``version_id``, ``generation``, from ``info``
    when given, else ``fs.info``), else ``fs.ukey(path)`` (a hash of the file's properties)."""
    info = info if info is not None else fs.info(path)
    for key in IDENTITY_KEYS:
        value = info.get(key)
        if value:
            return f"{key.lower()}:{str(value).strip(chr(34))}"
    return "ukey:" + str(fs.ukey(path))


def local_identity(size: int, mtime_ns: int) -> str:
    """The change identity of a local file: its size and modification time in nanoseconds."""
    return f"{size}:{mtime_ns}"

