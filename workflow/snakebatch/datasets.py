"""List a file dataset: folders (recursive), globs, single files or a list of these.

The listing is sorted and deterministic: roots in the order given, files inside a root sorted by
path. A file reached through two roots is listed once, at its first place.
"""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import os
from dataclasses import dataclass

from .errors import DatasetError

GLOB_CHARS = "*?["


@dataclass(frozen=True)
class FileItem:
    """One input file: ``path`` as listed (relative to the working directory when the root was),
    ``size`` in bytes, ``mtime_ns`` modification time in nanoseconds (for reuse fingerprints)."""

    path: str
    size: int
    mtime_ns: int


def is_glob(path: str) -> bool:
    """True when ``path`` holds a glob character (``*``, ``?`` or ``[``) and is not an existing
    file or folder (a folder named ``s[1]`` is taken literally)."""
    return any(ch in path for ch in GLOB_CHARS) and not os.path.lexists(path)


def _raise_unreadable(error: OSError) -> None:
    raise DatasetError(f"input folder {error.filename!r} cannot be read: {error.strerror}")


def walk_folders(folder: str):
    """``os.walk(folder)`` following links, sorted, each real folder once (a symlink loop is
    walked once, not forever), skipping Snakemake's own ``.snakemake*`` entries. Yields
    (dirpath, dirnames, filenames). Raises DatasetError naming a folder that cannot be read."""
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True, onerror=_raise_unreadable):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".snakemake"))
        yield dirpath, dirnames, sorted(f for f in filenames if f != ".snakemake_timestamp")


def _walk(folder: str) -> list[str]:
    found = []
    for dirpath, _, filenames in walk_folders(folder):
        found.extend(os.path.join(dirpath, name) for name in filenames)
    return sorted(found)


def _expand_root(root: str) -> list[str]:
    if is_glob(root):
        matches = sorted(glob.glob(root, recursive=True))
        files: list[str] = []
        for match in matches:
            files.extend(_walk(match) if os.path.isdir(match) else [match])
        if not files:
            raise DatasetError(f"input.path: glob {root!r} matched no files")
        return files
    if os.path.isdir(root):
        return _walk(root)
    if os.path.isfile(root):
        return [root]
    if os.path.exists(root):
        raise DatasetError(f"input.path: {root!r} is neither a file nor a folder")
    raise DatasetError(f"input.path: {root!r} does not exist")


def list_files(paths: list[str] | tuple[str, ...], pattern: str | None = None) -> list[FileItem]:
    """List the files of a file dataset in deterministic order.

    ``paths``: roots (folder, glob, file). ``pattern``: keep files whose base name matches this
    glob (``fnmatch``), None = all. Raises DatasetError naming the root when a root does not exist or
    a glob matches nothing, and when no file is left (an empty dataset is an error, as in
    ParallelRunStep) or a file cannot be read (stat fails).
    """
    seen: set[str] = set()
    items: list[FileItem] = []
    for root in paths:
        for path in _expand_root(root):
            if pattern is not None and not fnmatch.fnmatchcase(os.path.basename(path), pattern):
                continue
            key = os.path.realpath(path)
            if key in seen:
                continue
            seen.add(key)
            try:
                st = os.stat(path)
            except OSError as exc:
                raise DatasetError(f"input file {path!r} cannot be read: {exc.strerror}") from None
            items.append(FileItem(path=path, size=st.st_size, mtime_ns=st.st_mtime_ns))
    if not items:
        where = ", ".join(repr(p) for p in paths)
        suffix = f" matching pattern {pattern!r}" if pattern else ""
        raise DatasetError(f"input.path: no files{suffix} under {where}: the dataset is empty")
    return items


def listing_fingerprint(items: list[FileItem]) -> str:
    """Hex SHA-256 over every item's path, size and mtime_ns, in order: it changes when a file
    is added, removed, renamed or rewritten, even with an older mtime (``cp -p``, ``rsync -a``)."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(f"{item.path}\0{item.size}\0{item.mtime_ns}\n".encode())
    return digest.hexdigest()


def root_folders(paths: list[str] | tuple[str, ...]) -> list[str]:
    """Each root as Snakemake should see it: a folder or file as given, a glob as the folder
    before its first glob character (``data/**/*.png`` -> ``data``)."""
    roots = []
    for root in paths:
        if is_glob(root):
            root = os.path.dirname(root[: min(root.find(c) for c in GLOB_CHARS if c in root)]) or "."
        roots.append(os.path.normpath(root))
    return list(dict.fromkeys(roots))


def watched_paths(paths: list[str] | tuple[str, ...], pattern: str | None = None) -> list[str]:
    """The paths whose modification times tell Snakemake that files changed (used for models and
    side inputs, whose folders Snakemake would otherwise judge by the folder's own mtime only).

    Returns every root (glob: its folder, see ``root_folders``), every sub-folder, and every
    matching file. A root that does not exist yet is returned as is, so a rule that produces it
    (the demo) is found. Never raises: an unreadable folder or empty root adds nothing.
    """
    watched: list[str] = []
    for base in root_folders(paths):
        watched.append(base)
        if os.path.isdir(base):
            try:
                for dirpath, dirnames, _ in walk_folders(base):
                    watched.extend(os.path.join(dirpath, d) for d in dirnames)
            except DatasetError:
                pass
    try:
        watched.extend(item.path for item in list_files(paths, pattern))
    except DatasetError:
        pass
    return list(dict.fromkeys(os.path.normpath(p) for p in watched))
