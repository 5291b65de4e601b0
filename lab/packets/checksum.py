"""The Internet checksum (RFC 1071), as IPv4, TCP and UDP use it. Pure: bytes in, numbers out.

Every 16-bit word is added with end-around carry (one's-complement addition) and the
sum is inverted. A receiver adds the same words *including* the checksum field and
gets 0xFFFF when nothing changed. TCP and UDP also cover a pseudo-header (source
and destination address, protocol, segment length) so that a segment delivered to
the wrong address fails its check.

Checksum offload: a sender whose interface computes checksums (a real NIC, or a
veth that never needs to) leaves in the field only the folded pseudo-header sum for
the hardware to finish. A capture taken before that point shows an "incorrect"
checksum that is not an error at all; :func:`verdict` tells the two apart.
"""

from __future__ import annotations

import enum
import ipaddress
import struct

TCP = 6
UDP = 17


def ones_complement_sum(data: bytes, start: int = 0) -> int:
    """The 16-bit one's-complement sum of ``data`` (padded with a zero byte if odd).

    Adding 16-bit words with end-around carry is addition modulo 0xFFFF (2**16 is 1
    there), so the bytes are read as one big number and reduced once, in C, instead of
    word by word in Python; the only subtlety is that a non-zero sum is never 0 but
    0xFFFF, one's complement's other zero."""
    if len(data) % 2:
        data += b"\x00"
    total = int.from_bytes(data, "big") + start
    if not total:
        return 0
    return total % 0xFFFF or 0xFFFF


def internet_checksum(data: bytes, start: int = 0) -> int:
    """The value a sender puts in the checksum field: the inverted one's-complement sum."""
    return ~ones_complement_sum(data, start) & 0xFFFF


def pseudo_header(src: str, dst: str, protocol: int, length: int) -> bytes:
    """The 12 bytes TCP and UDP sums also cover (RFC 793 section 3.1, RFC 768)."""
    return _pseudo(
        ipaddress.IPv4Address(src).packed + ipaddress.IPv4Address(dst).packed, protocol, length
    )


def _pseudo(addresses: bytes, protocol: int, length: int) -> bytes:
    return addresses + struct.pack("!BBH", 0, protocol, length)


def transport_checksum(src: str, dst: str, protocol: int, segment: bytes) -> int:
    """The checksum a TCP or UDP segment should carry, computed with its field zeroed."""
    return _transport_sum(_addresses(src, dst), protocol, segment)


def _addresses(src: str, dst: str) -> bytes:
    return ipaddress.IPv4Address(src).packed + ipaddress.IPv4Address(dst).packed


def _transport_sum(addresses: bytes, protocol: int, segment: bytes) -> int:
    at = checksum_offset(protocol)
    zeroed = segment[:at] + b"\x00\x00" + segment[at + 2 :]
    value = internet_checksum(_pseudo(addresses, protocol, len(segment)) + zeroed)
    if protocol == UDP and value == 0:
        return 0xFFFF  # UDP sends a computed zero as all ones: zero means "no checksum"
    return value


def checksum_offset(protocol: int) -> int:
    """Where the checksum field sits in a TCP (16) or UDP (6) header."""
    return 16 if protocol == TCP else 6


class Verdict(enum.Enum):
    VALID = "valid"
    OFFLOADED = "offloaded"  # only the pseudo-header sum: the sender left it to its NIC
    ABSENT = "absent"  # UDP's optional checksum set to 0
    INVALID = "invalid"


EXPLANATIONS = {
    Verdict.VALID: "matches the sum recomputed from the captured bytes",
    Verdict.OFFLOADED: (
        "not an error: the sender's kernel left checksumming to the network card "
        "(checksum offload) and put only the pseudo-header sum here; a veth in a "
        "container never finishes it, because no wire can corrupt what it carries"
    ),
    Verdict.ABSENT: "the sender chose not to use UDP's optional checksum (field is 0)",
    Verdict.INVALID: "does not match: these bytes changed after the sender summed them",
}


def verdict(src: str, dst: str, protocol: int, segment: bytes) -> tuple[Verdict, int, int]:
    """Judge a captured TCP or UDP segment's checksum: (verdict, carried, computed)."""
    return segment_verdict(_addresses(src, dst), protocol, segment)


def segment_verdict(addresses: bytes, protocol: int, segment: bytes) -> tuple[Verdict, int, int]:
    """:func:`verdict`, with the source and destination as the 8 bytes the IPv4 header
    carries (what a dissector has in hand, without formatting and parsing addresses)."""
    at = checksum_offset(protocol)
    carried = int.from_bytes(segment[at : at + 2], "big")
    if carried not in (0, 0xFFFF):  # the common case, in one sum: a receiver's check
        pseudo = int.from_bytes(addresses, "big") + protocol + len(segment)
        if ones_complement_sum(segment, pseudo) == 0xFFFF:
            return Verdict.VALID, carried, carried
    computed = _transport_sum(addresses, protocol, segment)
    if carried == computed:
        return Verdict.VALID, carried, computed
    if protocol == UDP and carried == 0:
        return Verdict.ABSENT, carried, computed
    # CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum, not inverted.
    partial = ones_complement_sum(_pseudo(addresses, protocol, len(segment)))
    if carried == partial:
        return Verdict.OFFLOADED, carried, computed
    return Verdict.INVALID, carried, computed


def ipv4_verdict(header: bytes) -> tuple[Verdict, int, int]:
    """An IPv4 header's checksum covers the header only, with no pseudo-header."""
    return _plain_verdict(header, 10)


def icmp_verdict(message: bytes) -> tuple[Verdict, int, int]:
    """An ICMP checksum covers the whole ICMP message (header and quoted datagram)."""
    return _plain_verdict(message, 2)


def _plain_verdict(data: bytes, at: int) -> tuple[Verdict, int, int]:
    carried = int.from_bytes(data[at : at + 2], "big")
    if carried not in (0, 0xFFFF) and ones_complement_sum(data) == 0xFFFF:
        return Verdict.VALID, carried, carried  # a receiver's check, in one sum
    computed = internet_checksum(data[:at] + b"\x00\x00" + data[at + 2 :])
    return (Verdict.VALID if carried == computed else Verdict.INVALID), carried, computed
