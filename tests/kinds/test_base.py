"""The kind interface's records (snakebatch.kinds.base): an Item's key line, a MiniBatch's JSON."""

import json
import os

import pytest

from helpers import partition_spec, put, write
from snakebatch.kinds import MiniBatch, Item, get_kind
from snakebatch.kinds.tables.chunk import TableChunk

FILES = get_kind("file")
TABLES = get_kind("tabular")


def spec(paths, size=3, input_type="file", **overrides):
    return partition_spec(list(paths), size, input_type=input_type, run_name="t", **overrides)


def test_mini_batches_round_trip_through_json(dataset, tmp_path, mem):
    s = spec([str(dataset)], size=4)
    path = write(tmp_path / "t.csv", "a,b\n1,x\n2,y\n3,z\n")
    fs, root = mem
    put(fs, f"{root}/t.csv", "a,b\n1,x\n2,y\n")
    descriptors = (FILES.mini_batches(FILES.list(s), s)
                   + TABLES.mini_batches(TABLES.list(spec([path], 8, "tabular")), spec([path], 8, "tabular"))
                   + TABLES.mini_batches(TABLES.list(spec([f"{root}/t.csv"], 8, "tabular")),
                                         spec([f"{root}/t.csv"], 8, "tabular"))
                   + TABLES.mini_batches(TABLES.list(spec([path], 8, "tabular", partition_keys=("b",))),
                                         spec([path], 8, "tabular", partition_keys=("b",))))
    for descriptor in descriptors:
        text = json.dumps(descriptor.to_dict())
        assert MiniBatch.from_dict(json.loads(text)) == descriptor
        assert MiniBatch.from_json(descriptor.to_json()) == descriptor
        assert json.loads(descriptor.to_json()) == json.loads(text)
        assert get_kind(json.loads(text)["kind"]).item_count(descriptor) == descriptor.count
    assert descriptors[0].to_dict() == {"kind": "file", "index": 0, "first_item": 0, "key": descriptors[0].key,
                                        "count": 4, "payload": {"items": [str(dataset / f"f0{i}.txt")
                                                                          for i in range(4)]}}
    remote = TableChunk.from_dict(descriptors[-4].payload)
    assert remote.ukey and remote.size is None and remote.mtime_ns is None
    assert "ukey" not in descriptors[4].payload and "file_ukeys" not in descriptors[4].payload  # local: as before


@pytest.mark.parametrize("path", ["/a/b.png", "/a//b.png", "/a/./b.png", "/a/../b.png", "/a/.h.png", "rel/x.png",
                                  "//x.png", "/a/b..c"])
def test_a_local_key_line_holds_the_absolute_path_as_abspath_gives_it(path):
    item = Item(path=path, size=3, ukey="3:5", mtime_ns=5)
    assert item.key_line() == f"{path}\0{os.path.abspath(path)}\0{3}\0{5}"
