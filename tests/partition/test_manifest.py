"""The shard manifest (snakebatch.partition.manifest): compact JSON, one mini-batch per line; JSON
text in and out; another version or a corrupt file refused naming it."""

import json

import pytest

from snakebatch.errors import ManifestError
from snakebatch.kinds import Item
from snakebatch.partition.manifest import ShardManifest
from snakebatch.partition.shards import build_manifests
from snakebatch.settings.config import PartitionSpec


def listing(n):
    return [Item(path=f"d/{i}.png", size=i, ukey=f"{i}:{1000 + i}", mtime_ns=1000 + i) for i in range(n)]


def cut(size):
    return PartitionSpec(run_name="r", paths=("d",), pattern=None, mini_batch_size=size, shard_count=1)


def test_a_manifest_is_compact_json_with_one_mini_batch_per_line(tmp_path):
    (manifest,) = build_manifests(cut(2), listing(3))
    path = str(tmp_path / "shard-00000.json")
    manifest.write(path)
    lines = open(path, encoding="utf-8").read().split("\n")
    assert lines[0] == ('{"version": 3, "run_name": "r", "shard": 0, "shard_count": 1, "total_mini_batches": 2, '
                        '"total_items": 3, "mini_batches": [')
    assert [line[:49] for line in lines[1:3]] == ['{"kind": "file", "index": 0, "first_item": 0, "ke',
                                                 '{"kind": "file", "index": 1, "first_item": 2, "ke']
    assert lines[1].endswith('"count": 2, "payload": {"items": ["d/0.png", "d/1.png"]}},')
    assert lines[3:] == ["]}", ""]
    assert ShardManifest.read(path) == manifest
    (empty,) = build_manifests(PartitionSpec(**{**cut(2).__dict__, "shard_count": 3}), listing(1))[2:]
    empty.write(path)
    assert open(path, encoding="utf-8").read().endswith('"total_items": 1, "mini_batches": []}\n')
    assert ShardManifest.read(path) == empty


def test_to_json_is_text_that_from_json_reads_back(tmp_path):
    (manifest,) = build_manifests(cut(2), listing(5))
    text = manifest.to_json()
    assert isinstance(text, str)
    assert ShardManifest.from_json(text) == manifest
    assert ShardManifest.from_dict(json.loads(text)) == manifest


def test_another_version_or_a_corrupt_file_is_refused_naming_it(tmp_path):
    (manifest,) = build_manifests(cut(2), listing(1))
    with pytest.raises(ManifestError) as info:
        ShardManifest.from_json(manifest.to_json().replace('"version": 3', '"version": 2'))
    assert str(info.value) == "manifest version 2 is not 3"
    path = tmp_path / "shard-00000.json"
    path.write_text(manifest.to_json().replace('"total_items"', '"items"'))
    with pytest.raises(ManifestError) as info:
        ShardManifest.read(str(path))
    assert str(info.value) == f"shard manifest {str(path)!r} is corrupt: KeyError('total_items')"
    with pytest.raises(ManifestError) as info:
        ShardManifest.read(str(tmp_path / "missing.json"))
    assert str(info.value) == f"shard manifest {str(tmp_path / 'missing.json')!r} does not exist"
