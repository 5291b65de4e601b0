"""Waiting, always to a deadline: the one poll loop of the driver."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from lab.errors import TimedOut

T = TypeVar("T")
POLL = 0.1


def wait_until(
    check: Callable[[], T | None],
    deadline: float,
    what: str,
    *,
    poll: float = POLL,
    fix: str = "",
) -> T:
    """Call ``check`` until it returns something truthy (returned) or ``deadline``
    seconds pass (``TimedOut`` naming ``what``). ``check`` may raise to stop early."""
    end = time.monotonic() + deadline
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= end:
            raise TimedOut(what, deadline, fix)
        time.sleep(min(poll, max(0.0, end - time.monotonic())))
