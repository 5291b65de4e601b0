"""What the receiving device decided (lab.packets.decisions), table-driven: conversations
written frame by frame with struct, and the line each frame must get, or None where
nothing recorded says so (no owner without a port table row, no refusal without the
answer seen, no router without the TTL dropping by one on the very same packet)."""

from __future__ import annotations

import socket
import struct
from typing import Any

import pytest

from lab.packets.decisions import decisions, owner
from lab.packets.dissect import dissect

pytestmark = pytest.mark.pure

CLIENT, SHOUT, APP, FAR = "10.203.0.100", "10.203.0.20", "10.203.0.10", "10.9.0.5"
NAMES = {CLIENT: "client", SHOUT: "shouthost", APP: "apphost", "10.203.0.1": "docker-host"}
MACS = {
    CLIENT: "02:42:0a:cb:00:64",
    SHOUT: "02:42:0a:cb:00:14",
    APP: "02:42:0a:cb:00:0a",
    FAR: "02:42:0a:09:00:05",
}
ROUTER_MAC = "02:42:0a:cb:00:fe"
TABLES: dict[str, list[dict[str, Any]]] = {
    "shouthost": [
        {"protocol": "tcp", "address": "0.0.0.0", "port": 8080, "pid": 7, "service": "tcp-shout"},
        {"protocol": "udp", "address": "0.0.0.0", "port": 8080, "pid": 8, "service": "udp-shout"},
        {"protocol": "tcp", "address": "127.0.0.11", "port": 53, "pid": None, "service": ""},
        {"protocol": "tcp6", "address": "::", "port": 22, "pid": None, "service": ""},
    ],
    "apphost": [
        {"protocol": "tcp", "address": "0.0.0.0", "port": 80, "pid": 7, "service": "http"},
    ],
}
SYN, RST, ACK, PSH, FIN = 0x02, 0x04, 0x10, 0x08, 0x01
# glibc's question for apphost and Docker's answer, as the journey captured them.
QUERY = bytes.fromhex("36d80100000100000000000007617070686f73740000010001")
ANSWER = bytes.fromhex(
    "36d88180000100010000000007617070686f73740000010001c00c000100010000025800040acb000a"
)


def ether(src_mac: str, dst_mac: str, kind: int) -> bytes:
    return bytes.fromhex((dst_mac + src_mac).replace(":", "")) + struct.pack("!H", kind)


def ip(src: str, dst: str, protocol: int, body: bytes, ttl: int = 64, ident: int = 1) -> bytes:
    return (
        struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            20 + len(body),
            ident,
            0x4000,
            ttl,
            protocol,
            0,
            socket.inet_aton(src),
            socket.inet_aton(dst),
        )
        + body
    )


def tcp(
    src: str,
    dst: str,
    sport: int,
    dport: int,
    flags: int,
    seq: int = 0,
    ack: int = 0,
    data: bytes = b"",
    ttl: int = 64,
    ident: int = 1,
    via: str = "",
) -> bytes:
    segment = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 502, 0, 0) + data
    return ether(via or MACS[src], MACS[dst], 0x0800) + ip(src, dst, 6, segment, ttl, ident)


def udp(src: str, dst: str, sport: int, dport: int, data: bytes = b"hi") -> bytes:
    datagram = struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data
    return ether(MACS[src], MACS[dst], 0x0800) + ip(src, dst, 17, datagram)


def port_unreachable(src: str, dst: str, refused: bytes) -> bytes:
    """An ICMP port unreachable quoting ``refused``'s IP header and first 8 bytes."""
    quoted = refused[14 : 14 + 28]
    return ether(MACS[src], MACS[dst], 0x0800) + ip(
        src, dst, 1, struct.pack("!BBHI", 3, 3, 0, 0) + quoted
    )


