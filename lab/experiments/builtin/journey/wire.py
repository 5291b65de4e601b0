"""What the journey's captures hold, read back from a result (pure: no Docker).

The run keeps every frame it captured in ``facts["frames"]``, each with the place it
was captured (``"lo of client"``, or a lab network's name: its bridge) and its bytes
in hex; the judgement takes them apart again here, so that a saved result is judged
from the very bytes the wire carried.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lab.packets import dns
from lab.packets.dissect import Frame, dissect

RESOLVER = "127.0.0.11"  # Docker's resolver, in every host's own namespace
DNS_PORT = 53
BROADCAST = "ff:ff:ff:ff:ff:ff"


@dataclass(frozen=True)
class Captured:
    """A frame as the journey saw it: where, when (seconds since the run began), what."""

    place: str
    t: float
    frame: Frame


def frames_of(facts: Mapping[str, Any]) -> list[Captured]:
    return [
        Captured(str(f["capture"]), float(f["t"]), dissect(bytes.fromhex(f["hex"]), f["t"], n))
        for n, f in enumerate(facts.get("frames", []), start=1)
    ]


def network_of(ip: str, subnets: Mapping[str, str]) -> str:
    """The lab network whose subnet holds ``ip`` ('' when none does)."""
    address = ipaddress.ip_address(ip)
    for name, subnet in subnets.items():
        if subnet and address in ipaddress.ip_network(subnet, strict=False):
            return name
    return ""


def next_hop(route: str, destination: str) -> str:
    """The next hop in `ip route get`'s answer: the gateway after ``via``, else the
    destination itself (on the same network)."""
    words = route.split()
    return words[words.index("via") + 1] if "via" in words else destination


def macs(links: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """IPv4 address -> MAC, from `ip -j addr` as a host printed it."""
    out = {}
    for link in links:
        for info in link.get("addr_info", []):
            if info.get("family") == "inet":
                out[str(info["local"])] = str(link.get("address", ""))
    return out


@dataclass(frozen=True)
class Lookup:
    """One DNS exchange: the query, and the answer with the same id (None if none came)."""

    t: float
    name: str
    answer: dns.Message | None


def dns_lookups(frames: list[Captured]) -> list[Lookup]:
    """Every DNS query the frames hold, with its answer: UDP to or from Docker's resolver
    (its port after Docker's own address translation is not 53) or to port 53."""
    queries: list[tuple[Captured, dns.Message]] = []
    answers: dict[int, dns.Message] = {}
    for c in frames:
        udp, ip = c.frame.layer("UDP"), c.frame.layer("IPv4")
        if udp is None or ip is None:
            continue
        if RESOLVER not in (ip.fields["src"], ip.fields["dst"]) and DNS_PORT not in (
            udp.fields["src_port"],
            udp.fields["dst_port"],
        ):
            continue
        try:
            message = dns.parse(c.frame.payload)
        except dns.DnsError:
            continue
        if message.response:
            answers.setdefault(message.id, message)
        else:
            queries.append((c, message))
    return [
        Lookup(c.t, q.questions[0].name if q.questions else "", answers.get(q.id))
        for c, q in queries
        if any(question.type == "A" for question in q.questions)
    ]


@dataclass(frozen=True)
class Segment:
    t: float
    place: str
    src: str  # "ip:port"
    dst: str
    flags: str
    seq: int
    ack: int
    ttl: int
    ip_id: int
    mac_src: str
    mac_dst: str
    payload: bytes


def segments(frames: list[Captured], a: str, b: str) -> list[Segment]:
    """The TCP segments between endpoints ``a`` and ``b`` ("ip:port"), either way, in time
    order, from every place they were captured."""
    out = []
    for c in frames:
        ip, tcp, eth = c.frame.layer("IPv4"), c.frame.layer("TCP"), c.frame.layer("Ethernet")
        if ip is None or tcp is None or eth is None:
            continue
        src = f"{ip.fields['src']}:{tcp.fields['src_port']}"
        dst = f"{ip.fields['dst']}:{tcp.fields['dst_port']}"
        if {src, dst} != {a, b}:
            continue
        out.append(
            Segment(
                c.t,
                c.place,
                src,
                dst,
                str(tcp.fields["flag_names"]),
                int(tcp.fields["seq"]),
                int(tcp.fields["ack"]),
                int(ip.fields["ttl"]),
                int(ip.fields["id"]),
                str(eth.fields["src"]),
                str(eth.fields["dst"]),
                c.frame.payload,
            )
        )
    return sorted(out, key=lambda s: s.t)


def stream(segs: Iterable[Segment], src: str) -> bytes:
    """The bytes ``src`` sent, in sequence order, each byte once (a retransmission of the
    same sequence range adds nothing). Sequence numbers are counted modulo 2**32 from
    the one all the others follow most closely: they may wrap."""
    sent = [s for s in segs if s.src == src and s.payload]
    if not sent:
        return b""
    seqs = {s.seq for s in sent}
    base = min(seqs, key=lambda c: max((x - c) % 2**32 for x in seqs))
    pieces: dict[int, bytes] = {}
    for s in sent:
        offset = (s.seq - base) % 2**32
        if len(s.payload) > len(pieces.get(offset, b"")):
            pieces[offset] = s.payload
    out, at = b"", 0
    for offset in sorted(pieces):
        chunk = pieces[offset]
        if offset > at:  # a gap: what the wire never carried here stays missing
            break
        out += chunk[at - offset :]
        at = max(at, offset + len(chunk))
    return out


def arp(
    frames: list[Captured], op: int, sender_ip: str, target_ip: str, since: float = float("-inf")
) -> Captured | None:
    """The first ARP request (op 1) or reply (op 2) between those addresses, from
    ``since`` on (seconds since the run began)."""
    for c in frames:
        if c.t < since:
            continue
        layer = c.frame.layer("ARP")
        if (
            layer is not None
            and layer.fields["op"] == op
            and layer.fields["sender_ip"] == sender_ip
            and layer.fields["target_ip"] == target_ip
        ):
            return c
    return None
