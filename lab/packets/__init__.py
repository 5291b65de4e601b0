"""Packets: capture the lab's frames, take them apart layer by layer, check their sums."""

from __future__ import annotations
