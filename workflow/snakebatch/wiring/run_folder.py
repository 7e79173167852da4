"""The run folder ``results/{run}/`` must be usable before a run starts jobs.

A file where the folder should be, a folder that cannot be written (a read-only mount) or a full
disk is reported as one line naming the path and the OS cause, as the stages' own write errors are
(``storage.atomic.describe_os_error``), instead of a Python exception from the rule files.
"""

from __future__ import annotations

import contextlib
import errno
import os

from snakemake.exceptions import WorkflowError

from snakebatch.storage.atomic import describe_os_error

PROBE_BYTES = 4096  # one page: a full disk refuses it at the write or at fsync


def unusable_folder_error(root: str, exc: OSError, path: str) -> WorkflowError:
    """The one-line WorkflowError for ``exc``, raised while the run folder ``root`` was prepared;
    ``path``: the file written when ``exc`` names none (a full disk's write names no file)."""
    if not exc.filename:
        exc = OSError(exc.errno, exc.strerror or str(exc), path)
    return WorkflowError(f"snakebatch: the results folder {root}/ cannot be used: {describe_os_error(exc)}")


@contextlib.contextmanager
def run_folder_errors(root: str, path: str | None = None):
    """Turn an OSError raised inside the block (writing under the run folder ``root``) into
    ``unusable_folder_error``. Raises WorkflowError."""
    try:
        yield
    except OSError as exc:
        raise unusable_folder_error(root, exc, path or root) from None


def check_run_folder(root: str) -> None:
    """Make the run folder ``root`` (``results/{run}``) and write, fsync and remove a small probe
    file in it, so a run that could not write its results fails before any job starts. Raises
    WorkflowError (``snakebatch: the results folder results/r/ cannot be used: cannot write
    'results/r': Not a directory (errno 20)``; ENOSPC adds what to do)."""
    probe = os.path.join(root, f".tmp-probe-{os.getpid()}")
    try:
        if os.path.lexists(root) and not os.path.isdir(root):
            raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), root)
        os.makedirs(root, exist_ok=True)
    except OSError as exc:
        raise unusable_folder_error(root, exc, root) from None
    try:
        _write_probe(probe)
    except OSError as exc:  # named as this run sees the probe (a full disk's write names no file)
        raise unusable_folder_error(root, OSError(exc.errno, exc.strerror or str(exc), probe), probe) from None


def _write_probe(probe: str) -> None:
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"\0" * PROBE_BYTES)
            os.fsync(fd)
        finally:
            os.close(fd)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(probe)
