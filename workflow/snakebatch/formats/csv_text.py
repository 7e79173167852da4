"""The CSV text of a pandas DataFrame, byte for byte what ``DataFrame.to_csv(index=False,
header=False, lineterminator="\\n", sep=SEP)`` writes, built with pyarrow compute kernels instead
of pandas' per-value Python formatting (about ten times faster on numeric tables).

What pandas writes, and what this module reproduces (pandas 3, ``quoting`` QUOTE_MINIMAL,
``na_rep=""``, ``doublequote``, no ``float_format``):

- integers: ``str(n)``; booleans: ``True`` / ``False``;
- floats: ``numpy.ndarray.astype(str)`` of the column (the shortest text that reads back the same
  value, ``1.0``, ``0.0001``, ``1e-05``, ``1e+16``; float32 columns with float32's own digits);
  NaN is an empty field. pyarrow's cast to text gives the same digits but other layouts, so values
  in the range where both write positional digits (float64: 1e-4 <= |x| < 1e7, float32:
  1e-4 <= |x| < 1e6, and zero) take pyarrow's text plus ``.0`` where it has no point, and the
  others (usually none) numpy's text;
- text: as is, or quoted (``"..."``, inner quotes doubled) when it holds the separator, a quote
  or ``\\n`` (the line terminator; a lone ``\\r`` is not quoted, as Python's csv module does
  with ``lineterminator="\\n"``); missing values are empty fields;
- a row whose only field is empty is written ``""``.

Any other column type (datetimes, categoricals, nullable extension types, objects that are not
all text, text pyarrow cannot encode such as lone surrogates) and separators that can occur in
a formatted number make ``frame_csv_text`` return None: the caller then asks pandas, so the
output is the same either way, only slower. ``tests/formats/test_csv_text.py`` checks the equality
against pandas on generated frames.
"""

from __future__ import annotations

import re

# separators that never occur inside a formatted number, bool or missing value
FAST_SEPARATORS = frozenset({",", "\t", " ", ";", "|"})
# [lower, upper) of |x| where pyarrow's and numpy's float texts agree once ".0" is added
_POSITIONAL = {8: (1e-4, 1e7), 4: (1e-4, 1e6)}


def _scalar(value: str):
    """``value`` as a pyarrow large_string scalar (the kernels want one string type)."""
    import pyarrow as pa

    return pa.scalar(value, pa.large_string())


class _Unsupported(Exception):
    """A column the fast path does not format: pandas writes the frame."""


def _float_text(values):
    """Text of a float32/float64 numpy array as pandas writes it; NaN -> null."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    lower, upper = _POSITIONAL[values.dtype.itemsize]
    text = pc.cast(pa.array(values, from_pandas=True), pa.large_string())
    pointed = pc.match_substring(text, ".")
    if not pc.all(pointed).as_py():  # integral values: pyarrow writes 3, numpy 3.0
        text = pc.if_else(pointed, text, pc.binary_join_element_wise(text, _scalar(".0"), _scalar("")))
    with np.errstate(invalid="ignore"):
        size = np.abs(values.astype(np.float64, copy=False))
        other = ~(((size >= lower) & (size < upper)) | (size == 0) | np.isnan(size))
    if other.any():
        replacement = pa.array(values[other].astype(str), type=pa.large_string())
        text = pc.replace_with_mask(text, pa.array(other), replacement)
    return text


def _is_text(series) -> bool:
    import pandas as pd

    if isinstance(series.dtype, pd.StringDtype):
        return True
    return series.dtype == object and pd.api.types.infer_dtype(series, skipna=True) in ("string", "empty")


def _column_text(series, sep: str):
    """The fields of one column as a pyarrow large_string array (nulls: empty fields)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    dtype = series.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iu":
        return pc.cast(pa.array(series.to_numpy()), pa.large_string())
    if isinstance(dtype, np.dtype) and dtype.kind == "b":
        return pc.if_else(pa.array(series.to_numpy()), _scalar("True"), _scalar("False"))
    if isinstance(dtype, np.dtype) and dtype.kind == "f" and dtype.itemsize in _POSITIONAL:
        return _float_text(series.to_numpy())
    if not _is_text(series):
        raise _Unsupported(str(dtype))
    try:
        text = pa.array(series, type=pa.large_string(), from_pandas=True)
    except (pa.ArrowException, UnicodeError, TypeError, ValueError) as exc:
        raise _Unsupported(str(exc)) from None
    special = pc.match_substring_regex(text, "[" + re.escape(sep) + '"\n]')
    if pc.any(special).as_py():
        quote = _scalar('"')
        quoted = pc.binary_join_element_wise(quote, pc.replace_substring(text, '"', '""'), quote, _scalar(""))
        text = pc.if_else(special, quoted, text)
    return text


def frame_csv_text(frame, sep: str = ",") -> str | None:
    """``frame.to_csv(index=False, header=False, lineterminator="\\n", sep=sep)`` (see the module
    doc), or None when a column or ``sep`` is outside what this module formats. ``frame``: a
    pandas DataFrame with at least one row and one column (else None)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    rows, width = frame.shape
    if sep not in FAST_SEPARATORS or not rows or not width:
        return None
    try:
        columns = [_column_text(frame.iloc[:, i], sep) for i in range(width)]
    except _Unsupported:
        return None
    empty = _scalar("")
    if width == 1:  # a record of one empty field is written as "" (Python's csv module)
        line = pc.fill_null(columns[0], empty)
        line = pc.if_else(pc.equal(line, empty), _scalar('""'), line)
    else:
        line = pc.binary_join_element_wise(*columns, _scalar(sep), null_handling="replace", null_replacement="")
    line = pc.binary_join_element_wise(line, empty, _scalar("\n"))
    if isinstance(line, pa.ChunkedArray):
        line = line.combine_chunks()
    offsets = np.frombuffer(line.buffers()[1], dtype=np.int64)[line.offset:line.offset + len(line) + 1]
    return line.buffers()[2][int(offsets[0]):int(offsets[-1])].to_pybytes().decode("utf-8")
