"""Durable local writes: every file snakebatch produces is written to a temporary file in the same
folder, flushed to disk and renamed over the target, so a reader sees the old file or the new one,
never a torn one."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from typing import IO
from collections.abc import Iterator


def _file_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


FILE_MODE = _file_mode()  # what open() would give: mkstemp's 0600 would hide results from others


def temp_prefix(path: str | os.PathLike) -> str:
    """The base name every temporary sibling of ``path`` this process writes starts with:
    ``.tmp-{name}-p{pid}-`` (the writer's process id, so ``remove_stale_temps`` can tell a killed
    writer's leftovers from a live writer's file)."""
    return f".tmp-{os.path.basename(os.fspath(path))}-p{os.getpid()}-"


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary sibling of ``path`` for writing; rename it to ``path`` on success.

    ``mode`` is ``"w"`` (text, ``encoding``) or ``"wb"``. On an exception the temporary file is
    removed and ``path`` is left as it was. Parent folders are created. Text that cannot be
    encoded (a lone surrogate: a file name whose bytes are not UTF-8, as Python decodes it) is
    written as its escape ``\\udcXX``, which JSON reads back as the same name.
    """
    path = os.fspath(path)
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), dir=folder)
    try:
        os.fchmod(fd, FILE_MODE)
        text = "b" not in mode
        with os.fdopen(fd, mode, encoding=encoding if text else None, newline="" if text else None,
                       errors="backslashreplace" if text else None) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def describe_os_error(exc: OSError) -> str:
    """One line for an OSError of a stage's own reads and writes, naming the file: ``cannot write
    'results/r/.tmp-out.txt-x': No space left on device (errno 28); free space and run the same
    command again: finished mini-batches are kept``."""
    import errno

    where = f" {exc.filename!r}" if exc.filename else ""
    text = f"cannot write{where}: {exc.strerror or exc} (errno {exc.errno})"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        text += "; free space and run the same command again: finished mini-batches are kept"
    return text


def _syncfs(path: str) -> bool:
    """Flush every written page of the filesystem holding ``path`` (Linux ``syncfs(2)``) in one
    call; False where that call is not available."""
    import ctypes
    import ctypes.util

    global _SYNCFS
    if _SYNCFS is None:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            _SYNCFS = libc.syncfs
        except (OSError, AttributeError):
            _SYNCFS = False
    if not _SYNCFS:
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        return _SYNCFS(fd) == 0
    finally:
        os.close(fd)


_SYNCFS = None


