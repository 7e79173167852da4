"""A dataset's Items: the files of its roots, in input order, each with its change identity.

Shared by every kind (``file``, ``tabular``). Local roots (plain paths, ``file://`` URLs) are
listed with ``os`` as ``kinds.walk`` walks them (folders recursive following links, each real
folder once, ``.snakemake*`` entries skipped, sorted by path, a file reached twice listed once, by
real path); other fsspec URLs with ``fs.find``/``fs.glob``, sorted, named by URL. Also the paths
Snakemake should watch for a root (``watched_paths``).
"""

from __future__ import annotations

import fnmatch
import glob
import os
import posixpath

from snakebatch.errors import DatasetError
from snakebatch.kinds.base import Item
from snakebatch.kinds.walk import GLOB_CHARS, folder_files, is_glob, root_folders, walk_folders
from snakebatch.storage.locations import change_identity, check_reachable, filesystem, is_local, local_path, storage_error


def _expand_local(given: str, root: str) -> tuple[list[str], bool]:
    """(files, twice): the files of the local root ``root`` (``given``: the root as configured,
    for messages), and whether one file may be among them twice (a glob's matches overlap, or a
    file is reached through a link; see ``walk.folder_files``)."""
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
    """The Items of the fsspec root ``given`` (a folder, glob or file URL), named by URL with the
    root's protocol, each with the store's change identity; ``seen``: URLs listed by earlier
    roots (skipped, and extended). Raises DatasetError naming the root when it cannot be reached
    or listed, does not exist or a glob matches nothing, naming the file when its identity
    cannot be read."""
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
        watched.extend(item.path for item in list_items(paths, pattern))
    except DatasetError:
        pass
    return list(dict.fromkeys(os.path.normpath(p) for p in watched))
