"""Local dataset folders: walking them (links followed, each real folder once, Snakemake's own
entries skipped), telling a glob from a path, and the paths Snakemake should watch. The listing
itself is the input kinds' (``kinds.files.list_items``)."""

from __future__ import annotations

import os

from .errors import DatasetError

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
    from .kinds.files import list_items

    try:
        watched.extend(item.path for item in list_items(paths, pattern))
    except DatasetError:
        pass
    return list(dict.fromkeys(os.path.normpath(p) for p in watched))
