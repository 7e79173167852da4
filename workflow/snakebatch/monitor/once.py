"""Errors the monitor survives, logged once each.

The live view, the progress records' readers and the console's last words must never break the
run they watch, so they catch errors and go on; ``warn_once`` logs such an error the first time it
happens at one place (not every 0.5 s of the live view's tick), with its traceback, on the
``snakebatch.monitor`` logger (stderr when nothing else is configured).
"""

from __future__ import annotations

import logging

LOGGER = logging.getLogger("snakebatch.monitor")

#: (where, exception type name) of every error logged by this process
_WARNED: set[tuple[str, str]] = set()


def warn_once(where: str, exc: BaseException, trace: bool = True) -> bool:
    """Log ``exc``, caught while doing ``where`` (e.g. ``"the live view's update"``), as a
    warning (with its traceback unless ``trace`` is False), unless an error of the same type was
    logged for ``where`` before in this process. Returns whether it was logged. Raises nothing."""
    key = (where, type(exc).__name__)
    if key in _WARNED:
        return False
    _WARNED.add(key)
    LOGGER.warning("snakebatch: %s failed, going on without it (logged once): %s: %s", where,
                   type(exc).__name__, exc, exc_info=(type(exc), exc, exc.__traceback__) if trace else None)
    return True
