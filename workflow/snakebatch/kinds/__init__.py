"""Input kinds: one module per kind of dataset, behind the ``InputKind`` interface (``base``).

``get_kind(name)`` returns the kind registered under ``name`` (``file``: a mini-batch is a list of
local file paths; ``tabular``: a pandas DataFrame), importing its module on first use, as fsspec's
registry does for protocols. A new kind is one new module plus one line in ``registry``.
"""

from __future__ import annotations

import importlib

from snakebatch.kinds.base import Cache, Descriptor, InputKind, Item, Materialised, MaterialiseError

# kind name -> "module:class", the module relative to this package
registry: dict[str, str] = {
    "file": ".files.kind:FileKind",
    "tabular": ".tables.kind:TableKind",
}
_instances: dict[str, InputKind] = {}


def known_kinds() -> tuple[str, ...]:
    """The registered kind names, in registration order."""
    return tuple(registry)


def get_kind(name: str) -> InputKind:
    """The InputKind registered as ``name`` (one shared, stateless instance). Raises ValueError
    naming the known kinds for an unknown name."""
    kind = _instances.get(name)
    if kind is None:
        if name not in registry:
            raise ValueError(f"unknown input kind {name!r}; known kinds: {', '.join(known_kinds())}")
        module_name, class_name = registry[name].split(":")
        kind = getattr(importlib.import_module(module_name, __name__), class_name)()
        _instances[name] = kind
    return kind


def register_kind(name: str, target: str) -> None:
    """Register (or replace) the kind ``name`` as ``"module:class"`` (absolute or relative to
    this package), imported on first ``get_kind(name)``."""
    registry[name] = target
    _instances.pop(name, None)


__all__ = ["Cache", "Descriptor", "InputKind", "Item", "Materialised", "MaterialiseError", "get_kind", "known_kinds",
           "register_kind", "registry"]
