"""How slow steps report progress, without knowing who shows it."""

from __future__ import annotations

import time
from typing import Protocol


class Progress(Protocol):
    def __call__(self, message: str, *, detail: bool = False) -> None:
        """Report a step; ``detail`` lines (a tool's chatter) may be shown only transiently."""


def silent(message: str, *, detail: bool = False) -> None:
    """A Progress that shows nothing (for tests and library use)."""


class Phases:
    """Where the time of a slow step went: seconds per phase, in order."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self._last = time.monotonic()

    def done(self, phase: str) -> None:
        now = time.monotonic()
        self.phases[phase] = round(now - self._last, 3)
        self._last = now