def arp(
    op: int, sender: str, sender_mac: str, target: str, target_mac: str = "00:00:00:00:00:00"
) -> bytes:
    body = struct.pack(
        "!HHBBH6s4s6s4s",
        1,
        0x0800,
        6,
        4,
        op,
        bytes.fromhex(sender_mac.replace(":", "")),
        socket.inet_aton(sender),
        bytes.fromhex(target_mac.replace(":", "")),
        socket.inet_aton(target),
    )
    return ether(sender_mac, "ff:ff:ff:ff:ff:ff" if op == 1 else target_mac, 0x0806) + body


OWNED = "shouthost's kernel: TCP port 8080 → tcp-shout (pid 7)"
REFUSED_9999 = "shouthost's kernel: no socket on TCP 9999 → RST"
UNREACHABLE_9 = "apphost's kernel: no socket on UDP 9 → ICMP port unreachable"
CONNECTING = "client's kernel: TCP port 40000 → the connecting socket (it sent the SYN)"
CLOSED = "shouthost's kernel: TCP port 8080: the connection is reset (RST)"
DATAGRAM = udp(CLIENT, APP, 40000, 9)
ROUTED = tcp(CLIENT, FAR, 40000, 443, SYN, seq=5, ident=77)
ROUTED_ON = tcp(CLIENT, FAR, 40000, 443, SYN, seq=5, ident=77, ttl=63, via=ROUTER_MAC)

