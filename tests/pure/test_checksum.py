"""The Internet checksum, byte by byte: RFC 1071's own example, real headers, and scapy's sums."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP

from lab.packets.checksum import (
    TCP as TCP_PROTO,
)
from lab.packets.checksum import (
    UDP as UDP_PROTO,
)
from lab.packets.checksum import (
    Verdict,
    icmp_verdict,
    internet_checksum,
    ipv4_verdict,
    ones_complement_sum,
    pseudo_header,
    transport_checksum,
    verdict,
)


def test_rfc1071_example() -> None:
    # RFC 1071 section 3: these eight bytes sum to 0xddf2 (with end-around carry).
    data = bytes.fromhex("0001f203f4f5f6f7")
    assert ones_complement_sum(data) == 0xDDF2
    assert internet_checksum(data) == 0x220D


@pytest.mark.parametrize(
    ("data", "total"),
    [
        (b"", 0x0000),
        (b"\x12", 0x1200),  # an odd byte is padded on the right
        (b"\xff\xff\x00\x01", 0x0001),  # 0xffff + 1 carries around to 0x0001
        (b"\x80\x00\x80\x00", 0x0001),
        (b"\xab\xcd\x12", 0xBDCD),
    ],
)
def test_ones_complement_sum_table(data: bytes, total: int) -> None:
    assert ones_complement_sum(data) == total


def test_a_known_ipv4_header() -> None:
    # The header in Wikipedia's "IPv4 header checksum" worked example: checksum 0xb861.
    header = bytes.fromhex("450000730000400040110000c0a80001c0a800c7")
    assert internet_checksum(header) == 0xB861
    filled = header[:10] + b"\xb8\x61" + header[12:]
    assert ipv4_verdict(filled) == (Verdict.VALID, 0xB861, 0xB861)
    assert ones_complement_sum(filled) == 0xFFFF  # what a receiver checks


def test_pseudo_header_layout() -> None:
    assert pseudo_header("10.0.0.1", "10.0.0.2", TCP_PROTO, 40) == bytes.fromhex(
        "0a0000010a0000020006" + "0028"
    )


@given(
    payload=st.binary(max_size=300),
    sport=st.integers(1, 65535),
    dport=st.integers(1, 65535),
    seq=st.integers(0, 2**32 - 1),
)
def test_tcp_sum_agrees_with_scapy(payload: bytes, sport: int, dport: int, seq: int) -> None:
    raw = bytes(
        IP(src="10.203.0.100", dst="10.203.0.20") / TCP(sport=sport, dport=dport, seq=seq) / payload
    )
    segment = raw[20:]
    carried = struct.unpack_from("!H", segment, 16)[0]  # scapy filled it in
    assert transport_checksum("10.203.0.100", "10.203.0.20", TCP_PROTO, segment) == carried
    assert verdict("10.203.0.100", "10.203.0.20", TCP_PROTO, segment)[0] is Verdict.VALID


@given(payload=st.binary(max_size=300))
def test_udp_sum_agrees_with_scapy(payload: bytes) -> None:
    raw = bytes(IP(src="10.203.0.100", dst="10.203.0.20") / UDP(sport=4000, dport=8080) / payload)
    carried = struct.unpack_from("!H", raw, 26)[0]
    assert transport_checksum("10.203.0.100", "10.203.0.20", UDP_PROTO, raw[20:]) == carried


def test_icmp_sum_agrees_with_scapy() -> None:
    raw = bytes(IP() / ICMP(type=3, code=3) / (b"E" * 28))
    assert icmp_verdict(raw[20:])[0] is Verdict.VALID


def segment_with(check: int, payload: bytes = b"hello") -> bytes:
    raw = bytes(IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2, chksum=check) / payload)
    return raw[20:]


def test_verdicts_tell_offload_from_corruption() -> None:
    src, dst = "10.0.0.1", "10.0.0.2"
    good = segment_with(transport_checksum(src, dst, UDP_PROTO, segment_with(0)))
    assert verdict(src, dst, UDP_PROTO, good)[0] is Verdict.VALID
    # Offload: only the folded pseudo-header sum, not inverted, waits for the card.
    partial = ones_complement_sum(pseudo_header(src, dst, UDP_PROTO, len(good)))
    assert verdict(src, dst, UDP_PROTO, segment_with(partial))[0] is Verdict.OFFLOADED
    assert verdict(src, dst, UDP_PROTO, segment_with(0))[0] is Verdict.ABSENT
    flipped = bytearray(good)
    flipped[-1] ^= 0x01  # one bit of the payload changed on the way
    assert verdict(src, dst, UDP_PROTO, bytes(flipped))[0] is Verdict.INVALID


def test_udp_never_carries_a_computed_zero() -> None:
    # Choose the payload word that makes everything else sum to 0xffff: the checksum is 0,
    # which UDP reserves for "no checksum", so it must be sent as 0xffff.
    src, dst = "10.0.0.1", "10.0.0.2"
    rest = ones_complement_sum(pseudo_header(src, dst, UDP_PROTO, 10) + segment_with(0, b"\0\0"))
    word = (0xFFFF - rest).to_bytes(2, "big")
    assert internet_checksum(pseudo_header(src, dst, UDP_PROTO, 10) + segment_with(0, word)) == 0
    assert transport_checksum(src, dst, UDP_PROTO, segment_with(0, word)) == 0xFFFF


def _word_by_word(data: bytes) -> int:
    """RFC 1071's loop, as written there: the reference the fast sum must equal."""
    if len(data) % 2:
        data += b"\x00"
    total = 0
    for i in range(0, len(data), 2):
        total += data[i] << 8 | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return total


@given(st.binary(max_size=2000))
def test_the_fast_sum_is_rfc_1071s_loop(data: bytes) -> None:
    assert ones_complement_sum(data) == _word_by_word(data)


@pytest.mark.parametrize(
    "data", [b"\xff\xff", b"\xff\xff\xff\xff", b"\x00\x00\xff\xff", b"\x00" * 8, b"\x00\x01" * 3]
)
def test_the_fast_sum_at_one_complements_two_zeros(data: bytes) -> None:
    assert ones_complement_sum(data) == _word_by_word(data)


@given(
    segment=st.binary(min_size=20, max_size=200),
    carried=st.sampled_from([0, 0xFFFF, 1, 0x1234]) | st.integers(0, 0xFFFF),
    protocol=st.sampled_from([TCP_PROTO, UDP_PROTO]),
    fill=st.booleans(),
)
def test_the_one_sum_shortcut_judges_as_the_definition_does(
    segment: bytes, carried: int, protocol: int, fill: bool
) -> None:
    src, dst = "10.203.0.100", "10.203.0.20"
    at = 16 if protocol == TCP_PROTO else 6
    if fill:  # half the cases carry the right sum, so VALID is reached as often as not
        carried = transport_checksum(src, dst, protocol, segment)
    data = segment[:at] + carried.to_bytes(2, "big") + segment[at + 2 :]
    computed = transport_checksum(src, dst, protocol, data)
    expected = (
        Verdict.VALID
        if carried == computed
        else Verdict.ABSENT
        if protocol == UDP_PROTO and carried == 0
        else Verdict.OFFLOADED
        if carried == ones_complement_sum(pseudo_header(src, dst, protocol, len(data)))
        else Verdict.INVALID
    )
    assert verdict(src, dst, protocol, data) == (expected, carried, computed)
