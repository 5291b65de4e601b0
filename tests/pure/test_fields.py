"""Each field's bytes (lab.packets.fields), held byte by byte: for frames written here field
by field with struct, every field the dissector names has a span, the span lies in its
layer, and the bytes of the span, decoded on their own, are the field's value."""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Callable

import pytest

from lab.packets import dissect as dissect_module
from lab.packets.dissect import Frame, dissect, flag_names
from lab.packets.fields import ELSEWHERE, SPANS, layer_spans
from lab.packets.view import frame_json

pytestmark = pytest.mark.pure

CLIENT, SERVER = "10.203.0.100", "10.203.0.20"
CLIENT_MAC, SERVER_MAC = "02:42:0a:cb:00:64", "02:42:0a:cb:00:14"


def mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def ether(kind: int, src: str = CLIENT_MAC, dst: str = SERVER_MAC) -> bytes:
    return mac(dst) + mac(src) + struct.pack("!H", kind)


def ipv4(
    protocol: int, body: bytes, *, ttl: int = 64, ident: int = 0x1234, frag: int = 0x4000
) -> bytes:
    """An IPv4 header before ``body`` (checksum left 0: the spans do not care)."""
    src, dst = socket.inet_aton(CLIENT), socket.inet_aton(SERVER)
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), ident, frag, ttl, protocol, 0xBEEF, src, dst
    )
    return header + body


def tcp(flags: int, payload: bytes = b"", *, options: bytes = b"") -> bytes:
    """A TCP header; ``flags`` may hold the ninth flag (NS, 0x100) in the offset byte."""
    words = (20 + len(options)) // 4
    offset_byte = words << 4 | flags >> 8
    header = struct.pack(
        "!HHIIBBHHH", 51180, 8080, 1865614395, 77, offset_byte, flags & 0xFF, 64240, 0x1D6B, 0
    )
    return header + options + payload


def udp(payload: bytes, sport: int = 39255, dport: int = 8080) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0xCAFE) + payload


def arp_request() -> bytes:
    body = struct.pack(
        "!HHBBH6s4s6s4s",
        1,
        0x0800,
        6,
        4,
        1,
        mac(CLIENT_MAC),
        socket.inet_aton(CLIENT),
        bytes(6),
        socket.inet_aton(SERVER),
    )
    return ether(0x0806, dst="ff:ff:ff:ff:ff:ff") + body


def vxlan(inner: bytes, vni: int = 4097) -> bytes:
    header = struct.pack("!II", 0x08 << 24, vni << 8)
    return ether(0x0800) + ipv4(17, udp(header + inner, 51000, 4789))


SYN_WITH_OPTIONS = ether(0x0800) + ipv4(6, tcp(0x002, options=bytes.fromhex("020405b401030307")))
DATA_WITH_NS = ether(0x0800) + ipv4(6, tcp(0x118, b"one"))
DATAGRAM = ether(0x0800) + ipv4(17, udp(b"hello?"))
PORT_UNREACHABLE = ether(0x0800, SERVER_MAC, CLIENT_MAC) + ipv4(
    1, struct.pack("!BBHI", 3, 3, 0x1234, 0) + ipv4(17, udp(b"x", 5, 9))[:28]
)
FRAGMENT = ether(0x0800) + ipv4(17, b"z" * 16, frag=0x2000 | 185)  # more to come, at 1480
NOT_IP = ether(0x86DD) + b"\x60" + bytes(39)  # IPv6: shown as data
FRAMES = {
    "a SYN with options": SYN_WITH_OPTIONS,
    "data with the ninth flag": DATA_WITH_NS,
    "a UDP datagram": DATAGRAM,
    "an ICMP port unreachable": PORT_UNREACHABLE,
    "an ARP request": arp_request(),
    "a TCP segment in VXLAN": vxlan(ether(0x0800) + ipv4(6, tcp(0x018, b"hi"))),
    "a fragment": FRAGMENT,
    "not IPv4": NOT_IP,
}


def uint(b: bytes) -> int:
    return int.from_bytes(b, "big")


