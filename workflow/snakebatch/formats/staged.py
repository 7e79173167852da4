"""A file written in steps and published at once: ``StagedFile``.

gather writes the merged file and its reports while it reads the shard files, and decides only at
the end which of them become visible (a run over its error threshold publishes its reports, never
its merged file). ``StagedFile`` is ``storage.atomic.atomic_open`` with that decision made by a
call (``commit`` or ``discard``) instead of by the end of a ``with`` block.
"""

from __future__ import annotations

from snakebatch.storage.atomic import atomic_open


class _Discarded(Exception):
    """Thrown into ``atomic_open`` to make it drop its temporary file."""


class StagedFile:
    """A temporary sibling of ``path`` (``.tmp-{name}-*``, parent folders created) open for
    writing as ``handle`` (text, UTF-8, or binary with ``mode="wb"``). ``commit()`` flushes it
    to disk and renames it to ``path``; ``discard()`` removes it, leaving ``path`` as it was. Both
    are no-ops after either ran. OSError (a full disk) comes from writes and ``commit``."""

    def __init__(self, path: str, mode: str = "w") -> None:
        self.path = path
        self._context = atomic_open(path, mode)
        self.handle = self._context.__enter__()
        self._open = True

    def write(self, text) -> None:
        """Append ``text`` (str, or bytes in binary mode)."""
        self.handle.write(text)

    def commit(self) -> None:
        if self._open:
            self._open = False
            self._context.__exit__(None, None, None)

    def discard(self) -> None:
        if self._open:
            self._open = False
            self._context.__exit__(_Discarded, _Discarded(), None)
