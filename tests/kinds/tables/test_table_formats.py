"""Table file formats (snakebatch.kinds.tables.formats): a file's format told from its extension."""

import pytest

from helpers import partition_spec, write
from snakebatch.errors import DatasetError
from snakebatch.kinds import get_kind
from snakebatch.partition.shards import make_mini_batches


def spec(path, size, **overrides):
    return partition_spec(path, size, **{"input_type": "tabular", "run_name": "t", **overrides})


def batches(path, size, **overrides):
    s = spec(path, size, **overrides)
    return make_mini_batches(get_kind("tabular").list(s), s, log=lambda message: None)


def test_an_unknown_extension_names_the_file(tmp_path):
    path = write(tmp_path / "data.dat", "a\n1\n")
    with pytest.raises(DatasetError, match=r"data\.dat': cannot tell its tabular format from the extension; set input\.format"):
        batches(path, 10)
    assert len(batches(path, 10, format="csv")) == 1
