"""Test hook, loaded by every Python process of a run whose PYTHONPATH holds this folder (Python
imports ``sitecustomize`` at start-up): while the file ``$HOSTILE_ENOSPC_FLAG`` exists, ``os.fsync``
of a file whose path matches the regex ``$HOSTILE_ENOSPC_PATTERN`` fails with ENOSPC ("No space left
on device"), as a full disk reports delayed allocation at fsync. Removing the flag frees the space.
Nothing of it is in the product code."""

import errno
import os
import re

_PATTERN = os.environ.get("HOSTILE_ENOSPC_PATTERN")
_FLAG = os.environ.get("HOSTILE_ENOSPC_FLAG")

if _PATTERN and _FLAG:
    _real_fsync = os.fsync
    _matches = re.compile(_PATTERN).search

    def _fsync(fd):
        if os.path.exists(_FLAG):
            number = fd if isinstance(fd, int) else fd.fileno()
            try:
                target = os.readlink(f"/proc/self/fd/{number}")
            except OSError:
                target = ""
            if _matches(target):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), target)
        return _real_fsync(fd)

    os.fsync = _fsync
