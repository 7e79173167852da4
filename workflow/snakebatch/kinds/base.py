"""The input-kind interface: how one kind of dataset is listed, cut into mini-batches, read for
``run()`` and named in the error report.

A kind (``file``, ``tabular``) is a stateless ``InputKind`` subclass in its own module, found
through ``snakebatch.kinds.get_kind(name)``. Everything it hands to another process is a
``MiniBatch`` (JSON in the shard manifest) that carries the kind's name, so the shard loop, the
worker and the result store call ``get_kind(mini_batch.kind)`` instead of branching on the kind.
"""

from __future__ import annotations

import abc
import json
import os
import tempfile
from dataclasses import dataclass, field


def _absolute(path: str) -> str:
    """``os.path.abspath(path)``, without its normalisation work for an absolute path that is
    already normal (no ``//``, no ``.`` or ``..`` component, no trailing slash: what a folder
    walk gives)."""
    if path.startswith(os.sep) and "//" not in path and "/." not in path and not path.endswith(os.sep):
        return path
    return os.path.abspath(path)


@dataclass(frozen=True, slots=True)
class Item:
    """One input file of a dataset listing.

    ``path``: the file as ``run()`` and the error report name it: for a local dataset (plain path
    or ``file://`` URL) the local path as listed (relative when the root was); otherwise the fsspec
    URL (``memory:///data/a.csv``, ``s3://bucket/a.csv``). ``size``: bytes. ``ukey``: its change
    identity (local: ``"{size}:{mtime_ns}"``; elsewhere the store's ETag/version/generation, else
    ``fs.ukey``): it differs whenever the content may differ. ``mtime_ns``: modification time of a
    local file in nanoseconds, None elsewhere."""

    path: str
    size: int
    ukey: str
    mtime_ns: int | None = None

    @property
    def local(self) -> bool:
        """True when the file is on the local disk (``path`` is a local path)."""
        return self.mtime_ns is not None

    def key_line(self) -> str:
        """The item's part of a mini-batch key: local files as before this interface (path,
        absolute path, size, mtime_ns) so stored results stay valid; others by URL and ukey."""
        if self.mtime_ns is not None:
            return f"{self.path}\0{_absolute(self.path)}\0{self.size}\0{self.mtime_ns}"
        return f"{self.path}\0{self.ukey}"


def key_text(items) -> str:
    """``"".join(item.key_line() + "\\n" for item in items)`` (``items``: a list of Items), built
    without a call per item when every item is a local file whose path is absolute and normal
    (then a key line is ``path, path, size, mtime_ns``): one ``join`` and a few ``in`` tests over
    the paths tell that for the whole list (a path holds no NUL, so none straddles two)."""
    if items and None not in [i.mtime_ns for i in items]:
        paths = "\0".join([i.path for i in items])
        if (paths.startswith(os.sep) and paths.count("\0" + os.sep) == len(items) - 1 and "//" not in paths
                and "/." not in paths and "/\0" not in paths and not paths.endswith(os.sep)):
            return "".join([f"{i.path}\0{i.path}\0{i.size}\0{i.mtime_ns}\n" for i in items])
    return "".join([i.key_line() + "\n" for i in items])


