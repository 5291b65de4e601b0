"""Frames taken apart layer by layer: Ethernet, ARP or IPv4, then TCP, UDP or ICMP, then data.

A UDP datagram to port 4789 carries VXLAN (RFC 7348): an 8-byte header (flags, the
24-bit network identifier) and then a whole inner Ethernet frame, which is taken
apart the same way, one level deeper: what a capture on the underlay between the
machines of a lab across machines holds (docs/scale-out.md).

Sans-IO and byte by byte: each header is unpacked with :mod:`struct` at the offset
where the previous one ends, so every layer knows the bytes it came from (what the
hex view colours), and each checksum is recomputed from the captured bytes with
the project's own :mod:`lab.packets.checksum`. Reading the file is
:mod:`lab.packets.pcap`'s job. The field names and values are what scapy and
tshark give for the same frames (the tests hold them to both).
"""

from __future__ import annotations

import contextlib
import gc
import socket
import struct
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

from lab.errors import PacketError
from lab.packets import pcap
from lab.packets.checksum import Verdict, icmp_verdict, ipv4_verdict, segment_verdict

ETH_HEADER = 14
VXLAN_PORT = 4789  # IANA's; Docker's overlay uses it unless told otherwise
VXLAN_I_FLAG = 0x08  # "the VNI is valid": set in every VXLAN header (RFC 7348, 5)
VXLAN_HEADER = 8
ICMP_NAMES = {
    (0, 0): "echo reply",
    (8, 0): "echo request",
    (3, 3): "port unreachable",
    (11, 0): "time exceeded",
}


class Layer(NamedTuple):
    name: str  # Ethernet, ARP, IPv4, TCP, UDP, ICMP, data
    start: int  # byte offset in the frame where this header begins
    end: int  # ...and where it ends (for data: where the frame's payload ends)
    fields: dict[str, int | str]


class Header(NamedTuple):
    """A layer as it was unpacked: the cheap form every frame gets (see :class:`Frame`)."""

    name: str
    start: int
    end: int
    values: tuple[Any, ...]  # as struct unpacked them, in header order


class ChecksumCheck(NamedTuple):
    layer: str
    carried: int
    computed: int
    verdict: Verdict


class Frame:
    """A frame taken apart. Every frame's headers are unpacked and its checksums judged
    when it is read; the named fields of its layers are made only when asked for (a
    listing of 100,000 frames needs addresses, a summary and verdicts, never all fields:
    `lab bench packets` measures it against tshark)."""

    __slots__ = ("_layers", "checksums", "headers", "number", "raw", "time")

    def __init__(
        self,
        number: int,
        time: float,
        raw: bytes,
        headers: tuple[Header, ...],
        checksums: tuple[ChecksumCheck, ...] = (),
    ) -> None:
        self.number = number  # from 1, as Wireshark counts
        self.time = time  # seconds since the epoch, from the capture
        self.raw = raw
        self.headers = headers
        self.checksums = checksums
        self._layers: tuple[Layer, ...] | None = None

    def __repr__(self) -> str:
        return f"Frame({self.number}, {self.summary!r}, {len(self.raw)} bytes)"

    @property
    def layers(self) -> tuple[Layer, ...]:
        if self._layers is None:
            self._layers = tuple(
                Layer(h.name, h.start, h.end, FIELDS[h.name](h.values)) for h in self.headers
            )
        return self._layers

    def layer(self, name: str) -> Layer | None:
        """The named layer; under VXLAN the inner frame's (what the lab's hosts sent), or
        the VXLAN header itself. The envelope's outer layers are ``frame.layers``: a
        fallback to them would make a tunnelled TCP segment answer to "UDP" (port 4789)."""
        inner = self.inner if len(self.headers) > 4 else 0
        order = [*range(inner, len(self.headers)), *([inner - 1] if inner else [])]
        for i in order:  # a handful of layers: a plain loop
            if self.headers[i].name == name:
                found: Layer = self.layers[i]
                return found
        return None

    @property
    def payload(self) -> bytes:
        data = self.headers[-1]
        return self.raw[data.start : data.end] if data.name == "data" else b""

    @property
    def src(self) -> str:
        """The sender's address: under VXLAN, the inner frame's (a lab host's, not its
        machine's: ``outer_src`` is the machine's)."""
        return self._address(self.inner, 8, 6)

    @property
    def dst(self) -> str:
        return self._address(self.inner, 9, 8)

    @property
    def outer_src(self) -> str:
        return self._address(0, 8, 6)

    @property
    def outer_dst(self) -> str:
        return self._address(0, 9, 8)

    def _address(self, at: int, ipv4: int, arp: int) -> str:
        """An address of the network header after the Ethernet header at ``at``."""
        network = self.headers[at + 1] if len(self.headers) > at + 1 else None  # IPv4 or ARP
        if network is None or network.name not in ("IPv4", "ARP"):
            return ""
        return socket.inet_ntoa(network.values[ipv4 if network.name == "IPv4" else arp])

    @property
    def inner(self) -> int:
        """Where the innermost frame's headers begin in ``headers`` (0: not tunnelled)."""
        for i in range(len(self.headers) - 1, -1, -1):
            if self.headers[i].name == "VXLAN":
                return i + 1
        return 0

    @property
    def summary(self) -> str:
        """One short phrase: what a ladder diagram's arrow is labelled with (a VXLAN
        frame: its network id, then the inner frame's phrase)."""
        inner = self.inner
        if inner:
            vni = self.headers[inner - 1].values[1] >> 8
            return f"VXLAN {vni}: {_summary(self.headers[inner:], self.payload)}"
        return _summary(self.headers, self.payload)


