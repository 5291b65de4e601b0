"""A pcap stream read as it arrives (sans-IO): bytes in, (time, frame) records out.

The capture helper writes the pcap format with nanosecond timestamps (magic
a1b23c4d); records arrive in pieces of any size over a container's output.
"""

from __future__ import annotations

import struct

MAGIC_NS = 0xA1B23C4D
MAGIC_US = 0xA1B2C3D4
HEADER = 24
RECORD = 16


class PcapError(ValueError):
    pass


class PcapStream:
    def __init__(self) -> None:
        self._buf = b""
        self._scale = 0.0  # seconds per fraction unit, known once the header has come

    def feed(self, data: bytes) -> list[tuple[float, bytes]]:
        """The records completed by ``data``: (wall-clock time, frame bytes)."""
        self._buf += data
        out: list[tuple[float, bytes]] = []
        if not self._scale:
            if len(self._buf) < HEADER:
                return out
            (magic,) = struct.unpack_from("<I", self._buf)
            if magic not in (MAGIC_NS, MAGIC_US):
                raise PcapError(f"not a little-endian pcap stream (magic {magic:#x})")
            self._scale = 1e-9 if magic == MAGIC_NS else 1e-6
            self._buf = self._buf[HEADER:]
        while len(self._buf) >= RECORD:
            seconds, fraction, kept, _wire = struct.unpack_from("<IIII", self._buf)
            if len(self._buf) < RECORD + kept:
                break
            out.append((seconds + fraction * self._scale, self._buf[RECORD : RECORD + kept]))
            self._buf = self._buf[RECORD + kept :]
        return out