CASES: dict[str, tuple[list[bytes], dict[str, list[Any]], list[str | None]]] = {
    "a SYN to a port a table lists: its owner": (
        [
            tcp(CLIENT, SHOUT, 40000, 8080, SYN, seq=100),
            tcp(SHOUT, CLIENT, 8080, 40000, SYN | ACK, seq=900, ack=101),
            tcp(CLIENT, SHOUT, 40000, 8080, ACK | PSH, seq=101, ack=901, data=b"hi"),
        ],
        TABLES,
        [OWNED, CONNECTING, OWNED],  # the answer goes to the client's port: no table lists it
    ),
    "no table: a handshake seen makes the segments after it the connection's": (
        [
            tcp(CLIENT, SHOUT, 40000, 8080, SYN, seq=100),
            tcp(SHOUT, CLIENT, 8080, 40000, SYN | ACK, seq=900, ack=101),
            tcp(CLIENT, SHOUT, 40000, 8080, ACK | PSH, seq=101, ack=901, data=b"hi"),
            tcp(SHOUT, CLIENT, 8080, 40000, ACK, seq=901, ack=103),
            tcp(CLIENT, SHOUT, 40001, 8080, ACK, seq=5, ack=5),  # another: no handshake seen
        ],
        {},
        [
            "shouthost's kernel: TCP port 8080 → a listening socket (it answered SYN, ACK)",
            CONNECTING,
            "shouthost's kernel: TCP port 8080 → this connection's socket (its handshake was seen)",
            "client's kernel: TCP port 40000 → this connection's socket (its handshake was seen)",
            None,
        ],
    ),
    "no table: a SYN answered by SYN, ACK met a listener, whose is not known": (
        [
            tcp(CLIENT, SHOUT, 40000, 8080, SYN, seq=100),
            tcp(SHOUT, CLIENT, 8080, 40000, SYN | ACK, seq=900, ack=101),
        ],
        {},
        [
            "shouthost's kernel: TCP port 8080 → a listening socket (it answered SYN, ACK)",
            CONNECTING,
        ],
    ),
    "no table and no answer: nothing is claimed": (
        [tcp(CLIENT, SHOUT, 40000, 8080, SYN, seq=100)],
        {},
        [None],
    ),
    "a SYN to a port no one listens on, answered by RST": (
        [
            tcp(CLIENT, SHOUT, 40001, 9999, SYN, seq=41),
            tcp(SHOUT, CLIENT, 9999, 40001, RST | ACK, seq=0, ack=42),
        ],
        TABLES,
        [REFUSED_9999, REFUSED_9999],
    ),
    "an RST that does not acknowledge the SYN refuses nothing of it": (
        [
            tcp(CLIENT, SHOUT, 40001, 9999, SYN, seq=41),
            tcp(SHOUT, CLIENT, 9999, 40001, RST | ACK, seq=0, ack=7),
        ],
        {},
        [None, "shouthost's kernel: TCP port 9999: the connection is reset (RST)"],
    ),
    "the table named an owner, the RST says otherwise: the RST wins": (
        [
            tcp(CLIENT, SHOUT, 40002, 8080, SYN, seq=10),
            tcp(SHOUT, CLIENT, 8080, 40002, RST | ACK, seq=0, ack=11),
        ],
        TABLES,
        [
            "shouthost's kernel: no socket on TCP 8080 → RST",
            "shouthost's kernel: no socket on TCP 8080 → RST",
        ],
    ),
    "data to a dead server's connection is answered by RST (the seed's EPIPE)": (
        [
            tcp(CLIENT, SHOUT, 40003, 8080, ACK | PSH, seq=500, ack=800, data=b"again"),
            tcp(SHOUT, CLIENT, 8080, 40003, RST, seq=800),
        ],
        TABLES,
        [CLOSED, CLOSED],
    ),
    "a port in no port table has no owner": (
        [tcp(CLIENT, APP, 40004, 6379, ACK, seq=1, ack=1)],
        {"apphost": TABLES["apphost"]},
        [None],
    ),
    "a socket bound to another address is not the one picked": (
        [tcp(CLIENT, SHOUT, 40005, 53, ACK, seq=1, ack=1)],
        TABLES,
        [None],
    ),
    "a listed socket whose owner the table does not show": (
        [tcp(CLIENT, SHOUT, 40006, 22, ACK, seq=1, ack=1)],
        TABLES,
        ["shouthost's kernel: TCP port 22 → a socket whose owner the table does not show"],
    ),
    "a host no name is known for gets no owner": (
        [tcp(CLIENT, FAR, 40007, 8080, ACK, seq=1, ack=1)],
        {"10.9.0.5": TABLES["shouthost"]},
        [None],
    ),
    "a UDP datagram to its owner": (
        [udp(CLIENT, SHOUT, 40008, 8080)],
        TABLES,
        ["shouthost's kernel: UDP port 8080 → udp-shout (pid 8)"],
    ),
    "no table: a datagram answered from the port it went to met a bound socket": (
        [udp(CLIENT, SHOUT, 40008, 8080), udp(SHOUT, CLIENT, 8080, 40008, b"HI")],
        {},
        [
            "shouthost's kernel: UDP port 8080 → a bound socket (it answered)",
            "client's kernel: UDP port 40008 → the socket that sent the datagram this answers",
        ],
    ),
    "a UDP datagram to no one, and the ICMP that says so": (
        [DATAGRAM, port_unreachable(APP, CLIENT, DATAGRAM)],
        TABLES,
        [UNREACHABLE_9, UNREACHABLE_9],
    ),
    "a UDP datagram to no one, no ICMP seen: nothing claimed": (
        [DATAGRAM],
        TABLES,
        [None],
    ),
    "ARP: asked and answered": (
        [
            arp(1, CLIENT, MACS[CLIENT], SHOUT),
            arp(2, SHOUT, MACS[SHOUT], CLIENT, MACS[CLIENT]),
        ],
        {},
        [
            f"ARP: who has {SHOUT}? → {MACS[SHOUT]} (shouthost)",
            f"ARP: {SHOUT} (shouthost) is at {MACS[SHOUT]}",
        ],
    ),
    "ARP: asked, no answer seen": (
        [arp(1, CLIENT, MACS[CLIENT], "10.203.0.99")],
        {},
        [None],
    ),
    "the same packet seen again one TTL lower: routed, the router named by its ARP": (
        [
            arp(2, "10.203.0.254", ROUTER_MAC, CLIENT, MACS[CLIENT]),
            ROUTED,
            ROUTED_ON,
        ],
        {},
        [
            f"ARP: 10.203.0.254 (router) is at {ROUTER_MAC}",
            f"router's kernel: {FAR} is not its own → forwarded, TTL 64→63",
            "TTL 64→63 at router",
        ],
    ),
    "routed by a MAC no ARP named: the MAC is said": (
        [ROUTED, ROUTED_ON],
        {},
        [
            f"the router at {ROUTER_MAC}: {FAR} is not its own → forwarded, TTL 64→63",
            f"TTL 64→63 at {ROUTER_MAC}",
        ],
    ),
    "a DNS question to Docker's resolver and its answer": (
        [
            ether(MACS[CLIENT], MACS[CLIENT], 0x0800)
            + ip(
                CLIENT,
                "127.0.0.11",
                17,
                struct.pack("!HHHH", 45127, 47925, 8 + len(QUERY), 0) + QUERY,
            ),
            ether(MACS[CLIENT], MACS[CLIENT], 0x0800)
            + ip(
                "127.0.0.11",
                CLIENT,
                17,
                struct.pack("!HHHH", 53, 45127, 8 + len(ANSWER), 0) + ANSWER,
            ),
        ],
        {},
        [
            "Docker's resolver is asked: A apphost?",
            "Docker's resolver answers A apphost? apphost → 10.203.0.10",
        ],
    ),
    "port 53 carrying no DNS message: nothing said": (
        [udp(CLIENT, APP, 40000, 53, b"not dns")],
        {},
        [None],
    ),
    "seen twice with the same TTL: not routed": (
        [ROUTED, tcp(CLIENT, FAR, 40000, 443, SYN, seq=5, ident=77, via=ROUTER_MAC)],
        {},
        [None, None],
    ),
    "a TTL one lower on another packet (other bytes): no router": (
        [ROUTED, tcp(CLIENT, FAR, 40000, 443, SYN, seq=6, ident=77, ttl=63, via=ROUTER_MAC)],
        {},
        [None, None],
    ),
    "a TTL two lower: two hops unseen, no router named": (
        [ROUTED, tcp(CLIENT, FAR, 40000, 443, SYN, seq=5, ident=77, ttl=62, via=ROUTER_MAC)],
        {},
        [None, None],
    ),
}


