"""How slow steps report progress, without knowing who shows it."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def __call__(self, message: str, *, detail: bool = False) -> None:
        """Report a step; ``detail`` lines (a tool's chatter) may be shown only transiently."""


def silent(message: str, *, detail: bool = False) -> None:
    """A Progress that shows nothing (for tests and library use)."""
