"""append_row encoding: turn what ``run()`` returned into the lines of the merged file.

txt follows ParallelRunStep: ``str(element)`` per element of a list or tuple; a pandas DataFrame
gives one line per row, values separated by a space, no header, no index. A line break inside an
element is written as its escape (``\\n``, ``\\r``, ``\\x0b``, ``\\u2028`` ...: every break
``str.splitlines`` knows), and a lone surrogate as ``\\udcff``, so one result is always one UTF-8 line.
"""

from __future__ import annotations


class ResultTypeError(TypeError):
    """run() returned something other than a list, tuple or pandas DataFrame."""


def _is_dataframe(value) -> bool:
    return type(value).__name__ == "DataFrame" and type(value).__module__.startswith("pandas")


# Every character str.splitlines() breaks on, written as its escape, so one result is one line.
_LINE_BREAKS = {ord(c): c.encode("unicode_escape").decode("ascii")
                for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"}


def _one_line(text: str) -> str:
    line = text.translate(_LINE_BREAKS)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: keep them visible as \udcff
        line = line.encode("utf-8", "backslashreplace").decode("utf-8")
    return line


def result_length(result) -> int:
    """Number of elements (list/tuple) or rows (DataFrame) in a run() result.

    Raises ResultTypeError naming the type for anything else (None included)."""
    if isinstance(result, (list, tuple)) or _is_dataframe(result):
        return len(result)
    raise ResultTypeError(
        f"run() returned {type(result).__name__}; it must return a list, tuple or pandas DataFrame "
        "with one element per successful item of the mini-batch"
    )


def to_txt_lines(result) -> list[str]:
    """The txt lines of a run() result (see module doc). Raises ResultTypeError."""
    result_length(result)
    if _is_dataframe(result):
        if result.shape[1] == 0:
            return [""] * len(result)
        try:
            text = result.to_csv(sep=" ", header=False, index=False, lineterminator="\n")
            lines = text.split("\n")[:-1] if text else []
        except UnicodeError:
            lines = []
        if len(lines) != len(result) or any(_one_line(line) != line for line in lines):
            # a value held a line break or an unencodable character: escape value by value
            lines = [" ".join(_one_line(str(v)) for v in row) for row in result.itertuples(index=False)]
        return lines
    return [_one_line(str(element)) for element in result]


ENCODERS = {"txt": to_txt_lines}


def encode_result(result, append_row_format: str) -> list[str]:
    """Encode a run() result for ``append_row_format`` (only ``txt`` in this version)."""
    return ENCODERS[append_row_format](result)