@pytest.mark.parametrize(("frames", "tables", "expected"), CASES.values(), ids=CASES.keys())
def test_what_each_receiver_decided(
    frames: list[bytes], tables: dict[str, list[Any]], expected: list[str | None]
) -> None:
    names = {**NAMES, "10.203.0.254": "router"}
    dissected = [dissect(raw, 0.0, n) for n, raw in enumerate(frames, 1)]
    assert decisions(dissected, tables, names) == expected


def test_a_known_mac_names_the_router_without_arp() -> None:
    frames = [dissect(ROUTED), dissect(ROUTED_ON)]
    assert decisions(frames, {}, NAMES, {ROUTER_MAC: "gateway"})[1] == "TTL 64→63 at gateway"


def test_several_lines_for_one_frame_are_joined() -> None:
    routed_to_shout = tcp(CLIENT, SHOUT, 40000, 8080, SYN, seq=5, ident=9)
    again = tcp(CLIENT, SHOUT, 40000, 8080, SYN, seq=5, ident=9, ttl=63, via=ROUTER_MAC)
    found = decisions([dissect(routed_to_shout), dissect(again)], TABLES, NAMES)
    # Where it was first seen, the router received it: not what shouthost would decide.
    forwarded = f"the router at {ROUTER_MAC}: {SHOUT} is not its own → forwarded, TTL 64→63"
    assert found == [forwarded, f"TTL 64→63 at {ROUTER_MAC}; {OWNED}"]


@pytest.mark.parametrize(
    ("host", "protocol", "port", "address", "expected"),
    [
        ("shouthost", "tcp", 8080, SHOUT, "tcp-shout (pid 7)"),
        ("shouthost", "udp", 8080, SHOUT, "udp-shout (pid 8)"),
        ("shouthost", "udp", 9, SHOUT, None),
        ("shouthost", "tcp", 53, "127.0.0.11", "a socket whose owner the table does not show"),
        ("apphost", "tcp", 8080, APP, None),
        ("nohost", "tcp", 80, APP, None),
    ],
)
def test_owner_by_port_table(
    host: str, protocol: str, port: int, address: str, expected: str | None
) -> None:
    assert owner(TABLES, host, protocol, port, address) == expected
