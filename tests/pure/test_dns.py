"""lab.packets.dns, byte by byte: what the client's resolver and Docker's sent, checked
against scapy's DNS layer, and every malformed message refused with where."""

from __future__ import annotations

import pytest
from scapy.layers.dns import DNS, DNSQR, DNSRR

from lab.packets.dns import DnsError, Message, Question, Record, parse

# A query glibc sent from the client for "apphost" (captured on its loopback).
QUERY = bytes.fromhex("36d80100000100000000000007617070686f73740000010001")
# Docker's answer: the name by a pointer back to the question (0xc00c).
ANSWER = bytes.fromhex(
    "36d88180000100010000000007617070686f73740000010001c00c000100010000025800040acb000a"
)


def test_a_query_and_its_answer_as_the_client_saw_them() -> None:
    query = parse(QUERY)
    assert query == Message(0x36D8, False, "NOERROR", (Question("apphost", "A", 1),), ())
    answer = parse(ANSWER)
    assert answer.response
    assert answer.id == query.id
    assert answer.answers == (Record("apphost", "A", 1, 600, "10.203.0.10"),)
    assert answer.addresses("AppHost.") == ["10.203.0.10"]
    assert answer.addresses("shouthost") == []


@pytest.mark.parametrize(
    "message",
    [
        DNS(id=7, rd=1, qd=[DNSQR(qname="shouthost", qtype="A")]),
        DNS(id=9, qr=1, rcode=3, qd=[DNSQR(qname="nowhere", qtype="AAAA")]),
        DNS(
            id=1,
            qr=1,
            qd=[DNSQR(qname="web")],
            an=[
                DNSRR(rrname="web", type="CNAME", rdata="apphost."),
                DNSRR(rrname="apphost", type="A", rdata="10.0.0.9", ttl=5),
            ],
        ),
    ],
)
def test_messages_scapy_builds_read_the_same(message: DNS) -> None:
    got = parse(bytes(message))
    assert got.id == message.id
    assert got.response == bool(message.qr)
    assert got.rcode == {0: "NOERROR", 3: "NXDOMAIN"}[message.rcode]
    assert [q.name for q in got.questions] == [message.qd[0].qname.decode().rstrip(".")]
    answers = [(r.name, r.type, r.value.rstrip(".")) for r in got.answers]
    if message.an:
        assert answers == [("web", "CNAME", "apphost"), ("apphost", "A", "10.0.0.9")]
        assert got.addresses("apphost") == ["10.0.0.9"]


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (b"\x00" * 11, "shorter than a DNS header"),
        (QUERY[:-2], "a question is cut short"),
        (QUERY[:15], "a label runs past the message"),
        (QUERY[:12] + b"\x07app", "a label runs past"),
        (QUERY[:12], "a name runs past the message at byte 12"),
        (QUERY[:12] + b"\xc0", "pointer is cut short"),
        (QUERY[:12] + b"\xc0\x0c\x00\x01\x00\x01", "does not point backwards"),  # to itself
        (QUERY[:12] + b"\x40abc", "reserved"),
        (ANSWER[:-1], "a record's data runs past"),
        (ANSWER[:-6], "a record is cut short"),
    ],
)
def test_a_malformed_message_is_refused_saying_where(data: bytes, where: str) -> None:
    with pytest.raises(DnsError, match=where):
        parse(data)


def test_pointers_that_loop_are_refused() -> None:
    # Two names pointing at each other: each pointer must point backwards, so neither can.
    header = bytes.fromhex("000100000001000000000000")
    looped = header + b"\xc0\x0e\xc0\x0c" + b"\x00\x01\x00\x01"
    with pytest.raises(DnsError, match="does not point backwards"):
        parse(looped)
