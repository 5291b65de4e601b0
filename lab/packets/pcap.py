"""Capture files read (sans-IO): bytes in, (time, frame) records out.

Two formats, as tcpdump and Wireshark write them: the classic pcap (either byte
order, microsecond or nanosecond timestamps) and pcapng (section header,
interface descriptions, enhanced and simple packet blocks; any other block is
skipped, as its length allows). Only Ethernet link types are taken apart by the
dissector, so a capture of any other (``tcpdump -i any`` writes Linux "cooked"
frames) is refused with one line rather than misread.

:class:`PcapStream` takes a stream in pieces of any size (a capture arriving over a
container's output); :func:`records` reads a whole file. Both are the same parser.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

MAGIC_US, MAGIC_NS = 0xA1B2C3D4, 0xA1B23C4D
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BYTE_ORDER = 0x1A2B3C4D
HEADER = 24
RECORD = 16
ETHERNET = 1
LINK_NAMES = {0: "BSD loopback", 101: "raw IP", 113: "Linux cooked (tcpdump -i any)", 276: "SLL2"}


class PcapError(ValueError):
    """The bytes are not a capture this reader understands (the message says why)."""


def link_error(linktype: int) -> PcapError:
    name = LINK_NAMES.get(linktype, f"link type {linktype}")
    return PcapError(
        f"frames of {name}, not Ethernet: capture on one interface (tcpdump -i eth0) to read "
        "them here"
    )


class PcapStream:
    """Classic pcap, little-endian, arriving in pieces (the capture helper writes it so)."""

    def __init__(self) -> None:
        self._buf = b""
        self._scale = 0.0  # seconds per fraction unit, known once the header has come

    def feed(self, data: bytes) -> list[tuple[float, bytes]]:
        """The records completed by ``data``: (wall-clock time, frame bytes)."""
        self._buf += data
        if not self._scale:
            if len(self._buf) < HEADER:
                return []
            (magic,) = struct.unpack_from("<I", self._buf)
            if magic not in (MAGIC_NS, MAGIC_US):
                raise PcapError(f"not a little-endian pcap stream (magic {magic:#x})")
            (linktype,) = struct.unpack_from("<I", self._buf, 20)
            if linktype != ETHERNET:
                raise link_error(linktype)
            self._scale = 1e-9 if magic == MAGIC_NS else 1e-6
            self._buf = self._buf[HEADER:]
        out, used = _classic(self._buf, 0, "<", self._scale, partial=True)
        self._buf = self._buf[used:]
        return out


class RecordCutter:
    """A classic little-endian pcap stream (the capture helper's) cut where its records
    end: the file header first, then each whole record, bytes untouched. What copies a
    live capture to a file or a pipe and must stop after N frames exactly."""

    def __init__(self) -> None:
        self._buf = b""
        self._started = False
        self._magic = MAGIC_NS
        self.frames = 0  # whole records handed out so far

    def feed(self, data: bytes) -> list[bytes]:
        """The pieces ``data`` completes: the header (once), then records, in order."""
        self._buf += data
        out: list[bytes] = []
        if not self._started:
            if len(self._buf) < HEADER:
                return out
            (magic,) = struct.unpack_from("<I", self._buf)
            if magic not in (MAGIC_NS, MAGIC_US):
                raise PcapError(f"not a little-endian pcap stream (magic {magic:#x})")
            out.append(self._buf[:HEADER])
            self._buf = self._buf[HEADER:]
            self._started, self._magic = True, magic
        at, end = 0, len(self._buf)
        while at + RECORD <= end:
            (kept,) = struct.unpack_from("<I", self._buf, at + 8)
            if at + RECORD + kept > end:
                break
            out.append(self._buf[at : at + RECORD + kept])
            self.frames += 1
            at += RECORD + kept
        self._buf = self._buf[at:]
        return out

    def time_of(self, record: bytes) -> float:
        """A record's timestamp, in seconds since the epoch."""
        seconds, fraction = struct.unpack_from("<II", record)
        return float(seconds + fraction * (1e-9 if self._magic == MAGIC_NS else 1e-6))


def records(path: Path) -> Iterator[tuple[float, bytes]]:
    """Every frame of a capture file: (time in seconds since the epoch, frame bytes)."""
    data = path.read_bytes()
    if len(data) < 4:
        raise PcapError("too short to be a capture")
    magic_le, magic_be = struct.unpack_from("<I", data)[0], struct.unpack_from(">I", data)[0]
    if magic_le == PCAPNG_SHB:
        yield from _pcapng(data)
        return
    for order, magic in (("<", magic_le), (">", magic_be)):
        if magic in (MAGIC_US, MAGIC_NS):
            if len(data) < HEADER:
                raise PcapError("cut short inside the file header")
            (linktype,) = struct.unpack_from(order + "I", data, 20)
            if linktype & 0xFFFF != ETHERNET:
                raise link_error(linktype & 0xFFFF)
            scale = 1e-9 if magic == MAGIC_NS else 1e-6
            out, _used = _classic(data, HEADER, order, scale, partial=False)
            yield from out
            return
    raise PcapError(f"neither pcap nor pcapng (first bytes {data[:4].hex()})")


def _classic(
    data: bytes, at: int, order: str, scale: float, *, partial: bool
) -> tuple[list[tuple[float, bytes]], int]:
    """Records from ``at`` on; a record cut short is an error in a file, more to come in a
    stream. Returns the records and where the first unread byte is."""
    head = struct.Struct(order + "IIII")
    out: list[tuple[float, bytes]] = []
    end = len(data)
    while at + RECORD <= end:
        seconds, fraction, kept, _wire = head.unpack_from(data, at)
        if at + RECORD + kept > end:
            break
        out.append((seconds + fraction * scale, data[at + RECORD : at + RECORD + kept]))
        at += RECORD + kept
    if at != end and not partial:
        raise PcapError(f"the last record is cut short ({end - at} bytes left over)")
    return out, at


def _pcapng(data: bytes) -> Iterator[tuple[float, bytes]]:
    try:
        yield from _pcapng_blocks(data)
    except struct.error as exc:  # a block whose body is shorter than its fields
        raise PcapError(f"a pcapng block is cut short ({exc})") from None


def _pcapng_blocks(data: bytes) -> Iterator[tuple[float, bytes]]:
    order = "<"
    interfaces: list[tuple[int, float]] = []  # (link type, seconds per timestamp unit)
    at = 0
    while at + 12 <= len(data):
        if struct.unpack_from("<I", data, at)[0] == PCAPNG_SHB:  # a section: its byte order
            order = "<" if struct.unpack_from("<I", data, at + 8)[0] == PCAPNG_BYTE_ORDER else ">"
            interfaces = []
        kind, length = struct.unpack_from(order + "II", data, at)
        if length < 12 or length % 4 or at + length > len(data):
            raise PcapError(f"a pcapng block at byte {at} has a bad length ({length})")
        body = data[at + 8 : at + length - 4]
        if kind == 1:  # interface description
            linktype = struct.unpack_from(order + "H", body)[0]
            interfaces.append((linktype, _resolution(body[8:], order)))
        elif kind in (6, 3):  # enhanced packet, simple packet
            if kind == 6:
                iface, high, low, kept = struct.unpack_from(order + "IIII", body)
                frame = body[20 : 20 + kept]
            else:
                iface, high, low = 0, 0, 0
                frame = body[4 : 4 + struct.unpack_from(order + "I", body)[0]]
            if iface >= len(interfaces):
                raise PcapError(f"a packet at byte {at} names interface {iface}, never described")
            linktype, scale = interfaces[iface]
            if linktype != ETHERNET:
                raise link_error(linktype)
            yield ((high << 32 | low) * scale, frame)
        at += length


def _resolution(options: bytes, order: str) -> float:
    """if_tsresol (option 9): 10**-n or 2**-n seconds per unit; microseconds by default."""
    at = 0
    while at + 4 <= len(options):
        code, size = struct.unpack_from(order + "HH", options, at)
        if code == 0:
            break
        if code == 9 and size >= 1:
            value = options[at + 4]
            return 2.0 ** -(value & 0x7F) if value & 0x80 else 10.0**-value
        at += 4 + (size + 3) // 4 * 4
    return 1e-6
