"""Input kinds: one subpackage per kind of dataset, behind the ``InputKind`` interface (``base``).

``get_kind(name)`` returns the kind registered under ``name`` (``file``: a mini-batch is a list of
local file paths, ``kinds.files``; ``tabular``: a pandas DataFrame, ``kinds.tables``), importing
its module on first use (``kinds.registry``: name -> ``"module:class"``). Every kind lists a
dataset's roots the same way (``kinds.listing``, with ``kinds.walk`` for local folders).
"""

from __future__ import annotations

from snakebatch.kinds.base import Cache, MiniBatch, InputKind, Item, Materialised, MaterialiseError
from snakebatch.kinds.registry import get_kind, known_kinds, register_kind

__all__ = ["Cache", "MiniBatch", "InputKind", "Item", "Materialised", "MaterialiseError", "get_kind", "known_kinds",
           "register_kind"]
