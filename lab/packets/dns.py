"""DNS messages taken apart (RFC 1035, section 4), sans-IO: bytes in, a Message out.

Enough for the lab's journey from a name to a process: the header, the questions,
and the answer records, with an A record's address as text. Names follow
compression pointers (4.1.4), each pointer only backwards and at most 16 deep, so
a crafted message cannot loop. Anything cut short or malformed is a DnsError,
never a guess.
"""

from __future__ import annotations

import socket
import struct
from typing import NamedTuple

HEADER = struct.Struct("!HHHHHH")
TYPES = {1: "A", 2: "NS", 5: "CNAME", 28: "AAAA", 12: "PTR"}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
MAX_POINTERS = 16


class DnsError(ValueError):
    """Not a DNS message this reader can take apart (the message says where)."""


class Question(NamedTuple):
    name: str
    type: str  # "A", "AAAA"... or the number as text
    klass: int


class Record(NamedTuple):
    name: str
    type: str
    klass: int
    ttl: int
    value: str  # an A record's address, an AAAA's, a CNAME's name; else the rdata in hex


class Message(NamedTuple):
    id: int
    response: bool  # QR
    rcode: str
    questions: tuple[Question, ...]
    answers: tuple[Record, ...]

    def addresses(self, name: str) -> list[str]:
        """The A records' addresses for ``name`` (any case, with or without a final dot)."""
        wanted = name.rstrip(".").lower()
        return [r.value for r in self.answers if r.type == "A" and r.name.lower() == wanted]


def parse(data: bytes) -> Message:
    if len(data) < HEADER.size:
        raise DnsError(f"{len(data)} bytes: shorter than a DNS header (12)")
    ident, flags, qdcount, ancount, _ns, _ar = HEADER.unpack_from(data)
    at = HEADER.size
    questions = []
    for _ in range(qdcount):
        name, at = _name(data, at)
        qtype, qclass = _unpack("!HH", data, at, "a question")
        at += 4
        questions.append(Question(name, TYPES.get(qtype, str(qtype)), qclass))
    answers = []
    for _ in range(ancount):
        name, at = _name(data, at)
        rtype, rclass, ttl, length = _unpack("!HHIH", data, at, "a record")
        at += 10
        if at + length > len(data):
            raise DnsError(f"a record's data runs past the message ({length} bytes at {at})")
        answers.append(
            Record(name, TYPES.get(rtype, str(rtype)), rclass, ttl, _value(data, at, rtype, length))
        )
        at += length
    return Message(
        ident,
        bool(flags & 0x8000),
        RCODES.get(flags & 0xF, str(flags & 0xF)),
        (*questions,),
        (*answers,),
    )


def _unpack(form: str, data: bytes, at: int, what: str) -> tuple[int, ...]:
    try:
        return struct.unpack_from(form, data, at)
    except struct.error:
        raise DnsError(f"{what} is cut short at byte {at}") from None


def _value(data: bytes, at: int, rtype: int, length: int) -> str:
    rdata = data[at : at + length]
    if rtype == 1 and length == 4:
        return socket.inet_ntop(socket.AF_INET, rdata)
    if rtype == 28 and length == 16:
        return socket.inet_ntop(socket.AF_INET6, rdata)
    if rtype in (2, 5, 12):
        return _name(data, at)[0]
    return rdata.hex()


def _name(data: bytes, at: int) -> tuple[str, int]:
    """The name at ``at`` and where what follows it begins (after the first pointer, if any)."""
    labels: list[str] = []
    end: int | None = None
    pointers = 0
    while True:
        if at >= len(data):
            raise DnsError(f"a name runs past the message at byte {at}")
        length = data[at]
        if length == 0:
            at += 1
            break
        if length & 0xC0 == 0xC0:
            if at + 1 >= len(data):
                raise DnsError(f"a name's pointer is cut short at byte {at}")
            target = ((length & 0x3F) << 8) | data[at + 1]
            pointers += 1
            if target >= at or pointers > MAX_POINTERS:
                raise DnsError(f"a name's pointer at byte {at} does not point backwards")
            if end is None:
                end = at + 2
            at = target
            continue
        if length & 0xC0:
            raise DnsError(f"a label length 0x{length:02x} at byte {at} is reserved")
        if at + 1 + length > len(data):
            raise DnsError(f"a label runs past the message at byte {at}")
        labels.append(data[at + 1 : at + 1 + length].decode("ascii", "backslashreplace"))
        at += 1 + length
    return ".".join(labels), at if end is None else end
