"""csv_text.frame_csv_text writes what pandas' to_csv writes, byte for byte, or declines (None)."""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from snakebatch.formats.csv_text import frame_csv_text
from snakebatch.formats.csv import to_csv_lines
from snakebatch.formats.txt import to_txt_lines

AWKWARD = ["plain", "with space", 'quote " inside', "comma, here", "ünïcödé ✓", "", "new\nline", "tab\there",
           None, "cr\rinside", "a|b;c", '"', ' lead', "trail "]


def pandas_text(frame, sep=","):
    return frame.to_csv(index=False, header=False, lineterminator="\n", sep=sep)


def mixed_frame(rows=600):
    rng = np.random.default_rng(11)
    frame = pd.DataFrame({
        "i": rng.integers(-10 ** 12, 10 ** 12, rows),
        "u": rng.integers(0, 255, rows).astype(np.uint8),
        "b": rng.integers(0, 2, rows).astype(bool),
        "f": rng.standard_normal(rows) * 10.0 ** rng.integers(-9, 22, rows),
        "g": (rng.standard_normal(rows) * 10.0 ** rng.integers(-9, 12, rows)).astype(np.float32),
        "whole": np.round(rng.standard_normal(rows) * 1000),
        "o": pd.Series([AWKWARD[i % len(AWKWARD)] for i in range(rows)], dtype=object),
        "s": pd.Series([AWKWARD[(i * 5) % len(AWKWARD)] for i in range(rows)], dtype="str"),
    })
    frame.loc[::7, "f"] = np.nan
    frame.loc[::11, "f"] = -0.0
    frame.loc[::5, "g"] = np.inf
    frame.loc[::13, "g"] = -np.inf
    frame.loc[::3, "whole"] = 0.0
    return frame


@pytest.mark.parametrize("sep", [",", "\t", " ", ";", "|"])
def test_a_mixed_frame_is_written_as_pandas_writes_it(sep):
    frame = mixed_frame()
    assert frame_csv_text(frame, sep) == pandas_text(frame, sep)


def test_awkward_text_is_quoted_where_pandas_quotes_it():
    frame = pd.DataFrame({"t": AWKWARD, "n": range(len(AWKWARD))})
    assert frame_csv_text(frame).split("\n")[:8] == [
        "plain,0", "with space,1", '"quote "" inside",2', '"comma, here",3', "ünïcödé ✓,4", ",5", '"new', 'line",6']
    assert frame_csv_text(frame) == pandas_text(frame)


@pytest.mark.parametrize("column", ["i", "b", "f", "g", "o", "s"])
def test_a_single_column_writes_an_empty_field_as_two_quotes(column):
    frame = mixed_frame(40)[[column]]
    assert frame_csv_text(frame) == pandas_text(frame)
    if column == "o":
        assert frame_csv_text(frame).split("\n")[5] == '""'


def test_float_layouts_around_the_switch_to_exponents():
    values = [1e-4, 9.99e-5, 1e-5, 0.5, 1.0, 1e6, 9999999.0, 1e7, 123456789.5, 1e15, 1e16, 1e22, 5e-324, -0.0,
              0.0, math.inf, -math.inf, math.nan]
    frame = pd.DataFrame({"d": values, "s": np.array(values, dtype=np.float32)})
    text = frame_csv_text(frame)
    assert text == pandas_text(frame)
    assert text.split("\n")[:5] == ["0.0001,1e-04", "9.99e-05,9.99e-05", "1e-05,1e-05", "0.5,0.5", "1.0,1.0"]


@pytest.mark.parametrize("frame", [
    pd.DataFrame({"d": pd.to_datetime(["2024-01-01", "2024-01-02"])}),
    pd.DataFrame({"n": pd.array([1, None], dtype="Int64")}),
    pd.DataFrame({"c": pd.Categorical(["a", "b"])}),
    pd.DataFrame({"o": [1, "a"]}),
    pd.DataFrame({"s": ["lone \udcff surrogate", "b"]}, dtype=object),
    pd.DataFrame({"h": np.array([1.5, 2.0], dtype=np.float16)}),
    pd.DataFrame(index=range(3)),
    pd.DataFrame({"a": []}),
])
def test_columns_it_does_not_format_are_left_to_pandas(frame):
    assert frame_csv_text(frame) is None


def test_a_separator_that_can_occur_in_numbers_is_left_to_pandas():
    assert frame_csv_text(pd.DataFrame({"a": [1.5]}), ".") is None


def test_csv_and_txt_lines_match_pandas_with_either_path():
    frame = mixed_frame(200)
    assert to_csv_lines(frame) == ([pandas_text(frame)[:-1]], "i,u,b,f,g,whole,o,s")
    text_only = frame.drop(columns=["o", "s"]).assign(t=["x y", "z"] * 100)
    assert to_txt_lines(text_only) == pandas_text(text_only, " ").split("\n")[:-1]
    dates = frame.assign(d=pd.Timestamp("2024-01-01"))  # pandas' path, same lines
    assert to_csv_lines(dates) == ([pandas_text(dates)[:-1]], "i,u,b,f,g,whole,o,s,d")


FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=64)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-2 ** 63, 2 ** 63 - 1), FLOATS, st.floats(width=32),
                          st.one_of(st.none(), st.text(max_size=6)), st.booleans()), min_size=1, max_size=30))
def test_generated_frames_match_pandas(rows):
    frame = pd.DataFrame(rows, columns=["i", "f", "g", "t", "b"]).astype(
        {"i": "int64", "f": "float64", "g": "float32", "t": object, "b": bool})
    text = frame_csv_text(frame)
    if text is not None:  # None: a lone surrogate, left to pandas
        assert text == pandas_text(frame)
