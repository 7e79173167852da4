"""The output formats behind one interface: the registry, and each format's encode -> merged file
-> read back round trip."""

import dataclasses
import os
import subprocess
import sys

import pandas as pd
import pytest

from helpers import mini_batch_result
from snakebatch.formats import get_format, known_formats
from snakebatch.formats.base import Encoded, OutputFormat


def test_the_registry_names_each_format_and_whether_item_reuse_applies():
    assert known_formats() == ("txt", "csv", "parquet")
    formats = {name: get_format(name) for name in known_formats()}
    assert all(isinstance(f, OutputFormat) and f.name == name for name, f in formats.items())
    assert {name: f.item_reuse for name, f in formats.items()} == {"txt": True, "csv": False, "parquet": False}
    assert get_format("csv") is get_format("csv")
    with pytest.raises(ValueError, match=r"unknown append_row_format 'xlsx'; known formats: txt, csv, parquet"):
        get_format("xlsx")


def test_format_modules_are_imported_on_first_use():
    code = ("import sys, snakebatch.formats as f; assert 'snakebatch.formats.parquet' not in sys.modules; "
            "f.get_format('parquet'); assert 'snakebatch.formats.parquet' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ})


def _merge(tmp_path, name, frames, dataframe_header=False):
    """Encode each frame as one mini-batch's result, merge them in order and read the file back."""
    output_format = get_format(name)
    path = str(tmp_path / f"out.{name}")
    with output_format.open_merge(path, dataframe_header) as writer:
        for index, frame in enumerate(frames):
            encoded = output_format.encode(frame, dataframe_header)
            assert isinstance(encoded, Encoded)
            table_file = None
            if encoded.arrow_ipc is not None:
                table_file = str(tmp_path / f"{index}.arrow")
                with open(table_file, "wb") as handle:
                    handle.write(encoded.arrow_ipc)
            writer.add(dataclasses.replace(mini_batch_result(index, []), lines=tuple(encoded.lines),
                                           header=encoded.header, table_file=table_file))
        assert not os.path.exists(path)     # nothing visible before the commit
        writer.commit()
    return output_format.read(path, dataframe_header)


@pytest.mark.parametrize("name,dataframe_header", [("txt", True), ("csv", False), ("parquet", False)])
def test_each_format_reads_back_the_frames_it_merged_in_order(tmp_path, name, dataframe_header):
    frames = [pd.DataFrame({"file": ["a.png", "b, \"c\".png"], "digit": [3, 7]}), pd.DataFrame({"file": ["d.png"], "digit": [1]})]
    back = _merge(tmp_path, name, frames, dataframe_header)
    pd.testing.assert_frame_equal(back, pd.concat(frames, ignore_index=True))


def test_txt_lines_of_items_and_results_read_back_as_two_columns(tmp_path):
    back = _merge(tmp_path, "txt", [["0.png: 7", "1.png: 2"], ["2.png: 1"]])
    assert back.to_dict("list") == {"item": ["0.png", "1.png", "2.png"], "result": [7, 2, 1]}


@pytest.mark.parametrize("name", ["txt", "csv", "parquet"])
def test_a_merge_that_fails_leaves_no_file(tmp_path, name):
    path = tmp_path / "out"
    with pytest.raises(RuntimeError), get_format(name).open_merge(str(path)) as writer:
        writer.add(mini_batch_result(0, ["a"]))
        raise RuntimeError("stop")
    assert os.listdir(tmp_path) == []