# Each field decoded from its span's bytes alone, as a person reading the hex would.
DECODE: dict[tuple[str, str], Callable[[bytes], object]] = {
    ("Ethernet", "dst"): lambda b: b.hex(":"),
    ("Ethernet", "src"): lambda b: b.hex(":"),
    ("Ethernet", "type"): uint,
    ("ARP", "op"): uint,
    ("ARP", "sender_mac"): lambda b: b.hex(":"),
    ("ARP", "sender_ip"): socket.inet_ntoa,
    ("ARP", "target_mac"): lambda b: b.hex(":"),
    ("ARP", "target_ip"): socket.inet_ntoa,
    ("IPv4", "version"): lambda b: b[0] >> 4,
    ("IPv4", "header_length"): lambda b: (b[0] & 0x0F) * 4,
    ("IPv4", "total_length"): uint,
    ("IPv4", "id"): uint,
    ("IPv4", "flags"): lambda b: b[0] >> 5,
    ("IPv4", "ttl"): uint,
    ("IPv4", "protocol"): uint,
    ("IPv4", "checksum"): uint,
    ("IPv4", "src"): socket.inet_ntoa,
    ("IPv4", "dst"): socket.inet_ntoa,
    ("TCP", "src_port"): uint,
    ("TCP", "dst_port"): uint,
    ("TCP", "seq"): uint,
    ("TCP", "ack"): uint,
    ("TCP", "header_length"): lambda b: (b[0] >> 4) * 4,
    ("TCP", "flags"): lambda b: uint(b) & 0x1FF,
    ("TCP", "flag_names"): lambda b: flag_names(b[0]),
    ("TCP", "window"): uint,
    ("TCP", "checksum"): uint,
    ("UDP", "src_port"): uint,
    ("UDP", "dst_port"): uint,
    ("UDP", "length"): uint,
    ("UDP", "checksum"): uint,
    ("ICMP", "type"): uint,
    ("ICMP", "code"): uint,
    ("ICMP", "checksum"): uint,
    ("VXLAN", "flags"): uint,
    ("VXLAN", "vni"): uint,
    ("data", "length"): len,
    ("data", "fragment_offset"): lambda b: (uint(b) & 0x1FFF) * 8,
}


def fields_of(frame: Frame) -> list[tuple[str, str, object, tuple[int, int]]]:
    """(layer, field, value, span) for every field of every layer of ``frame``."""
    spans = layer_spans(frame.layers)
    return [
        (layer.name, name, value, spans[i][name])
        for i, layer in enumerate(frame.layers)
        for name, value in layer.fields.items()
    ]


@pytest.mark.parametrize("raw", FRAMES.values(), ids=FRAMES.keys())
def test_each_fields_bytes_decode_to_its_value(raw: bytes) -> None:
    frame = dissect(raw)
    for layer, name, value, (start, end) in fields_of(frame):
        assert DECODE[layer, name](raw[start:end]) == value, (layer, name, start, end)


@pytest.mark.parametrize("raw", FRAMES.values(), ids=FRAMES.keys())
def test_every_field_has_a_span_inside_its_layer(raw: bytes) -> None:
    frame = dissect(raw)
    spans = layer_spans(frame.layers)
    for layer, found in zip(frame.layers, spans, strict=True):
        assert set(found) == set(layer.fields), layer.name  # a field with no span fails here
        for name, (start, end) in found.items():
            if (layer.name, name) in ELSEWHERE:
                carrier = ELSEWHERE[layer.name, name][0]
                holder = next(x for x in frame.layers if x.name == carrier)
                assert holder.start <= start < end <= holder.end
            else:
                assert layer.start <= start <= end <= layer.end, (layer.name, name)
                assert end > start or layer.name == "data"


def test_the_frames_here_cover_every_field_the_table_and_the_dissector_know() -> None:
    seen = {
        (layer, name) for raw in FRAMES.values() for layer, name, _, _ in fields_of(dissect(raw))
    }
    table = {(layer, name) for layer, names in SPANS.items() for name in names}
    assert table | set(ELSEWHERE) | {("data", "length")} == seen == set(DECODE)
    assert set(SPANS) | {"data"} == set(dissect_module.FIELDS)  # a new layer needs spans


def test_byte_by_byte_for_a_syn() -> None:
    """Written out for one frame, as a reader checks the hex against the table."""
    frame = dissect(SYN_WITH_OPTIONS)
    spans = dict(zip([x.name for x in frame.layers], layer_spans(frame.layers), strict=True))
    assert spans["Ethernet"] == {"dst": (0, 6), "src": (6, 12), "type": (12, 14)}
    assert spans["IPv4"]["ttl"] == (22, 23)
    assert spans["IPv4"]["src"] == (26, 30)
    assert spans["TCP"]["dst_port"] == (36, 38)
    assert SYN_WITH_OPTIONS[36:38] == b"\x1f\x90"  # 8080
    assert spans["TCP"]["flags"] == (46, 48)
    assert spans["TCP"]["flag_names"] == (47, 48)
    assert frame.layers[2].end == 62  # 20 bytes of header and 8 of options (not fields)


def test_frame_json_carries_spans_and_the_frames_bytes() -> None:
    raw = vxlan(ether(0x0800) + ipv4(6, tcp(0x018, b"hi")))
    data = json.loads(json.dumps(frame_json(dissect(raw))))
    assert bytes.fromhex(data["hex"]) == raw
    names = [x["name"] for x in data["layers"]]
    assert names == ["Ethernet", "IPv4", "UDP", "VXLAN", "Ethernet", "IPv4", "TCP", "data"]
    inner_tcp = data["layers"][6]
    start, end = inner_tcp["spans"]["dst_port"]
    assert start == inner_tcp["start"] + 2
    assert uint(raw[start:end]) == inner_tcp["fields"]["dst_port"] == 8080
    payload = data["layers"][7]["spans"]["length"]
    assert raw[payload[0] : payload[1]] == b"hi"
