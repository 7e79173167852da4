"""Partition a file dataset by its folder structure (ParallelRunStep's partition per folder).

ParallelRunStep's ``Dataset.File.from_files(path, partition_format=...)`` reads attributes of a
file from its path: ``partition_format="dataset_partition_test/{user}/{season}/{genres}.wav"``
gives ``dataset_partition_test/user1/winter/disco.wav`` the values ``user=user1``,
``season=winter``, ``genres=disco``; ``ParallelRunConfig(partition_keys=['user', 'genres'])`` then
makes one mini-batch per distinct (user, genres) combination. Here ``input.partition_format`` is
matched against each file's path relative to its dataset root (the folder given as
``input.path``; for a glob, the folder before its first glob character; for a single file, its
folder). A field matches one path component or part of one (no ``/``).

Pure functions, no I/O: ``PartitionFormat.parse`` / ``.values``, ``relative_path`` and
``key_groups`` (the grouping, apart from the file kind's ``mini_batch_size`` cutting).
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass

from snakebatch.errors import ConfigError, DatasetError
from snakebatch.kinds.walk import GLOB_CHARS

_FIELD = re.compile(r"\{([^{}]*)\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class PartitionFormat:
    """A parsed ``input.partition_format``: ``text`` as configured, ``fields`` its ``{name}``
    fields in order of appearance, ``pattern`` the regular expression a relative path must match
    in full."""

    text: str
    fields: tuple[str, ...]
    pattern: re.Pattern

    @classmethod
    def parse(cls, text: str) -> PartitionFormat:
        """Parse ``text`` (``"{user}/{season}/{genres}.wav"``). Raises ConfigError naming
        ``input.partition_format`` for no field, a field that is not a Python-style name, a field
        twice, a datetime field (``{date:yyyy/MM/dd}``, not supported) or a stray brace."""
        key = "config key 'input.partition_format'"
        fields: list[str] = []
        regex, last = [], 0
        for match in _FIELD.finditer(text):
            literal = text[last:match.start()]
            if "{" in literal or "}" in literal:
                raise ConfigError(f"{key}: unbalanced brace in {text!r}")
            regex.append(re.escape(literal))
            name = match.group(1)
            if ":" in name:
                raise ConfigError(f"{key}: field {{{name}}} in {text!r}: datetime fields (ParallelRunStep's "
                                  "{name:yyyy/MM/dd}) are not supported; use plain {name} fields")
            if not _NAME.match(name):
                raise ConfigError(f"{key}: field {{{name}}} in {text!r} is not a name (letters, digits, '_')")
            if name in fields:
                raise ConfigError(f"{key}: field {{{name}}} appears twice in {text!r}")
            fields.append(name)
            regex.append(f"(?P<{name}>[^/]+?)")
            last = match.end()
        tail = text[last:]
        if "{" in tail or "}" in tail:
            raise ConfigError(f"{key}: unbalanced brace in {text!r}")
        regex.append(re.escape(tail))
        if not fields:
            raise ConfigError(f"{key}: {text!r} has no {{name}} field")
        return cls(text=text, fields=tuple(fields), pattern=re.compile("".join(regex)))

    def values(self, relative: str) -> dict[str, str] | None:
        """The fields' values in ``relative`` (a ``/``-separated path), None when it does not
        match the format in full."""
        match = self.pattern.fullmatch(relative)
        return None if match is None else {name: match.group(name) for name in self.fields}

    def check_keys(self, partition_keys) -> None:
        """Raise ConfigError naming ``partition_keys`` when a key is not a field of the format."""
        for name in partition_keys:
            if name not in self.fields:
                raise ConfigError(f"config key 'partition_keys': {name!r} is not a field of input.partition_format "
                                  f"{self.text!r} (fields: {', '.join(self.fields)})")


def dataset_root(root: str) -> str:
    """The folder a root's files are relative to: a glob's folder before its first glob
    character, a file's folder, a folder itself (no trailing ``/``; a URL keeps its protocol)."""
    cut = [root.find(c) for c in GLOB_CHARS if c in root]
    if cut:
        return (posixpath.dirname(root[:min(cut)]) if "://" in root else os.path.dirname(root[:min(cut)])) or "."
    if "://" in root:
        return root.rstrip("/")
    if os.path.isfile(root):
        return os.path.dirname(root) or "."
    return os.path.normpath(root)


def relative_path(path: str, roots) -> str | None:
    """``path`` (an Item.path) relative to the first of ``roots`` (as configured) it lies under,
    ``/``-separated; None when it lies under none."""
    for root in roots:
        base = dataset_root(root)
        if "://" in path:
            if path.startswith(base + "/"):
                return path[len(base) + 1:]
            continue
        norm = os.path.normpath(path)
        if base == "." and not os.path.isabs(norm) and not norm.startswith(".."):
            return norm.replace(os.sep, "/")
        if norm.startswith(os.path.join(base, "")):
            return norm[len(os.path.join(base, "")):].replace(os.sep, "/")
    return None


def item_values(fmt: PartitionFormat, path: str, roots) -> dict[str, str]:
    """The format's values of the file ``path``. Raises DatasetError naming the file, its relative
    path and the format when it does not match."""
    relative = relative_path(path, roots)
    values = None if relative is None else fmt.values(relative)
    if values is None:
        shown = relative if relative is not None else path
        raise DatasetError(f"input file {path!r} does not match input.partition_format {fmt.text!r} "
                           f"(its path relative to the dataset root is {shown!r})")
    return values


def check_items(items, fmt: PartitionFormat, roots):
    """Iterate ``items`` unchanged, raising DatasetError (see ``item_values``) at the first file
    that does not match ``fmt``."""
    for item in items:
        item_values(fmt, item.path, roots)
        yield item


def key_groups(items, fmt: PartitionFormat, roots, partition_keys) -> list[tuple[dict, list]]:
    """One (partition_key_value, [Item, ...]) per distinct combination of ``partition_keys``
    values, sorted by those values (as strings, in the order of ``partition_keys``); each group's
    files in listing order. ``partition_key_value`` maps each key to its value (str), keys in the
    order of ``partition_keys``. Raises DatasetError naming the first file that does not match."""
    groups: dict[tuple[str, ...], list] = {}
    for item in items:
        values = item_values(fmt, item.path, roots)
        groups.setdefault(tuple(values[k] for k in partition_keys), []).append(item)
    return [(dict(zip(partition_keys, combo)), groups[combo]) for combo in sorted(groups)]
