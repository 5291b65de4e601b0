"""What a power cut takes: the written-but-not-fsynced bytes of a file (sans-IO).

A real machine keeps written data in its page cache until the disk has it; an
``fsync`` is the promise that it does. ``Unsynced`` is that cache for one file,
kept apart from the file on disk (the backing file): writes and truncations go
into it, reads see it over the backing file, ``sync`` hands its changes to the
backing file, and ``drop`` forgets them, as losing power would. Jepsen's LazyFS
works the same way; ``lab.chaos.lazyfs`` is the filesystem around it.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field

ReadBacking = Callable[[int, int], bytes]  # (offset, length) -> bytes of the backing file


@dataclass
class Unsynced:
    """One file's changes since it was last synced."""

    size: int  # the file's length as programs see it
    cut: int | None = None  # the shortest length it was truncated to since the last sync
    starts: list[int] = field(default_factory=list)  # extents, sorted, never overlapping
    datas: list[bytearray] = field(default_factory=list)

    @property
    def dirty(self) -> bool:
        return self.cut is not None or bool(self.starts)

    @property
    def unsynced_bytes(self) -> int:
        return sum(len(d) for d in self.datas)

    def write(self, offset: int, data: bytes) -> None:
        if not data:
            return
        end = offset + len(data)
        # Every extent touching [offset, end] (adjacent ones too) merges into one.
        first = bisect.bisect_left(self.starts, offset)
        if first > 0 and self.starts[first - 1] + len(self.datas[first - 1]) >= offset:
            first -= 1
        last = first
        while last < len(self.starts) and self.starts[last] <= end:
            last += 1
        merged_start = min([offset, *self.starts[first:last]])
        merged_end = max(
            [
                end,
                *(
                    s + len(d)
                    for s, d in zip(self.starts[first:last], self.datas[first:last], strict=True)
                ),
            ]
        )
        merged = bytearray(merged_end - merged_start)
        for s, d in zip(self.starts[first:last], self.datas[first:last], strict=True):
            merged[s - merged_start : s - merged_start + len(d)] = d
        merged[offset - merged_start : end - merged_start] = data
        self.starts[first:last] = [merged_start]
        self.datas[first:last] = [merged]
        self.size = max(self.size, end)

    def truncate(self, length: int) -> None:
        self.size = length
        self.cut = length if self.cut is None else min(self.cut, length)
        keep = bisect.bisect_left(self.starts, length)
        del self.starts[keep:], self.datas[keep:]
        if self.starts and self.starts[-1] + len(self.datas[-1]) > length:
            del self.datas[-1][length - self.starts[-1] :]

    def read(self, offset: int, length: int, backing: ReadBacking, backing_size: int) -> bytes:
        """What a program reads: the backing file as far as it still counts, then the
        unsynced extents over it (zeros where neither has data: a hole)."""
        length = max(0, min(length, self.size - offset))
        out = bytearray(length)
        visible = min(backing_size, self.cut if self.cut is not None else backing_size)
        if offset < visible and length:
            chunk = backing(offset, min(length, visible - offset))
            out[: len(chunk)] = chunk
        for s, d in zip(self.starts, self.datas, strict=True):
            lo, hi = max(s, offset), min(s + len(d), offset + length)
            if lo < hi:
                out[lo - offset : hi - offset] = d[lo - s : hi - s]
        return bytes(out)

    def sync_plan(self) -> list[tuple[str, int, bytes]]:
        """What the backing file must be given, in order: ("truncate", length, b"") and
        ("write", offset, data) steps; then the caller fsyncs it and calls ``synced``."""
        plan: list[tuple[str, int, bytes]] = []
        if self.cut is not None:
            plan.append(("truncate", self.cut, b""))
        plan += [("write", s, bytes(d)) for s, d in zip(self.starts, self.datas, strict=True)]
        plan.append(("truncate", self.size, b""))
        return plan

    def synced(self) -> None:
        self.cut = None
        self.starts.clear()
        self.datas.clear()

    def drop(self, backing_size: int) -> int:
        """Forget every unsynced change, as a power cut does; how many bytes were lost."""
        lost = self.unsynced_bytes
        self.synced()
        self.size = backing_size
        return lost