@dataclass(frozen=True)
class MiniBatch:
    """One mini-batch as its kind cut it, JSON in the shard manifest.

    ``kind``: the kind's registry name; ``index``: 0-based position in the whole input;
    ``first_item``: global index of its first item or record (ParallelRunStep's
    global_row_index_lower_bound); ``key``: hex SHA-256 of its input (equal keys mean equal
    input); ``count``: items (files or records) as counted when it was cut; ``payload``: what the
    kind needs to read it again (plain JSON values, read only by the kind)."""

    kind: str
    index: int
    first_item: int
    key: str
    count: int
    payload: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The mini-batch as a JSON object (in a manifest; in a worker's Load request)."""
        return {"kind": self.kind, "index": self.index, "first_item": self.first_item, "key": self.key,
                "count": self.count, "payload": self.payload}

    @classmethod
    def from_dict(cls, data: dict) -> MiniBatch:
        return cls(kind=str(data["kind"]), index=int(data["index"]), first_item=int(data["first_item"]),
                   key=str(data["key"]), count=int(data["count"]), payload=dict(data.get("payload") or {}))

    def to_json(self) -> str:
        """The mini-batch as one line of JSON text (stable: sorted keys)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> MiniBatch:
        """The mini-batch of ``to_json``'s text."""
        return cls.from_dict(json.loads(text))


#: files of one mini-batch downloaded at a time from an object store (a worker's thread pool)
DOWNLOAD_THREADS = 8


@dataclass
class Cache:
    """What a worker keeps between mini-batches for ``materialise``: ``folder``, where files that
    are not on the local disk are downloaded (None: a temporary folder made on first need);
    ``storage_options``: fsspec options for those files; ``frames``: whole tables read for
    partition-key groups (owned by the tabular kind); ``download_threads``: how many of one
    mini-batch's files are downloaded at a time (>= 1)."""

    folder: str | None = None
    storage_options: dict = field(default_factory=dict)
    frames: dict = field(default_factory=dict)
    download_threads: int = DOWNLOAD_THREADS

    def download_folder(self) -> str:
        if self.folder is None:
            self.folder = tempfile.mkdtemp(prefix="snakebatch-inputs-")
        os.makedirs(self.folder, exist_ok=True)
        return self.folder


class Materialised(list):
    """What ``materialise`` gives for a mini-batch some of whose items could not be read: the
    list ``run()`` would get, and ``failed``: {position: "Error: message naming the item"}. The
    runner records those items as failed and never passes them to run()."""

    def __init__(self, values=(), failed: dict | None = None) -> None:
        super().__init__(values)
        self.failed = dict(failed or {})


class InputKind(abc.ABC):
    """One kind of input. Subclasses set ``name`` and implement the abstract methods.

    ``spec`` below is the partition settings (``settings.specs.PartitionSpec`` or any object with its
    attributes: ``paths``, ``pattern``, ``mini_batch_size``, ``format``, ``read_options``,
    ``partition_keys``; optional ``storage_options``)."""

    name: str = ""
    #: what an item is, plural, for messages (``files``, ``records``)
    item_unit: str = "items"
    #: True when ``run()`` gets exactly ``count`` items (files); False when the count made at
    #: partition time is an estimate the read may change (records of a text table).
    count_is_exact: bool = True

    @abc.abstractmethod
    def list(self, spec):
        """Iterate the dataset's Items in input order (roots in the order given, each root sorted
        by path, each file once). Raises DatasetError naming the root when a root is missing or
        a glob matches nothing, and when the dataset is empty."""
        raise NotImplementedError

    @abc.abstractmethod
    def mini_batches(self, listing, spec, log=print) -> list[MiniBatch]:
        """Cut ``listing`` (an iterable of Items, in order) into MiniBatches, in input order.
        ``log``: where warnings go (one line each). Raises DatasetError naming a file that cannot
        be cut."""
        raise NotImplementedError

    @abc.abstractmethod
    def materialise(self, descriptor: MiniBatch, read_options: dict, cache: Cache):
        """What ``run()`` gets for the whole mini-batch, in the worker: a list of local file
        paths (``file``) or a pandas DataFrame (``tabular``). Raises the kind's read error
        (``MaterialiseError``) naming the file (and line) when it cannot be read."""
        raise NotImplementedError

    def release(self, materialised, cache: Cache) -> None:
        """Free what ``materialise`` left on disk for a mini-batch that is done (downloaded
        copies). The default keeps nothing."""

    def prefetch_bytes(self, descriptor: MiniBatch) -> int:
        """Bytes ``materialise`` writes to the local disk for ``descriptor`` (downloads); 0 when
        it reads in place."""
        return 0

    def select(self, materialised, start: int, stop: int):
        """Items ``start:stop`` (positions) of what ``materialise`` returned, as ``run()`` gets
        them for a part of the mini-batch (retries, bisection). The default slices a list."""
        return list(materialised[start:stop])

    def item_identities(self, descriptor: MiniBatch) -> list[str | None] | None:
        """Per item of the mini-batch, in order, a hex digest that changes whenever the item's
        input may have changed (for item-level reuse, ``infer.store.ItemIndex``); None for an item whose
        identity cannot be told now. The default, None for the whole mini-batch: this kind's items
        are never reused one by one (table records)."""
        return None

    def item_count(self, descriptor: MiniBatch) -> int:
        """Items of the mini-batch as counted when it was cut."""
        return descriptor.count

    @abc.abstractmethod
    def item_names(self, descriptor: MiniBatch) -> tuple[str, ...]:
        """The files the mini-batch reads (names as in Item.path), in order."""
        raise NotImplementedError

    @abc.abstractmethod
    def describe(self, descriptor: MiniBatch) -> str:
        """The whole mini-batch in a message (an unreadable table chunk: file and lines)."""
        raise NotImplementedError

    @abc.abstractmethod
    def describe_item(self, descriptor: MiniBatch, position: int) -> str:
        """The item at ``position`` (0-based, in the mini-batch) for the error report: its file
        path (``file``) or file and record (``tabular``)."""
        raise NotImplementedError

    def cut_description(self, spec) -> str:
        """How ``spec`` cuts the dataset, for the console: ``mini_batch_size 10``."""
        return f"mini_batch_size {spec.mini_batch_size}"

    def partition_key_value(self, descriptor: MiniBatch) -> dict:
        """The ``mini_batch_context.partition_key_value`` of the mini-batch ({} when none)."""
        return {}

    def dataset(self, descriptor: MiniBatch, positions=None):
        """The ``mini_batch_context.dataset`` of a run() of the items at ``positions`` (None:
        all): an ``entry.MiniBatchDataset`` of the files they read. The default names every
        file of the mini-batch."""
        from snakebatch.infer.entry import MiniBatchDataset

        return MiniBatchDataset(kind=self.name, files=tuple(self.item_names(descriptor)),
                                partition_key_value=self.partition_key_value(descriptor))


class MaterialiseError(Exception):
    """A mini-batch's input cannot be read in the worker; the message names the file (and line)."""
