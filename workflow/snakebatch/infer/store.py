"""The mini-batch store: the durable result of every finished mini-batch of a run, so a killed
run resumes and a rerun reuses what is unchanged.

A result is keyed by the mini-batch's input key (its files' paths, sizes, mtimes) and the runner
fingerprint: the entry script, the helper modules it imports, arguments, environment variables,
models, side inputs and output settings. Results live at
``results/{run}/minibatches/{key[:2]}/{key}.json``; the helper modules any run has seen are
recorded in ``results/{run}/entry_script_modules.json`` (Snakemake tracks them as inputs too).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time

from snakebatch.settings.config import RunnerSpec
from snakebatch.errors import ConfigError, EntryScriptError
from snakebatch.kinds import get_kind
from snakebatch.storage.layout import RunLayout, StoreLayout
from snakebatch.storage.locations import is_url, remote_fingerprint, storage_error
from snakebatch.partition.manifest import MiniBatch
from snakebatch.infer.results import MiniBatchResult
from snakebatch.storage.atomic import GroupCommit, write_text_atomic
from snakebatch.storage.locks import FileLock
from snakebatch.storage.upkeep import compact_item_index, index_entries, index_files, remove_old_item_indexes, touch_folder

log = logging.getLogger(__name__)

STORE_VERSION = "1"
TABLE_SUFFIX = ".arrow"  # a mini-batch's result table (append_row_format parquet): an Arrow IPC stream


def path_fingerprint(path: str) -> str:
    """Hex SHA-256 over (relative path, size, mtime_ns) of a file or of every file in a folder.

    Raises FileNotFoundError when ``path`` does not exist."""
    digest = hashlib.sha256()
    if os.path.isdir(path):
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames.sort()
            for name in sorted(filenames):
                full = os.path.join(dirpath, name)
                st = os.stat(full)
                digest.update(f"{os.path.relpath(full, path)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
    else:
        st = os.stat(path)
        digest.update(f"{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def runner_fingerprint(spec: RunnerSpec, modules: list[str] | tuple[str, ...] = ()) -> str:
    """Hex SHA-256 of everything besides the input files that changes a mini-batch's result:
    the bytes of the entry script and of ``modules`` (the helper modules it imported from
    source_directory), arguments, environment variables, models and side inputs (their files'
    sizes and mtimes), output action and format, input type and read options. Raises ConfigError naming the key of a model or
    side input whose path does not exist, EntryScriptError when the script is missing."""
    digest = hashlib.sha256(f"snakebatch-store-{STORE_VERSION}\n".encode())
    try:
        with open(spec.entry_script, "rb") as handle:
            digest.update(handle.read())
    except OSError as exc:
        raise EntryScriptError(f"config key 'entry_script': cannot read {spec.entry_script!r}: {exc.strerror}") from None
    for module in sorted(_portable(os.path.abspath(m)) for m in modules):
        try:
            with open(module, "rb") as handle:
                digest.update(f"module:{module}\n".encode() + handle.read())
        except OSError:
            digest.update(f"module:{module}:missing\n".encode())
    digest.update(repr((spec.arguments, sorted(spec.environment_variables.items()),
                        spec.output_action, spec.append_row_format, spec.append_row_dataframe_header, spec.input_type,
                        json.dumps(spec.read_options, sort_keys=True, default=str))).encode())
    for key in ("models", "side_inputs"):
        for name, path in sorted(getattr(spec, key).items()):
            try:
                if is_url(path):  # by the etags of its objects: the bytes a worker downloads
                    digest.update(f"{key}:{name}:{path}:{remote_fingerprint(path, spec.storage_options)}\n".encode())
                else:
                    digest.update(f"{key}:{name}:{path_fingerprint(path)}\n".encode())
            except FileNotFoundError:
                raise ConfigError(f"config key '{key}.{name}': path {path!r} does not exist") from None
            except Exception as exc:  # noqa: BLE001 - the store's own error types
                raise ConfigError(f"config key '{key}.{name}': " + storage_error(path, exc)) from None
    return digest.hexdigest()


MODULES_FILE = os.path.basename(RunLayout("").modules_record)  # entry_script_modules.json
MODULES_LOCK_STALE_S = 30.0  # the record is held for milliseconds: a silent holder this old died
MODULES_LOCK_TIMEOUT_S = 120.0


def known_modules(run_dir: str) -> list[str]:
    """The helper modules the entry script imported in earlier runs, from
    ``{run_dir}/entry_script_modules.json``: paths relative to the working directory where they
    live below it (so the project can move), else absolute. ``[]`` when unknown."""
    try:
        with open(RunLayout(run_dir).modules_record, encoding="utf-8") as handle:
            return sorted(str(m) for m in json.load(handle)["modules"])
    except (OSError, ValueError, KeyError, TypeError):
        return []


def _portable(path: str) -> str:
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def record_modules(run_dir: str, entry_script: str, modules: list[str]) -> list[str]:
    """Add ``modules`` to the run's record (shards add theirs under ``modules_record_lock``, a
    ``storage.locks.FileLock`` that holds on NFS: none overwrites another's) and return the whole
    record, sorted. Raises TimeoutError when the lock stays held for MODULES_LOCK_TIMEOUT_S."""
    layout = RunLayout(run_dir)
    os.makedirs(run_dir, exist_ok=True)
    lock = FileLock(layout.modules_record_lock, stale_after_s=MODULES_LOCK_STALE_S)
    lock.acquire(MODULES_LOCK_TIMEOUT_S)
    try:
        merged = sorted(set(known_modules(run_dir)) | {_portable(m) for m in modules})
        write_text_atomic(layout.modules_record,
                          json.dumps({"entry_script": entry_script, "modules": merged}, indent=1) + "\n")
    finally:
        lock.release()
    return merged


class MiniBatchStore:
    """Durable mini-batch results of one run, keyed by input key + runner fingerprint.

    Files live at ``{root}/{key[:2]}/{key}.json``; only fully successful results are stored
    for reuse, so a rerun retries failures. ``modules`` are the entry script's helper modules
    the fingerprint covers (all any run has seen, from ``{run_dir}/entry_script_modules.json``);
    ``note_modules`` adds those a worker reports."""

    def __init__(self, root: str, spec: RunnerSpec, run_dir: str) -> None:
        self.root = root
        self.layout = StoreLayout(root)
        self.spec = spec
        self.run_dir = run_dir
        self.modules = known_modules(run_dir)
        self.fingerprint = runner_fingerprint(spec, self.modules)
        self.commits = GroupCommit(root)

    def note_modules(self, modules: list[str]) -> None:
        """Results stored from now on are keyed with every module seen; remember them for the
        next run (and for Snakemake, which tracks them as inputs of the shard jobs)."""
        portable = {_portable(m) for m in modules}
        if not portable <= set(self.modules):
            self.modules = record_modules(self.run_dir, self.spec.entry_script, sorted(portable))
            self.fingerprint = runner_fingerprint(self.spec, self.modules)

    def store_key(self, mini_batch: MiniBatch) -> str:
        """The hex store key of ``mini_batch``: SHA-256 of ``{fingerprint}:{mini-batch key}``."""
        return hashlib.sha256(f"{self.fingerprint}:{mini_batch.key}".encode()).hexdigest()

    def _path(self, mini_batch: MiniBatch) -> str:
        return self.layout.result(self.store_key(mini_batch))

    def holds(self, mini_batch: MiniBatch) -> bool:
        """True when a result of ``mini_batch`` is stored (not read or checked: see ``load``)."""
        return os.path.exists(self._path(mini_batch))

    def load(self, mini_batch: MiniBatch) -> MiniBatchResult | None:
        """The stored result of ``mini_batch`` or None (missing or unreadable: recompute)."""
        try:
            with open(self._path(mini_batch), encoding="utf-8") as handle:
                result = MiniBatchResult.from_json(handle.read())
        except (OSError, ValueError, KeyError, TypeError):
            return None
        kind = get_kind(mini_batch.kind)
        if result.key != mini_batch.key or (kind.count_is_exact and result.item_count != kind.item_count(mini_batch)):
            return None
        if result.positional and (result.index, result.first_item) != (mini_batch.index, mini_batch.first_item):
            return None  # run() saw the mini-batch context: reuse only at the same position
        if result.table_file is not None and not os.path.exists(result.table_file):
            return None
        return result

    def save_table(self, mini_batch: MiniBatch, ipcs: list[bytes]) -> str:
        """Write the result table of ``mini_batch`` (Arrow IPC streams of its parts, in order)
        atomically as one Arrow IPC stream file next to its stored result; return its path. One
        part (the usual case) is written as the worker encoded it, without decoding; several
        (retries that split the mini-batch) are concatenated. Gather reads these files
        memory-mapped (``formats.parquet.read_table_file``) and encodes Parquet once, for the merged file.
        Raises ResultSchemaError when the parts disagree on columns or types."""
        path = self.layout.table(self.store_key(mini_batch))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.tmp-{os.getpid()}"
        if len(ipcs) == 1:
            with open(tmp, "wb") as handle:
                handle.write(ipcs[0])
        else:
            import pyarrow as pa

            from snakebatch.errors import ResultSchemaError

            tables = [pa.ipc.open_stream(data).read_all() for data in ipcs]
            try:
                table = pa.concat_tables(tables)
            except pa.ArrowInvalid as exc:
                raise ResultSchemaError(f"mini-batch {mini_batch.index}: the parts of its result have different "
                                        f"columns or types: {exc}") from None
            with pa.OSFile(tmp, "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table)
        os.replace(tmp, path)
        return path

    def save(self, result: MiniBatchResult, mini_batch: MiniBatch) -> None:
        """Store ``result`` atomically when it has no failures. Group commit (``GroupCommit``):
        renamed into place at once, flushed to disk at most once a second or per 256 results,
        and at ``commit()``; a result a machine crash tore is unreadable to ``load`` and
        recomputed."""
        if result.failed == 0:
            self.commits.write_text(self._path(mini_batch), result.to_json() + "\n")

    def commit(self) -> None:
        """Flush the results saved since the last flush to disk (the shard's end)."""
        self.commits.commit()


class ItemIndex:
    """Item-level reuse: the append_row line every file produced, keyed by the file's identity
    (``InputKind.item_identities``) under one runner fingerprint, so a mini-batch whose files
    changed gets run() only for the files no earlier run produced a line for.

    Why at item level: mini-batches are consecutive runs of ``mini_batch_size`` files of the
    sorted listing, so one file added near the front shifts every later boundary and changes
    every later mini-batch key. Content-defined cut points would bound that to the mini-batches
    around each change, but still recompute whole mini-batches (≈ k × mini_batch_size items for k
    spread insertions) and would change ParallelRunStep's "mini_batch_size files per mini-batch";
    an index per file recomputes exactly the k files whatever the boundaries.

    Layout: ``{store}/items/{fingerprint[:32]}/{shard:05d}-{pid}-{ns}.idx``, one file per runner
    process, appended to after the mini-batch result it indexes is durable in the store; each line
    ``{identity}\\t{result line}\\n`` (result lines are one line of UTF-8 by construction). The
    index is a cache, never fsync'd: a line lost in a crash is recomputed; a torn last line (no
    newline) is ignored, and no process appends to another's file, so a torn line is never
    followed by a good one. Reading loads, on first need, the lines of the identities asked for
    (``wanted``), so memory follows the shard, not the whole index. Opening a fingerprint's index
    (the first lookup) compacts it and removes old fingerprints' folders (``storage.upkeep``)."""

    def __init__(self, root: str, shard: int = 0) -> None:
        self.root = root
        self.layout = StoreLayout(root)
        self.shard = shard
        self._fingerprint: str | None = None
        self._handle = None
        self._known: dict[str, str] | None = None
        self._kept: set = set()  # the identities the last read kept (asked for or wanted)

    def folder(self, fingerprint: str) -> str:
        """Where the index files of ``fingerprint`` (hex runner fingerprint) live."""
        return self.layout.item_index_dir(fingerprint)

    def _use(self, fingerprint: str) -> None:
        if fingerprint != self._fingerprint:
            self.close()
            self._fingerprint, self._known, self._kept = fingerprint, None, set()

    def lookup(self, fingerprint: str, identities, wanted) -> dict[int, str]:
        """{position: line} for the entries of ``identities`` (hex digests or None, by position)
        that an earlier run indexed under ``fingerprint``. ``wanted``: a callable giving every
        identity the caller may ask for (read on the first lookup, and again when a lookup asks for
        identities the last read did not keep: a mini-batch taken from another shard), or None
        for just these."""
        self._use(fingerprint)
        asked = {i for i in identities if i}
        if self._known is None:
            self._upkeep(fingerprint)
        if self._known is None or (self._kept and not asked <= self._kept):
            files = self._files()
            if not files:  # nothing indexed yet (a first run): ``wanted`` is not worth its stats
                self._known = {}
            else:
                self._kept = set(wanted() if wanted is not None else ()) | asked | self._kept
                self._known = self._read(files, self._kept)
        return {position: self._known[identity] for position, identity in enumerate(identities)
                if identity is not None and identity in self._known}

    def _upkeep(self, fingerprint: str) -> None:
        """On opening the index of ``fingerprint``: mark its folder in use, compact it when it has
        many quiet files, remove the folders of old fingerprints (``storage.upkeep``: what is
        quiet and old). The index is a cache: an upkeep that fails (a full disk) is logged."""
        touch_folder(self.folder(fingerprint))
        try:
            compact_item_index(self.root, fingerprint)
            remove_old_item_indexes(self.root, fingerprint)
        except OSError as exc:
            log.warning("item index upkeep in %s failed: %s", self.layout.items_dir, exc)

    def _files(self) -> list[str]:
        """The index files of the current fingerprint, in the order they are applied."""
        return [e.path for e in index_files(self.folder(self._fingerprint))]

    def _read(self, files: list[str], keep: set) -> dict[str, str]:
        """The lines of ``keep``'s identities in ``files`` (later files win). A file that vanished
        meanwhile (merged by a compaction) makes it read the folder again, once."""
        known: dict[str, str] = {}
        for again in (False, True):
            vanished = False
            for path in files:
                try:
                    with open(path, encoding="utf-8", errors="surrogateescape") as handle:
                        known.update((identity, line) for identity, line in index_entries(handle)
                                     if identity in keep)
                except FileNotFoundError:
                    vanished = True
                except (OSError, UnicodeDecodeError):
                    continue
            if not vanished or again:
                return known
            files, known = self._files(), {}
        return known

    def add(self, fingerprint: str, identities, lines) -> None:
        """Index ``lines`` (one per item, in order) under ``identities`` (same length; items
        whose identity is None are left out)."""
        self._use(fingerprint)
        text = "".join(f"{identity}\t{line}\n" for identity, line in zip(identities, lines) if identity is not None)
        if not text:
            return
        try:
            self._append(fingerprint, text)
        except OSError:  # ESTALE: a compaction on another node removed this process's file
            self.close()
            self._append(fingerprint, text)
        if self._known is not None:
            self._known.update((i, line) for i, line in zip(identities, lines) if i is not None)

    def _append(self, fingerprint: str, text: str) -> None:
        """Append ``text`` to this process's index file, opening a new one when there is none or
        a compaction removed it (this process idled longer than ``storage.upkeep.QUIET_S``)."""
        if self._handle is not None and os.fstat(self._handle.fileno()).st_nlink == 0:
            self.close()
        if self._handle is None:
            os.makedirs(self.folder(fingerprint), exist_ok=True)
            path = self.layout.item_index_file(fingerprint, self.shard, os.getpid(), time.time_ns())
            self._handle = open(path, "a", encoding="utf-8", errors="surrogateescape")
        self._handle.write(text)
        self._handle.flush()

    def close(self) -> None:
        """Close this process's index file (further adds open a new one)."""
        if self._handle is not None:
            with contextlib.suppress(OSError):
                self._handle.close()
            self._handle = None