def replace_text_unsynced(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to a temporary sibling of ``path`` (parent folders created) and
    rename it over ``path``, without fsync: a reader sees the old file or the new one; a machine
    crash may lose the write. A failed write (a full disk) leaves no temporary file."""
    path = os.fspath(path)
    folder = os.path.dirname(path) or "."
    tmp = os.path.join(folder, temp_prefix(path).rstrip("-"))
    try:
        handle = open(tmp, "w", encoding="utf-8", newline="")
    except FileNotFoundError:
        os.makedirs(folder, exist_ok=True)
        handle = open(tmp, "w", encoding="utf-8", newline="")
    try:
        with handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class GroupCommit:
    """Atomic writes whose flush to disk is shared: ``write_text`` writes a temporary sibling and
    renames it over the target at once (a reader, and a run resumed after the writer was killed,
    sees the old file or the new one), but the data reaches the disk in groups: one
    ``syncfs(2)`` of the folder's filesystem once ``every_n`` files are pending or ``every_s``
    seconds have passed since the last flush, and at ``commit()`` (else ``os.fsync`` of each
    pending file, where syncfs is missing). So at most one flush per second or per ``every_n``
    writes, instead of one fsync per file.

    What a machine crash (power loss) can cost: the files written since the last flush may be
    missing, empty or (on some filesystems) zero-filled after the reboot. Use it only for files
    whose reader checks them and treats a bad one as absent (``infer.store.MiniBatchStore.load``: a
    result that does not parse or does not match its mini-batch is recomputed).

    ``folder``: where the files go (the filesystem that is flushed); ``every_s``: seconds;
    ``every_n``: files."""

    def __init__(self, folder: str, every_s: float = 1.0, every_n: int = 256) -> None:
        import time

        self.folder = folder
        self.every_s = every_s
        self.every_n = every_n
        self.flushes = 0
        self._clock = time.monotonic
        self._last = self._clock()
        self._pending: list[str] = []

    def write_text(self, path: str | os.PathLike, text: str) -> None:
        """Write ``text`` (UTF-8) to ``path`` atomically (temporary sibling + rename, parent
        folders created); flush the pending group when it is due."""
        path = os.fspath(path)
        replace_text_unsynced(path, text)
        self._pending.append(path)
        if len(self._pending) >= self.every_n or self._clock() - self._last >= self.every_s:
            self.commit()

    def commit(self) -> None:
        """Flush what was written since the last flush to disk now."""
        if self._pending:
            if not _syncfs(self.folder if os.path.isdir(self.folder) else os.path.dirname(self._pending[0])):
                for path in self._pending:
                    with contextlib.suppress(FileNotFoundError):
                        fd = os.open(path, os.O_RDONLY)
                        try:
                            os.fsync(fd)
                        finally:
                            os.close(fd)
            self.flushes += 1
            self._pending = []
        self._last = self._clock()


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path) as handle:
        handle.write(text)


def write_json_atomic(path: str | os.PathLike, data: object) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def read_json(path: str | os.PathLike, what: str):
    """Read a JSON file; raise ManifestError naming ``what`` and the path if it is missing or corrupt."""
    from snakebatch.errors import ManifestError

    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise ManifestError(f"{what} {os.fspath(path)!r} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{what} {os.fspath(path)!r} is corrupt: {exc}") from None


def publish_folder(tmp: str, out: str) -> None:
    """Make the finished folder ``tmp`` (from ``tempfile.mkdtemp`` next to ``out``) appear as
    ``out``: permissions as the umask gives (mkdtemp makes 0700), an older ``out`` replaced, one
    rename, so a killed build never leaves a half-written ``out``."""
    import shutil

    mask = os.umask(0)
    os.umask(mask)
    os.chmod(tmp, 0o777 & ~mask)
    if os.path.exists(out):
        shutil.rmtree(out)
    os.rename(tmp, out)


def build_folder(out: str, write) -> None:
    """Run ``write(tmp)`` in a fresh temporary sibling folder of ``out`` and, when it returns,
    ``publish_folder`` it as ``out``; when it raises, the temporary folder is removed and ``out``
    is left as it was (a killed build leaves only a ``.tmp-{name}-*`` sibling)."""
    import shutil
    import tempfile

    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".tmp-{os.path.basename(out)}-", dir=parent)
    try:
        write(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    publish_folder(tmp, out)


def _writer_alive(pid: int) -> bool:
    """Is process ``pid`` running on this machine (a zombie is not)?"""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # Linux: a killed writer nobody has reaped yet is a zombie
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True


def remove_stale_temps(path: str) -> list[str]:
    """Delete the temporary siblings of ``path`` (``.tmp-{name}-*``: ``atomic_open``,
    ``replace_text_unsynced``) that a killed writer left. One whose name carries its writer's
    process id (``temp_prefix``: ``-p{pid}-``) is kept while that process runs on this machine
    (its writer is still at work); one without (written before writers named themselves) is
    removed. Call it where no writer on another machine can be writing ``path``. Returns the
    paths removed."""
    import glob

    folder, name = os.path.split(os.fspath(path))
    prefix = f".tmp-{name}-"
    removed = []
    for stale in glob.glob(os.path.join(folder or ".", glob.escape(prefix) + "*")):
        owner = os.path.basename(stale)[len(prefix):].split("-", 1)[0]
        if owner[:1] == "p" and owner[1:].isdigit() and _writer_alive(int(owner[1:])):
            continue
        with contextlib.suppress(FileNotFoundError):
            os.unlink(stale)
            removed.append(stale)
    return removed


def publish_to(uri: str, files: list[str], storage_options: dict | None = None) -> list[str]:
    """Upload each local file of ``files`` to ``{uri}/{its base name}`` so no partial object is
    ever visible under its final name; return the URLs written. A local ``uri`` (plain path,
    ``file://``): copied to a temporary sibling, then renamed. An object store: one ``put_file``
    per object, and the store shows an object only once its upload is complete: Azure Blob's Put
    Blob (or Put Block List, after staging blocks) and S3's PutObject (or CompleteMultipartUpload)
    each replace the whole object in one commit; until then readers see the old object or none.
    Raises StorageError naming the URL (a local folder: the path and the OS's reason)."""
    import shutil

    from snakebatch.errors import StorageError
    from snakebatch.storage.locations import filesystem, is_local, local_path, storage_error

    written = []
    if is_local(uri):
        folder = local_path(uri)
        target = folder
        try:
            os.makedirs(folder, exist_ok=True)
            for path in files:
                target = os.path.join(folder, os.path.basename(path))
                with open(path, "rb") as source, atomic_open(target, "wb") as handle:
                    shutil.copyfileobj(source, handle)
                written.append(target)
        except OSError as exc:
            raise StorageError(f"output_uri: {target!r} cannot be written: {exc.strerror or exc} "
                               f"(errno {exc.errno})") from None
        return written
    from snakebatch.storage.locations import check_reachable

    try:
        check_reachable(uri, storage_options)
    except ConnectionError as exc:
        raise StorageError(f"output_uri: {exc}") from None
    base = uri.rstrip("/")
    for path in files:
        target = f"{base}/{os.path.basename(path)}"
        try:
            fs, remote = filesystem(target, storage_options)
            fs.put_file(path, remote)
        except Exception as exc:  # noqa: BLE001 - each store raises its own types
            raise StorageError("output_uri: " + storage_error(target, exc, "cannot be written")) from None
        written.append(target)
    return written
