"""The shard manifest: which mini-batches one infer job runs. One JSON file per shard."""

from __future__ import annotations

import json
from dataclasses import dataclass

from snakebatch.errors import ManifestError
from snakebatch.storage.atomic import read_json, write_text_atomic
from snakebatch.kinds import MiniBatch

MANIFEST_VERSION = 3


@dataclass(frozen=True)
class ShardManifest:
    """The mini-batches of shard ``shard`` (0-based) out of ``shard_count``; ``total_mini_batches``
    and ``total_items`` describe the whole input, for progress."""

    run_name: str
    shard: int
    shard_count: int
    total_mini_batches: int
    total_items: int
    mini_batches: tuple[MiniBatch, ...]

    def to_json(self) -> str:
        """The manifest as JSON text: the shard's fields, then ``mini_batches`` with one
        mini-batch per line (compact; each line through the C encoder, which ``indent`` would
        turn off: a million files' manifests in well under a second)."""
        head = json.dumps({
            "version": MANIFEST_VERSION,
            "run_name": self.run_name,
            "shard": self.shard,
            "shard_count": self.shard_count,
            "total_mini_batches": self.total_mini_batches,
            "total_items": self.total_items,
        })
        dumps = json.dumps
        batches = ",\n".join([dumps(mb.to_dict()) for mb in self.mini_batches])
        return f'{head[:-1]}, "mini_batches": [\n{batches}\n]}}\n' if batches else f'{head[:-1]}, "mini_batches": []}}\n'

    @classmethod
    def from_json(cls, text: str) -> ShardManifest:
        """The manifest of the JSON text ``to_json`` wrote. Raises ManifestError for another
        version, ValueError (``json.JSONDecodeError``), KeyError or TypeError for text that is
        not a manifest."""
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_dict(cls, data: dict) -> ShardManifest:
        """The manifest of ``json.loads(to_json())``. Raises ManifestError for another version,
        KeyError/TypeError/ValueError for a field that is missing or of the wrong type."""
        if data.get("version") != MANIFEST_VERSION:
            raise ManifestError(f"manifest version {data.get('version')!r} is not {MANIFEST_VERSION}")
        return cls(
            run_name=data["run_name"], shard=int(data["shard"]), shard_count=int(data["shard_count"]),
            total_mini_batches=int(data["total_mini_batches"]), total_items=int(data["total_items"]),
            mini_batches=tuple(MiniBatch.from_dict(mb) for mb in data["mini_batches"]),
        )

    def write(self, path: str) -> None:
        """Write the manifest atomically to ``path``."""
        write_text_atomic(path, self.to_json())

    @classmethod
    def read(cls, path: str) -> ShardManifest:
        """Read a manifest; ManifestError names the file when it is missing or corrupt."""
        data = read_json(path, "shard manifest")
        try:
            return cls.from_dict(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestError(f"shard manifest {path!r} is corrupt: {exc!r}") from None


def shard_id(shard: int) -> str:
    """The zero-padded name of a shard used in file names: 3 -> ``'00003'``."""
    return f"{shard:05d}"
