"""The input-kind registry: kind name -> ``"module:class"``, imported on first use (as fsspec's
``registry`` maps a protocol to a lazily imported filesystem class).

A new kind is one new module (a stateless ``InputKind`` subclass, see ``kinds.base``) plus one line
in ``registry`` (or one ``register_kind`` call).
"""

from __future__ import annotations

import importlib

from snakebatch.kinds.base import InputKind

#: kind name -> "module:class", the module absolute or relative to ``snakebatch.kinds``
registry: dict[str, str] = {
    "file": ".files.kind:FileKind",
    "tabular": ".tables.kind:TableKind",
}
_instances: dict[str, InputKind] = {}
_PACKAGE = "snakebatch.kinds"


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
        kind = getattr(importlib.import_module(module_name, _PACKAGE), class_name)()
        _instances[name] = kind
    return kind


def register_kind(name: str, target: str) -> None:
    """Register (or replace) the kind ``name`` as ``"module:class"`` (absolute or relative to
    ``snakebatch.kinds``), imported on first ``get_kind(name)``."""
    registry[name] = target
    _instances.pop(name, None)
