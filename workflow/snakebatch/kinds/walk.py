"""Local dataset folders: walking them (links followed, each real folder once, Snakemake's own
entries skipped), telling a glob from a path, and a root's folder. Only ``os``, no fsspec: the
Items of a dataset (local and remote roots) are ``kinds.listing``'s."""

from __future__ import annotations

import os

from snakebatch.errors import DatasetError

GLOB_CHARS = "*?["


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


def folder_files(folder: str) -> tuple[list[str], bool]:
    """(paths, links): every file under ``folder`` as ``walk_folders`` finds them (links followed,
    each real folder once, in the same walk order, ``.snakemake*`` folders and
    ``.snakemake_timestamp`` skipped), sorted by path; ``links``: True when one of them is itself
    a symbolic link (so a file may be reached twice). One ``os.scandir`` per folder and no
    ``stat`` per file (its ``d_type`` tells a file from a folder; only a link is followed). Paths
    are ``os.path.join(folder, ...)`` as ``os.walk`` builds them. Raises DatasetError naming a
    folder that cannot be read."""
    seen: set[str] = set()
    files: list[str] = []
    links = False
    stack = [folder]
    while stack:
        dirpath = stack.pop()
        real = os.path.realpath(dirpath)
        if real in seen:
            continue
        seen.add(real)
        subfolders = []
        try:
            with os.scandir(dirpath) as entries:
                for entry in entries:
                    try:
                        is_dir = entry.is_dir()
                    except OSError:  # as os.walk: an entry that cannot be told is no folder
                        is_dir = False
                    if is_dir:
                        if not entry.name.startswith(".snakemake"):
                            subfolders.append(entry.path)
                    elif entry.name != ".snakemake_timestamp":
                        files.append(entry.path)
                        if not links and entry.is_symlink():
                            links = True
        except OSError as exc:
            raise DatasetError(f"input folder {dirpath!r} cannot be read: {exc.strerror}") from None
        subfolders.sort(reverse=True)  # popped in sorted order: os.walk's top-down order
        stack.extend(subfolders)
    files.sort()
    return files, links


def root_folders(paths: list[str] | tuple[str, ...]) -> list[str]:
    """Each root as Snakemake should see it: a folder or file as given, a glob as the folder
    before its first glob character (``data/**/*.png`` -> ``data``)."""
    roots = []
    for root in paths:
        if is_glob(root):
            root = os.path.dirname(root[: min(root.find(c) for c in GLOB_CHARS if c in root)]) or "."
        roots.append(os.path.normpath(root))
    return list(dict.fromkeys(roots))