def _summary(headers: tuple[Header, ...], payload: bytes) -> str:
    if len(headers) < 2:
        return headers[-1].name if headers else "?"
    top = headers[2] if len(headers) > 2 else headers[1]
    if top.name == "TCP":
        size = len(payload)
        text = f"TCP [{flag_names(top.values[5])}]"
        return f"{text} {size} B" if size else text
    if top.name == "UDP":
        return f"UDP {len(payload)} B"
    if top.name == "ICMP":
        kind = (top.values[0], top.values[1])
        return f"ICMP {ICMP_NAMES.get(kind, f'type {kind[0]} code {kind[1]}')}"
    if headers[1].name == "ARP":
        return "ARP who-has" if headers[1].values[4] == 1 else "ARP is-at"
    return headers[-1].name


@cache  # 256 possible values, and every TCP segment asks
def flag_names(bits: int) -> str:
    """TCP flags the way tcpdump-style tools spell them: SYN, ACK, PSH..."""
    names = ("FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR")
    picked = [names[i] for i in range(8) if bits >> i & 1]
    order = ("SYN", "FIN", "RST", "PSH", "ACK", "URG", "ECE", "CWR")
    return ", ".join(sorted(picked, key=order.index))


def read(path: Path) -> list[Frame]:
    """Every frame of a pcap or pcapng file, taken apart."""
    with no_cycle_collection():
        return list(frames(path))


