"""The journey's judgement, on two results recorded from real runs: every claim holds on
what was observed, and each fails when one observation (a frame's byte on the wire, a
traced call, a recorded fact) is changed so that the step it states is not what was
seen. Then its pure helpers, case by case. (Fixtures: tests/pure/fixtures/README.md.)

journey.json: client 10.203.0.100 -> apphost:80 (http) on one network, "labnet"; the
name answered by Docker's resolver on the client's loopback.
journey-router.json: client on "left" -> router -> server:8080 (tcp-shout) on "right";
the name from /etc/hosts, no DNS query; the SYN crosses both networks.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lab.experiments import EXPERIMENTS
from lab.experiments.builtin.journey import judgement, wire
from lab.experiments.model import judge_result
from lab.packets import dissect, dns

FIXTURES = Path(__file__).parent / "fixtures" / "results"
DEFAULT, ROUTER = "journey", "journey-router"
CLAIMS = ("name", "arp", "handshake", "request", "process", "answer", "hops")
Data = dict[str, Any]
Change = Callable[[Data], None]
Where = Callable[[str, dissect.Frame], bool]  # (capture place, frame) -> is it the one


def recorded(name: str) -> Data:
    data: Data = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def verdicts(data: Data) -> dict[str, bool]:
    return {c.id: c.held for c in judge_result(EXPERIMENTS["journey"], data)}


def failing_after(name: str, change: Change) -> set[str]:
    """The claims that no longer hold once ``change`` is made to a copy of the result."""
    data = copy.deepcopy(recorded(name))
    change(data)
    judged = verdicts(data)
    assert set(judged) == set(CLAIMS)
    return {claim for claim, held in judged.items() if not held}


# ---------------------------------------------------------------- the recorded runs


@pytest.mark.parametrize("name", [DEFAULT, ROUTER])
def test_every_claim_holds_on_the_recorded_run_as_it_did_then(name: str) -> None:
    data = recorded(name)
    again = judge_result(EXPERIMENTS["journey"], data)
    assert [(c.id, c.held, c.observed) for c in again] == [
        (c["id"], c["held"], c["observed"]) for c in data["checks"]
    ]
    assert [c.id for c in again] == list(CLAIMS)
    assert all(c.held for c in again)


# ---------------------------------------------------------------- frames, byte by byte


def frame(d: Data, n: int) -> dissect.Frame:
    return dissect.dissect(bytes.fromhex(d["facts"]["frames"][n]["hex"]))


def find(d: Data, where: Where) -> int:
    """The index in facts["frames"] of the one frame ``where`` picks."""
    found = [n for n, f in enumerate(d["facts"]["frames"]) if where(str(f["capture"]), frame(d, n))]
    assert len(found) == 1, f"{len(found)} frames match"
    return found[0]


def start(f: dissect.Frame, layer: str) -> int:
    found = f.layer(layer)
    assert found is not None, f"no {layer} in {f.summary}"
    return found.start


def field(f: dissect.Frame, layer: str, name: str) -> int | str | None:
    found = f.layer(layer)
    return None if found is None else found.fields[name]


def patch(d: Data, n: int, at: int, old: bytes, new: bytes) -> None:
    """Frame ``n``'s bytes from ``at``: ``old`` (checked, so a changed fixture fails
    loudly) become ``new``. Checksums are left as they were: no claim reads them."""
    raw = bytearray.fromhex(d["facts"]["frames"][n]["hex"])
    assert bytes(raw[at : at + len(old)]) == old, raw[at : at + len(old)].hex()
    raw[at : at + len(old)] = new
    d["facts"]["frames"][n]["hex"] = raw.hex()


def mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def arp_op(op: int) -> Where:
    return lambda place, f: field(f, "ARP", "op") == op


def tcp(flags: str, place: str = "") -> Where:
    return lambda p, f: field(f, "TCP", "flag_names") == flags and (not place or p == place)


def carrying(prefix: bytes, place: str = "") -> Where:
    return lambda p, f: (
        f.layer("TCP") is not None and f.payload.startswith(prefix) and (not place or p == place)
    )


def ends(name: str) -> tuple[str, str]:
    """The recorded connect's two ends: the client's address and port, the target's."""
    e = next(e for e in recorded(name)["events"] if e["op"] == "connect")
    return str(e["local"]), str(e["remote"])


