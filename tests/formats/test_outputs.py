import pandas as pd
import pytest

from snakebatch.formats import get_format
from snakebatch.formats.base import ResultTypeError, result_length
from snakebatch.formats.txt import to_txt_lines


def test_list_and_tuple_elements_become_str_lines():
    assert to_txt_lines(["a: 1", 2, None]) == ["a: 1", "2", "None"]
    assert to_txt_lines((1.5, ("x", 2))) == ["1.5", "('x', 2)"]


def test_line_breaks_inside_an_element_are_escaped():
    assert to_txt_lines(["two\nlines", "cr\r"]) == ["two\\nlines", "cr\\r"]


def test_dataframe_rows_are_space_separated_without_header_or_index():
    frame = pd.DataFrame({"file": ["a.png", "b.png"], "digit": [3, 7]}, index=[10, 11])
    assert to_txt_lines(frame) == ["a.png 3", "b.png 7"]


def test_dataframe_value_with_a_line_break_stays_on_one_line():
    frame = pd.DataFrame({"a": ["x\ny", "z"], "b": [1, 2]})
    assert to_txt_lines(frame) == ["x\\ny 1", "z 2"]


@pytest.mark.parametrize("bad", [None, "abc", 5, {"a": 1}])
def test_other_return_types_are_rejected_with_the_type(bad):
    with pytest.raises(ResultTypeError) as info:
        get_format("txt").encode(bad)
    assert str(info.value).startswith(f"run() returned {type(bad).__name__}; it must return a list, tuple or pandas DataFrame")


def test_result_length():
    assert result_length([1, 2]) == 2
    assert result_length(pd.DataFrame({"a": [1, 2, 3]})) == 3


def test_every_splitlines_break_and_lone_surrogates_are_escaped():
    lines = to_txt_lines(["a\x0bb\x0cc\x1cd\x85e\u2028f\u2029g", "bad\udcff"])
    assert lines == ["a\\x0bb\\x0cc\\x1cd\\x85e\\u2028f\\u2029g", "bad\\udcff"]
    assert "\n".join(lines).splitlines() == lines
    "\n".join(lines).encode("utf-8")


def test_dataframe_carriage_return_and_surrogates_stay_on_one_line():
    frame = pd.DataFrame({"a": ["x\ry", "ok"], "b": ["\udcff", "z"]}, dtype=object)
    assert to_txt_lines(frame) == ["x\\ry \\udcff", "ok z"]