@contextlib.contextmanager
def no_cycle_collection() -> Iterator[None]:
    """Frames hold no reference cycles, yet each one made wakes Python's cycle collector,
    which walks every frame made so far: with it on, reading 100,000 frames took twice as
    long. Reference counting still frees everything."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def frames(path: Path) -> Iterator[Frame]:
    try:
        records = pcap.records(path)
        for number, (time, raw) in enumerate(records, 1):
            yield dissect(raw, time, number)
    except (OSError, pcap.PcapError) as exc:
        raise PacketError(f"cannot read {path} as a capture: {exc}") from None


# Headers and checks are made with tuple.__new__: a NamedTuple's own constructor is a
# Python function, three times slower, and a listing makes half a million of them.
_new: Any = tuple.__new__


def dissect(raw: bytes, time: float = 0.0, number: int = 1, *, tunnel: bool = True) -> Frame:
    """One Ethernet frame, from its bytes. A header cut short ends the dissection there:
    what is left is shown as data, never guessed at. ``tunnel``: take VXLAN apart (one
    level only: a frame inside the inner frame is data, so a crafted nest cannot recurse)."""
    if len(raw) < ETH_HEADER:
        data = _new(Header, ("data", 0, len(raw), ("length", len(raw))))
        return Frame(number, time, raw, (data,))
    ether = ETHER.unpack_from(raw)
    headers = [_new(Header, ("Ethernet", 0, ETH_HEADER, ether))]
    checks: list[ChecksumCheck] = []
    kind = ether[2]
    if kind == 0x0806 and len(raw) >= ETH_HEADER + ARP_BODY.size:
        arp = ARP_BODY.unpack_from(raw, ETH_HEADER)
        headers.append(_new(Header, ("ARP", ETH_HEADER, ETH_HEADER + ARP_BODY.size, arp)))
    elif kind == 0x0800 and len(raw) >= ETH_HEADER + IPV4.size:
        _ipv4(raw, headers, checks, tunnel)
    else:
        headers.append(
            _new(Header, ("data", ETH_HEADER, len(raw), ("length", len(raw) - ETH_HEADER)))
        )
    return Frame(number, time, raw, tuple(headers), tuple(checks))


def _ipv4(raw: bytes, headers: list[Header], checks: list[ChecksumCheck], tunnel: bool) -> None:
    start = ETH_HEADER
    ip = IPV4.unpack_from(raw, start)
    header_end = start + (ip[0] & 0x0F) * 4
    end = min(start + ip[2], len(raw))  # what follows the total length is Ethernet padding
    headers.append(_new(Header, ("IPv4", start, header_end, ip)))
    judged, carried, computed = ipv4_verdict(raw[start:header_end])
    checks.append(_new(ChecksumCheck, ("IPv4", carried, computed, judged)))
    frag, proto = ip[4], ip[6]
    if frag & 0x3FFF:  # an offset, or more fragments to come: not a whole datagram
        headers.append(
            _new(Header, ("data", header_end, end, ("fragment_offset", (frag & 0x1FFF) * 8)))
        )
        return
    segment = raw[header_end:end]
    payload_start = header_end
    name = PROTOCOLS.get(proto)
    if name is not None and len(segment) >= MINIMUM[proto]:
        unpacked = HEADERS[proto].unpack_from(segment)
        payload_start += (unpacked[4] >> 4) * 4 if proto == 6 else 8
        headers.append(_new(Header, (name, header_end, payload_start, unpacked)))
        if proto == 1:
            judged, carried, computed = icmp_verdict(segment)
        else:
            judged, carried, computed = segment_verdict(ip[8] + ip[9], proto, segment)
        checks.append(_new(ChecksumCheck, (name, carried, computed, judged)))
    elif name is not None:  # a header cut short: nothing to sum, and it cannot be whole
        checks.append(_new(ChecksumCheck, (name, 0, 0, Verdict.INVALID)))
    if (
        tunnel
        and proto == 17
        and len(segment) >= MINIMUM[17] + VXLAN_HEADER + ETH_HEADER
        and headers[-1].values[1] == VXLAN_PORT
        and raw[payload_start] & VXLAN_I_FLAG  # a VNI is there: RFC 7348 requires the bit
    ):
        _vxlan(raw, payload_start, end, headers, checks)
        return
    headers.append(
        _new(Header, ("data", payload_start, end, ("length", max(0, end - payload_start))))
    )


def _vxlan(
    raw: bytes, start: int, end: int, headers: list[Header], checks: list[ChecksumCheck]
) -> None:
    """The VXLAN header at ``start``, then the inner frame to ``end``, taken apart as
    any frame is, its offsets counted in the outer frame (the hex view colours them)."""
    vxlan = VXLAN.unpack_from(raw, start)
    inner_start = start + VXLAN_HEADER
    headers.append(_new(Header, ("VXLAN", start, inner_start, vxlan)))
    inner = dissect(raw[inner_start:end], tunnel=False)
    for h in inner.headers:
        headers.append(_new(Header, (h.name, h.start + inner_start, h.end + inner_start, h.values)))
    checks.extend(inner.checksums)


def _mac(raw: bytes) -> str:
    return raw.hex(":")


def _ethernet(v: tuple[Any, ...]) -> dict[str, int | str]:
    return {"dst": _mac(v[0]), "src": _mac(v[1]), "type": v[2]}


def _arp(v: tuple[Any, ...]) -> dict[str, int | str]:
    return {
        "op": v[4],
        "sender_mac": _mac(v[5]),
        "sender_ip": socket.inet_ntoa(v[6]),
        "target_mac": _mac(v[7]),
        "target_ip": socket.inet_ntoa(v[8]),
    }


def _ipv4_fields(v: tuple[Any, ...]) -> dict[str, int | str]:
    return {
        "version": v[0] >> 4,
        "header_length": (v[0] & 0x0F) * 4,
        "total_length": v[2],
        "id": v[3],
        "flags": v[4] >> 13,
        "ttl": v[5],
        "protocol": v[6],
        "checksum": v[7],
        "src": socket.inet_ntoa(v[8]),
        "dst": socket.inet_ntoa(v[9]),
    }


def _tcp(v: tuple[Any, ...]) -> dict[str, int | str]:
    return {
        "src_port": v[0],
        "dst_port": v[1],
        "seq": v[2],
        "ack": v[3],
        "header_length": (v[4] >> 4) * 4,
        "flags": v[5] | (v[4] & 0x01) << 8,  # the ninth flag (NS) sits in the offset byte
        "flag_names": flag_names(v[5]),
        "window": v[6],
        "checksum": v[7],
    }


def _udp(v: tuple[Any, ...]) -> dict[str, int | str]:
    return {"src_port": v[0], "dst_port": v[1], "length": v[2], "checksum": v[3]}


def _icmp(v: tuple[Any, ...]) -> dict[str, int | str]:
    return {"type": v[0], "code": v[1], "checksum": v[2]}


def _vxlan_fields(v: tuple[Any, ...]) -> dict[str, int | str]:
    # flags: 0x08 is "the network id is valid" (the I bit); the id is the top 24 bits
    # of the second word, its low byte reserved.
    return {"flags": v[0] >> 24, "vni": v[1] >> 8}


def _data(v: tuple[Any, ...]) -> dict[str, int | str]:
    return {v[0]: v[1]}


ETHER = struct.Struct("!6s6sH")
ARP_BODY = struct.Struct("!HHBBH6s4s6s4s")
IPV4 = struct.Struct("!BBHHHBBH4s4s")
VXLAN = struct.Struct("!II")
PROTOCOLS = {6: "TCP", 17: "UDP", 1: "ICMP"}
HEADERS = {
    6: struct.Struct("!HHIIBBHH"),  # up to the checksum; the urgent pointer is not shown
    17: struct.Struct("!HHHH"),
    1: struct.Struct("!BBH"),
}
MINIMUM = {6: 20, 17: 8, 1: 8}  # bytes a whole header needs
FIELDS: dict[str, Callable[[tuple[Any, ...]], dict[str, int | str]]] = {
    "Ethernet": _ethernet,
    "ARP": _arp,
    "IPv4": _ipv4_fields,
    "TCP": _tcp,
    "UDP": _udp,
    "ICMP": _icmp,
    "VXLAN": _vxlan_fields,
    "data": _data,
}