def handshake_ack(name: str) -> int:
    """What the client's last handshake segment acknowledges: the SYN-ACK's seq + 1."""
    data = recorded(name)
    for n in range(len(data["facts"]["frames"])):
        f = frame(data, n)
        if field(f, "TCP", "flag_names") == "SYN, ACK":
            return (int(field(f, "TCP", "seq") or 0) + 1) % 2**32
    raise AssertionError("no SYN-ACK recorded")


def the_clients_ack(place: str, f: dissect.Frame) -> bool:
    """The handshake's last step: the client's ACK of the SYN-ACK, carrying nothing."""
    here, _ = ends(DEFAULT)
    return (
        field(f, "TCP", "flag_names") == "ACK"
        and field(f, "TCP", "src_port") == int(here.rsplit(":", 1)[1])
        and field(f, "TCP", "ack") == handshake_ack(DEFAULT)
        and not f.payload
    )


def dns_response(place: str, f: dissect.Frame) -> bool:
    if f.layer("UDP") is None:
        return False
    try:
        return dns.parse(f.payload).response
    except dns.DnsError:
        return False


def drop(where: Where) -> Change:
    return lambda d: d["facts"]["frames"].pop(find(d, where))


def set_mac(where: Where, which: str, old: str, new: str) -> Change:
    """Set the Ethernet destination (``which`` "dst", bytes 0-5) or source ("src", 6-11)."""

    def change(d: Data) -> None:
        n = find(d, where)
        patch(d, n, 0 if which == "dst" else 6, mac(old), mac(new))

    return change


def set_ttl(where: Where, old: int, new: int) -> Change:
    def change(d: Data) -> None:
        n = find(d, where)
        patch(d, n, start(frame(d, n), "IPv4") + 8, bytes([old]), bytes([new]))

    return change


def set_ip_id(where: Where, new: int) -> Change:
    def change(d: Data) -> None:
        n = find(d, where)
        f = frame(d, n)
        old = int(field(f, "IPv4", "id") or 0)
        patch(d, n, start(f, "IPv4") + 4, old.to_bytes(2, "big"), new.to_bytes(2, "big"))

    return change


def shift_ack(where: Where, by: int) -> Change:
    def change(d: Data) -> None:
        n = find(d, where)
        f = frame(d, n)
        old = int(field(f, "TCP", "ack") or 0)
        new = (old + by) % 2**32
        patch(d, n, start(f, "TCP") + 8, old.to_bytes(4, "big"), new.to_bytes(4, "big"))

    return change


def payload_byte(where: Where, offset: int, old: bytes, new: bytes) -> Change:
    """One byte of a segment's payload, ``offset`` bytes into it."""

    def change(d: Data) -> None:
        n = find(d, where)
        patch(d, n, start(frame(d, n), "data") + offset, old, new)

    return change


def dns_answer_address(new: str) -> Change:
    """The A record in the DNS response on the client's loopback: its 4 address bytes,
    the last of the UDP payload, say ``new`` instead of apphost's 10.203.0.10."""

    def change(d: Data) -> None:
        n = find(d, dns_response)
        f = frame(d, n)
        assert dns.parse(f.payload).addresses("apphost") == ["10.203.0.10"]
        end = start(f, "data") + len(f.payload)
        patch(d, n, end - 4, bytes([10, 203, 0, 10]), bytes(int(b) for b in new.split(".")))
        assert dns.parse(frame(d, n).payload).addresses("apphost") == [new]

    return change


# ---------------------------------------------------------------- recorded facts


def event(d: Data, op: str, nth: int = 0) -> dict[str, Any]:
    """The nth recorded ``op`` of the client's socket, to change in place."""
    found = [e for e in d["events"] if e["sock"] == judgement.CLIENT_SOCK and e["op"] == op]
    return found[nth]  # type: ignore[no-any-return]


def set_event_data(op: str, old: str, new: str) -> Change:
    def change(d: Data) -> None:
        e = event(d, op)
        assert old in e["data"]
        e["data"] = e["data"].replace(old, new, 1)

    return change


