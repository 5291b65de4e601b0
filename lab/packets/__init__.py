"""Packets: capture the lab's frames, take them apart layer by layer, check their sums."""

from __future__ import annotations

from lab.errors import LabError


class PacketError(LabError):
    """A capture could not be taken, read or understood."""
