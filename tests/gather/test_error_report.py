"""The one reader of errors.jsonl (snakebatch.gather.error_report), used by read_errors, the report,
the status command and the console's note on tolerated failures."""

import json

import pytest

from helpers import write


def _line(i):
    return json.dumps({"item": f"d/{i}.png", "mini_batch": i, "error": f"ValueError: bad {i}"}) + "\n"


def test_the_reader_keeps_the_first_records_counts_all_and_hands_each_to_on_record(tmp_path):
    from snakebatch.gather.error_report import read_error_report

    path = write(tmp_path / "errors.jsonl", _line(0) + "\n" + _line(1) + _line(2) + "  \n" + _line(3))
    report = read_error_report(path, limit=2)
    assert [r["item"] for r in report.records] == ["d/0.png", "d/1.png"]
    assert report.total == 4
    seen = []
    report = read_error_report(path, limit=0, on_record=lambda r: seen.append(r["mini_batch"]))
    assert (report.records, report.total, seen) == ((), 4, [0, 1, 2, 3])
    assert [r["error"] for r in read_error_report(path).records] == [f"ValueError: bad {i}" for i in range(4)]


def test_a_bad_line_is_named_by_file_and_line_and_lines_past_the_limit_are_not_parsed(tmp_path):
    from snakebatch.gather.error_report import read_error_report
    from snakebatch.errors import ManifestError

    path = write(tmp_path / "errors.jsonl", _line(0) + "{torn\n")
    assert read_error_report(path, limit=1).total == 2   # counted, not parsed
    with pytest.raises(ManifestError) as info:
        read_error_report(path)
    assert str(info.value).startswith(f"{path}, line 2: not JSON: ")
    write(tmp_path / "list.jsonl", "[1]\n")
    with pytest.raises(ManifestError) as info:
        read_error_report(str(tmp_path / "list.jsonl"))
    assert str(info.value) == f"{tmp_path / 'list.jsonl'}, line 1: not a JSON object but list"
    with pytest.raises(ManifestError) as info:
        read_error_report(str(tmp_path / "none.jsonl"))
    assert str(info.value) == f"{tmp_path / 'none.jsonl'} does not exist: gather has not run for this run folder"