def server_call(d: Data, test: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    found: list[dict[str, Any]] = [c for c in d["facts"]["server"]["calls"] if test(c)]
    assert len(found) == 1, f"{len(found)} calls match"
    return found[0]


def the_read(d: Data) -> dict[str, Any]:
    """The server's traced read of the client's request (the only one with apphost in it)."""
    return server_call(
        d, lambda c: c["name"] == "recvfrom" and "Host: apphost" in (c["data"] or "")
    )


def the_accept(d: Data) -> dict[str, Any]:
    here, _ = ends(DEFAULT)
    return server_call(d, lambda c: c["name"] == "accept4" and c["peer"] == here)


def set_fact(key: str, value: Any) -> Change:
    return lambda d: d["facts"].update({key: value})


def _owner_of_80_changed(d: Data) -> None:
    (row,) = [
        r
        for r in d["facts"]["port_tables"]["apphost"]
        if r["protocol"] == "tcp" and r["port"] == 80
    ]
    assert row["pid"] == d["facts"]["server"]["pid"]
    row["pid"] += 5  # another process's, on the same host


def _read_emptied(d: Data) -> None:
    the_read(d)["data"] = ""


def _read_changed(d: Data) -> None:
    the_read(d)["data"] = the_read(d)["data"].replace("GET", "PUT", 1)


def _accept_from_another_port(d: Data) -> None:
    the_accept(d)["peer"] = "10.203.0.100:60121"


APPHOST_MAC, CLIENT_MAC, SHOUTHOST_MAC = (
    "02:42:0a:cb:00:0a",
    "02:42:0a:cb:00:64",
    "02:42:0a:cb:00:14",
)

DEFAULT_CHANGES = [
    # name: Docker's resolver answered on the client's loopback
    pytest.param({"name"}, dns_answer_address("10.203.0.20"), id="dns-answer-another-address"),
    pytest.param({"name"}, drop(dns_response), id="dns-answer-missing"),
    # the client says it got another address than the wire's answer (and than it connected to)
    pytest.param(
        {"name"}, lambda d: event(d, "resolve").update(data="10.203.0.20"), id="resolved-other"
    ),
    # arp
    pytest.param({"arp"}, drop(arp_op(2)), id="arp-answer-missing"),
    pytest.param({"arp"}, drop(arp_op(1)), id="arp-request-missing"),
    pytest.param(
        {"arp"},
        set_mac(arp_op(1), "dst", "ff:ff:ff:ff:ff:ff", APPHOST_MAC),
        id="arp-request-not-broadcast",
    ),
    # With no router, the MAC the ARP reply gave is the target's own: a SYN sent elsewhere
    # also did not arrive at the target's MAC, which is what hops states for one network.
    pytest.param(
        {"arp", "hops"},
        set_mac(tcp("SYN"), "dst", APPHOST_MAC, SHOUTHOST_MAC),
        id="syn-to-another-mac",
    ),
    # handshake
    pytest.param({"handshake"}, drop(tcp("SYN, ACK")), id="synack-missing"),
    pytest.param({"handshake"}, shift_ack(tcp("SYN, ACK"), 1), id="synack-ack-off-by-one"),
    pytest.param({"handshake"}, drop(the_clients_ack), id="ack-missing"),
    # request
    pytest.param(
        {"request"}, payload_byte(carrying(b"GET "), 0, b"G", b"P"), id="request-byte-on-wire"
    ),
    pytest.param({"request"}, _read_emptied, id="server-read-emptied"),
    pytest.param({"request"}, _read_changed, id="server-read-changed"),
    pytest.param(
        {"request"}, set_event_data("sendall", "GET", "PUT"), id="client-sent-other-bytes"
    ),
    # process
    pytest.param({"process"}, _owner_of_80_changed, id="port-owned-by-another-pid"),
    # The server's reads are those on the descriptor its accept from the client's port
    # returned: with no such accept, the process read nothing of this connection either.
    pytest.param({"process", "request"}, _accept_from_another_port, id="accept-other-peer"),
    pytest.param(
        {"process"}, lambda d: d["facts"]["server"].update(pid=13), id="traced-another-pid"
    ),
    # answer
    pytest.param(
        {"answer"}, payload_byte(carrying(b"HTTP/"), 9, b"2", b"5"), id="answer-byte-on-wire"
    ),
    pytest.param({"answer"}, set_event_data("recv_all", "200 OK", "201 OK"), id="client-got-other"),
    # hops
    pytest.param({"hops"}, set_ttl(tcp("SYN"), 64, 63), id="syn-ttl-on-wire"),
    pytest.param({"hops"}, set_fact("ttl", 65), id="client-default-ttl"),
    pytest.param(
        {"hops"}, set_mac(tcp("SYN"), "src", CLIENT_MAC, SHOUTHOST_MAC), id="syn-from-another-mac"
    ),
]


@pytest.mark.parametrize(("failing", "change"), DEFAULT_CHANGES)
def test_each_claim_can_fail_on_the_default_run(failing: set[str], change: Change) -> None:
    assert failing_after(DEFAULT, change) == failing


def test_every_claim_fails_alone_for_some_change() -> None:
    sets = [p.values[0] for p in DEFAULT_CHANGES]
    alone = {claim for x in sets if isinstance(x, set) and len(x) == 1 for claim in x}
    assert alone == set(CLAIMS)


# ---------------------------------------------------------------- through a router

LEFT_CLIENT_MAC, LEFT_ROUTER_MAC = "02:42:0a:cc:01:64", "02:42:0a:cc:01:02"
RIGHT_ROUTER_MAC, SERVER_MAC = "02:42:0a:cc:02:02", "02:42:0a:cc:02:0a"


def _query_for_server(d: Data) -> None:
    """A DNS query for "server" on the client's loopback, though /etc/hosts lists it and
    is read first: the default run's query for apphost, its name changed (one byte
    shorter: the IPv4 and UDP lengths with it)."""
    query = bytes.fromhex(recorded(DEFAULT)["facts"]["frames"][0]["hex"])
    assert dns.parse(dissect.dissect(query).payload).questions[0].name == "apphost"
    raw = bytearray(query.replace(b"\x07apphost\x00", b"\x06server\x00"))
    for at in (16, 38):  # IPv4 total length, UDP length
        raw[at : at + 2] = (int.from_bytes(raw[at : at + 2], "big") - 1).to_bytes(2, "big")
    assert dns.parse(dissect.dissect(bytes(raw)).payload).questions[0].name == "server"
    first = d["facts"]["frames"][0]["t"]
    d["facts"]["frames"].insert(0, {"capture": "lo of client", "t": first - 0.1, "hex": raw.hex()})


ROUTER_CHANGES = [
    # hops: the router forwarded the SYN without taking one off its TTL
    pytest.param({"hops"}, set_ttl(tcp("SYN", "right"), 63, 64), id="ttl-not-decremented"),
    # ...or left the client's MAC on it: the MACs did not change, and that MAC is no
    # router's interface on the right network
    pytest.param(
        {"hops"},
        set_mac(tcp("SYN", "right"), "src", RIGHT_ROUTER_MAC, LEFT_CLIENT_MAC),
        id="source-mac-unchanged",
    ),
    pytest.param(
        {"hops"},
        set_mac(tcp("SYN", "right"), "dst", SERVER_MAC, RIGHT_ROUTER_MAC),
        id="arrived-not-at-the-server",
    ),
    pytest.param({"hops"}, set_ip_id(tcp("SYN", "right"), 1), id="ip-id-changed"),
    pytest.param({"hops"}, set_ttl(tcp("SYN", "left"), 64, 65), id="left-with-another-ttl"),
    # name: /etc/hosts lists server elsewhere than the client got and connected to
    pytest.param(
        {"name"},
        set_fact("hosts_file", "127.0.0.1\tlocalhost\n10.204.2.99\tserver\n"),
        id="hosts-file-other-address",
    ),
    pytest.param({"name"}, _query_for_server, id="dns-asked-though-listed"),
    # DNS comes first: it should have been asked, and no query was captured
    pytest.param({"name"}, set_fact("nsswitch", "hosts: dns files"), id="dns-first"),
    # the ARP is for the router, the next hop, not for the server
    pytest.param({"arp"}, drop(arp_op(2)), id="arp-answer-missing"),
    # the handshake is judged on the server's network
    pytest.param({"handshake"}, drop(tcp("SYN, ACK", "right")), id="synack-missing-on-right"),
    # the request and the answer are judged on the server's network
    pytest.param(
        {"request"},
        payload_byte(carrying(b"journey", "right"), 0, b"j", b"J"),
        id="request-byte-on-right",
    ),
    pytest.param(
        {"answer"},
        payload_byte(carrying(b"JOURNEY", "right"), 0, b"J", b"j"),
        id="answer-byte-on-right",
    ),
]


@pytest.mark.parametrize(("failing", "change"), ROUTER_CHANGES)
def test_each_claim_can_fail_through_a_router(failing: set[str], change: Change) -> None:
    assert failing_after(ROUTER, change) == failing


# ---------------------------------------------------------------- wire's pure helpers


@pytest.mark.parametrize(
    ("route", "destination", "hop"),
    [
        (
            "10.204.2.10 via 10.204.1.2 dev eth0 src 10.204.1.100 uid 10001 \\    cache \n",
            "10.204.2.10",
            "10.204.1.2",
        ),
        (
            "10.203.0.10 dev eth0 src 10.203.0.100 uid 10001 \\    cache \n",
            "10.203.0.10",
            "10.203.0.10",
        ),
        ("8.8.8.8 via 172.17.0.1 dev eth0 src 172.17.0.2", "8.8.8.8", "172.17.0.1"),
        ("", "10.0.0.1", "10.0.0.1"),
    ],
)
def test_next_hop(route: str, destination: str, hop: str) -> None:
    assert wire.next_hop(route, destination) == hop


SUBNETS = {"left": "10.204.1.0/24", "right": "10.204.2.0/24"}


@pytest.mark.parametrize(
    ("ip", "subnets", "network"),
    [
        ("10.204.1.100", SUBNETS, "left"),
        ("10.204.2.10", SUBNETS, "right"),
        ("10.204.2.255", SUBNETS, "right"),
        ("10.204.3.1", SUBNETS, ""),
        ("127.0.0.11", SUBNETS, ""),
        ("10.204.1.5", {}, ""),
        ("10.204.1.5", {"unset": "", "left": "10.204.1.0/24"}, "left"),  # no subnet: skipped
        ("10.204.1.5", {"host-bits": "10.204.1.1/24"}, "host-bits"),  # not strict
        ("10.0.0.1", {"wide": "10.0.0.0/8", "narrow": "10.0.0.0/24"}, "wide"),  # the first
    ],
)
def test_network_of(ip: str, subnets: dict[str, str], network: str) -> None:
    assert wire.network_of(ip, subnets) == network


def link(address: str, *infos: tuple[str, str]) -> dict[str, Any]:
    return {
        "ifname": "eth",
        "address": address,
        "addr_info": [{"family": family, "local": local} for family, local in infos],
    }


@pytest.mark.parametrize(
    ("links", "expected"),
    [
        ([], {}),
        (
            [
                link("00:00:00:00:00:00", ("inet", "127.0.0.1")),
                link("02:42:0a:cb:00:64", ("inet", "10.203.0.100")),
            ],
            {"127.0.0.1": "00:00:00:00:00:00", "10.203.0.100": "02:42:0a:cb:00:64"},
        ),
        (  # IPv6 addresses are not IPv4's
            [
                link(
                    "02:42:0a:cb:00:64", ("inet6", "fe80::42:aff:fecb:64"), ("inet", "10.203.0.100")
                )
            ],
            {"10.203.0.100": "02:42:0a:cb:00:64"},
        ),
        (  # two addresses on one link share its MAC
            [link("02:42:0a:cc:01:02", ("inet", "10.204.1.2"), ("inet", "10.204.1.3"))],
            {"10.204.1.2": "02:42:0a:cc:01:02", "10.204.1.3": "02:42:0a:cc:01:02"},
        ),
        ([{"ifname": "tunl0", "address": "00:00:00:00"}], {}),  # no addresses at all
        ([{"addr_info": [{"family": "inet", "local": "10.0.0.1"}]}], {"10.0.0.1": ""}),
    ],
)
def test_macs(links: list[dict[str, Any]], expected: dict[str, str]) -> None:
    assert wire.macs(links) == expected


def test_macs_of_a_recorded_router() -> None:
    assert wire.macs(recorded(ROUTER)["facts"]["links"]["router"]) == {
        "127.0.0.1": "00:00:00:00:00:00",
        "10.204.1.2": LEFT_ROUTER_MAC,
        "10.204.2.2": RIGHT_ROUTER_MAC,
    }


A, B = "10.0.0.1:40000", "10.0.0.2:80"


def seg(seq: int, payload: bytes, src: str = A, t: float = 0.0) -> wire.Segment:
    dst = B if src == A else A
    return wire.Segment(t, "net", src, dst, "PSH, ACK", seq, 0, 64, 0, "", "", payload)


@pytest.mark.parametrize(
    ("segs", "expected"),
    [
        ([], b""),
        ([seg(100, b"")], b""),  # a bare ACK carries nothing
        ([seg(100, b"abc")], b"abc"),
        ([seg(100, b"ab"), seg(102, b"cd")], b"abcd"),
        ([seg(102, b"cd"), seg(100, b"ab")], b"abcd"),  # in sequence order, not arrival
        ([seg(100, b"ab"), seg(100, b"ab"), seg(102, b"cd")], b"abcd"),  # retransmitted once
        ([seg(100, b"abcd"), seg(102, b"cdef")], b"abcdef"),  # overlapping retransmission
        ([seg(100, b"abcdef"), seg(102, b"cd")], b"abcdef"),  # one inside another
        ([seg(100, b"ab"), seg(100, b"abcd")], b"abcd"),  # the longer at the same sequence
        ([seg(100, b"abcd"), seg(100, b"ab")], b"abcd"),
        ([seg(100, b"ab"), seg(105, b"xy")], b"ab"),  # a gap: what follows it is not there
        ([seg(100, b"ab"), seg(105, b"xy"), seg(102, b"cde")], b"abcdexy"),  # gap filled
        ([seg(100, b"ab"), seg(1, b"zz", B), seg(102, b"cd")], b"abcd"),  # other way ignored
        ([seg(1, b"zz", B)], b""),
        ([seg(2**32 - 2, b"ab"), seg(0, b"cd")], b"abcd"),  # the sequence number wraps
        ([seg(0, b"cd"), seg(2**32 - 2, b"ab")], b"abcd"),
    ],
)
def test_stream(segs: list[wire.Segment], expected: bytes) -> None:
    assert wire.stream(segs, A) == expected


def test_stream_of_the_recorded_runs() -> None:
    for name, here, there, request, answer in [
        (DEFAULT, *ends(DEFAULT), b"GET / HTTP/1.1\r\n", b"HTTP/1.1 200 OK"),
        (ROUTER, *ends(ROUTER), b"journey", b"JOURNEY"),
    ]:
        segments = wire.segments(wire.frames_of(recorded(name)["facts"]), here, there)
        right = [s for s in segments if s.place in ("labnet", "right")]
        assert wire.stream(right, here).startswith(request)
        assert wire.stream(right, there).startswith(answer)


# ---------------------------------------------------------------- judgement's pure helpers

HOSTS = """127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
# 10.9.9.9 server   (a comment)
10.204.2.10\tserver server.lab   # the target
10.204.1.100 client
10.204.1.2  Router gw
10.204.2.99\tserver
10.0.0.7
"""


@pytest.mark.parametrize(
    ("hosts_file", "name", "address"),
    [
        (HOSTS, "server", "10.204.2.10"),  # the first line that lists it, not the comment
        (HOSTS, "server.lab", "10.204.2.10"),  # an alias
        (HOSTS, "SERVER", "10.204.2.10"),  # any case
        (HOSTS, "router", "10.204.1.2"),
        (HOSTS, "gw", "10.204.1.2"),
        (HOSTS, "ip6-loopback", "::1"),
        (HOSTS, "the", ""),  # a word of a comment is not a name
        (HOSTS, "10.204.1.100", ""),  # an address is not a name
        (HOSTS, "10.0.0.7", ""),  # a line with an address and no name
        (HOSTS, "apphost", ""),
        (HOSTS, "serv", ""),
        ("", "server", ""),
        ("#10.0.0.1 server\n", "server", ""),
        ("10.0.0.1 server#comment\n", "server", "10.0.0.1"),
    ],
)
def test_listed(hosts_file: str, name: str, address: str) -> None:
    assert judgement.listed(hosts_file, name) == address


def test_listed_in_the_recorded_hosts_files() -> None:
    assert judgement.listed(recorded(ROUTER)["facts"]["hosts_file"], "server") == "10.204.2.10"
    assert judgement.listed(recorded(DEFAULT)["facts"]["hosts_file"], "apphost") == ""


@pytest.mark.parametrize(
    ("nsswitch", "first"),
    [
        ("hosts:          files dns", True),
        ("hosts: files", True),
        ("hosts: files myhostname dns", True),
        ("hosts: files [NOTFOUND=return] dns", True),
        ("hosts: dns files", False),
        ("hosts: dns", False),
        ("hosts: mdns4_minimal dns files", False),
        ("", False),
    ],
)
def test_files_first(nsswitch: str, first: bool) -> None:
    assert judgement.files_first(nsswitch) is first


# ------------------------------------------------ what a busy kernel may also do


def _syn_sent_twice(d: Data) -> None:
    """The client's SYN retransmitted on the same network: same segment, new IP id."""
    frames = d["facts"]["frames"]
    n = find(d, tcp("SYN", "labnet"))
    again = dict(frames[n], t=frames[n]["t"] + 1.0)
    raw = bytearray(bytes.fromhex(again["hex"]))
    ip = start(frame(d, n), "IPv4")
    raw[ip + 4 : ip + 6] = (int.from_bytes(raw[ip + 4 : ip + 6], "big") + 1).to_bytes(2, "big")
    again["hex"] = raw.hex()
    frames.insert(n + 1, again)


def _accept_returned_fd_0(d: Data) -> None:
    fd = the_accept(d)["result"]
    for call in d["facts"]["server"]["calls"]:
        if call["fd"] == fd:
            call["fd"] = 0
        if call["name"] == "accept4" and call["result"] == fd:
            call["result"] = 0


def _reply_before_request(d: Data) -> None:
    frames = d["facts"]["frames"]
    request, reply = find(d, arp_op(1)), find(d, arp_op(2))
    frames[reply]["t"] = frames[request]["t"] - 0.001


@pytest.mark.parametrize(
    ("change", "failing"),
    [
        (_syn_sent_twice, set()),  # a retransmission is not another hop
        (_accept_returned_fd_0, set()),  # fd 0 is a descriptor like any other
        (_reply_before_request, {"arp"}),  # an answer nobody asked for
        (
            set_fact(
                "flushed",
                {
                    "next_hop": "10.203.0.10",
                    "after": "10.203.0.10 dev eth0 lladdr 02:42:0a:cb:00:0a REACHABLE",
                },
            ),
            {"arp"},
        ),
    ],
)
def test_what_the_judgement_must_tell_apart(change: Change, failing: set[str]) -> None:
    assert failing_after(DEFAULT, change) == failing


def _read_cut_short(d: Data) -> None:
    """The process read only the first 10 bytes of the request (and strace showed them)."""
    call = the_read(d)
    call["result"], call["data"] = 10, call["data"][:10]


def _loopback_not_watched(d: Data) -> None:
    d["facts"]["captures"] = [c for c in d["facts"]["captures"] if not c.startswith("lo of")]
    d["facts"]["frames"] = [f for f in d["facts"]["frames"] if not f["capture"].startswith("lo")]


def _flushed_after_the_arp(d: Data) -> None:
    d["facts"]["flushed"]["t"] = max(f["t"] for f in d["facts"]["frames"]) + 1


def _client_listed_elsewhere(d: Data) -> None:
    """The lab's record of the client's first address is not what its kernel used."""
    d["lab"]["hosts"]["client"]["ip"] = "10.99.0.100"


@pytest.mark.parametrize(
    ("name", "change", "failing"),
    [
        (DEFAULT, _read_cut_short, {"request"}),  # it did not read the whole request
        (ROUTER, _loopback_not_watched, {"name"}),  # "no DNS query" unseen is no evidence
        (DEFAULT, _flushed_after_the_arp, {"arp"}),  # an ARP before the flush proves nothing
        (DEFAULT, _client_listed_elsewhere, set()),  # the addresses judged are the kernel's
    ],
)
def test_what_was_observed_and_nothing_else_decides(
    name: str, change: Change, failing: set[str]
) -> None:
    assert failing_after(name, change) == failing


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("passwd: files\nhosts:          files dns\n", "hosts:          files dns"),
        ("hosts: dns files # resolver first\n", "hosts: dns files"),
        ("# hosts: files\n", ""),
        ("", ""),  # musl has no nsswitch.conf
    ],
)
def test_hosts_line(text: str, line: str) -> None:
    assert judgement.hosts_line(text) == line
