"""Output formats (``append_row_format``): one module per format, behind the ``OutputFormat``
interface (``base``): encode a run() result in the worker, write the merged file in gather, read
it back (``snakebatch.read_results``), and whether item-level reuse applies.

``get_format(name)`` returns the format registered under ``name`` (``txt``, ``csv``,
``parquet``), importing its module on first use, as ``snakebatch.kinds.get_kind`` does for input
kinds. A new format is one new module plus one line in ``registry``.
"""

from __future__ import annotations

import importlib

from snakebatch.formats.base import Encoded, MergeWriter, OutputFormat, ResultTypeError, result_length

# format name -> "module:class", the module relative to this package
registry: dict[str, str] = {
    "txt": ".txt:TxtFormat",
    "csv": ".csv:CsvFormat",
    "parquet": ".parquet:ParquetFormat",
}
_instances: dict[str, OutputFormat] = {}


def known_formats() -> tuple[str, ...]:
    """The registered format names, in registration order."""
    return tuple(registry)


def get_format(name: str) -> OutputFormat:
    """The OutputFormat registered as ``name`` (one shared, stateless instance). Raises
    ValueError naming the known formats for an unknown name."""
    output_format = _instances.get(name)
    if output_format is None:
        if name not in registry:
            raise ValueError(f"unknown append_row_format {name!r}; known formats: {', '.join(known_formats())}")
        module_name, class_name = registry[name].split(":")
        output_format = getattr(importlib.import_module(module_name, __name__), class_name)()
        _instances[name] = output_format
    return output_format


__all__ = ["Encoded", "MergeWriter", "OutputFormat", "ResultTypeError", "get_format", "known_formats",
           "registry", "result_length"]
