"""Named points where the crash tests kill litmon (``LITMON_FAILPOINT=name[:n]``: SIGKILL at the n-th hit,
default the first). Unset, :func:`hit` costs one dictionary look-up; nothing else reads the variable."""

from __future__ import annotations

import os
import signal

_hits: dict[str, int] = {}


def hit(name: str) -> None:
    wanted = os.environ.get("LITMON_FAILPOINT")
    if not wanted:
        return
    point, _, nth = wanted.partition(":")
    if point != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
