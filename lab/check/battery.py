"""The probes' socket scripts and what each expects back (pure: steps in, no I/O).

Every probe is a socket script (services/probes/sockscript.py) run by a client on the
server's own host (so a server bound to 127.0.0.1 is judged on everything but
reachability) or on the client host. Its socket names start with the probe's name,
so a judgement finds its own events. A connection the server ended first is closed
with RST ("reset": "if-peer-closed"): the server's side then leaves no FIN_WAIT2 or
TIME_WAIT behind to stop it from binding its port again for the next probe.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from lab.check.spec import Assignment, Example
from lab.services.probes.sockscript import Step, payload

TIMEOUT = 2.0  # seconds a probe waits for an answer that should come at once
QUIET = 0.3  # seconds it listens for bytes that should not come
NON_ASCII = "grüße, κόσμε: 你好 ✓"
# "price: 5€ each, all in", € (e2 82 ac) cut after its second byte. € has no upper case, so a
# server that never decodes (bytes.upper()) is right here and wrong only on non-ascii.
SPLIT_TEXT = "price: 5€ each, all in"
SPLIT = ("70726963653a2035e282", "ac20656163682c20616c6c20696e")
NOT_TEXT = "fffe00c328a0ff0a"  # no UTF-8 decoder accepts these
LARGE = 1024 * 1024  # read back as fast as it comes
# A reader that reads nothing for a second, then reads through a small receive buffer.
# Linux grows a socket's send buffer up to 4 MiB (tcp_wmem) while the peer's window is
# shut, so the answer must be larger for the server's sends to wait (or come back short).
SLOW = 6 * 1024 * 1024
SLOW_READ, SLOW_STALL, SLOW_RCVBUF = 65536, 1.0, 8192
MANY = 10  # connections whose descriptors must not stay open
LARGEST_DATAGRAM = 65507  # 65535 - 8 (UDP header) - 20 (IPv4 header)
CLOSE = {"reset": "if-peer-closed"}


@dataclass
class Plan:
    """One probe: its steps, and what it expects (recorded in the result's facts)."""

    steps: list[Step]
    expect: dict[str, Any] = field(default_factory=dict)


def lines(count: int) -> dict[str, Any]:
    """A payload of numbered lines: a byte lost or out of order changes its digest."""
    return {"lines": count}


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Battery:
    """The probes for one assignment, aimed at ``host``:``port``."""

    def __init__(self, assignment: Assignment, host: str, port: int) -> None:
        self.a = assignment
        self.host = host
        self.port = port

    def _examples(self, *texts: str) -> list[Example]:
        """Requests with their right answers: the texts through the rule, else the examples."""
        if self.a.answer("") is None or not texts:
            return list(self.a.examples)
        return [Example(t, self.a.answer(t) or "") for t in texts]

    def _first(self) -> Example:
        return self._examples("hello, lab")[0]

    # --- streams --------------------------------------------------------------------

    def _open(self, sock: str, timeout: float = TIMEOUT, **options: Any) -> list[Step]:
        return [
            {"op": "socket", "sock": sock, "type": "tcp", "timeout": timeout, **options},
            {"op": "connect", "sock": sock, "host": self.host, "port": self.port},
        ]

    def _exchange(self, sock: str, example: Example) -> list[Step]:
        return [
            {"op": "send", "sock": sock, "data": example.send},
            {"op": "recv_until", "sock": sock, "count": len(example.reply.encode())},
        ]

    def stream(self, probe: str) -> Plan:
        return getattr(self, "_stream_" + probe.replace("-", "_"))()  # type: ignore[no-any-return]

    def _stream_answers(self) -> Plan:
        # Short requests: a server that waits for more bytes than the protocol says fails.
        examples = self._examples("hi", " there")
        s = "answers.a"
        steps = self._open(s)
        for example in examples:
            steps += self._exchange(s, example)
        steps += [
            {"op": "timeout", "sock": s, "seconds": QUIET},
            {"op": "recv", "sock": s},  # a timeout here: nothing more than the answers
            {"op": "close", "sock": s, **CLOSE},
        ]
        return Plan(steps, {"exchanges": [vars(e) for e in examples]})

    def _stream_non_ascii(self) -> Plan:
        example = self._examples(NON_ASCII)[0]
        s = "non-ascii.a"
        steps = [*self._open(s), *self._exchange(s, example), {"op": "close", "sock": s, **CLOSE}]
        return Plan(steps, {"exchanges": [vars(example)]})

    def _stream_split_character(self) -> Plan:
        reply = self.a.answer(SPLIT_TEXT) or ""
        s = "split-character.a"
        steps = [
            *self._open(s),
            {"op": "send", "sock": s, "hex": SPLIT[0]},
            {"op": "pause", "seconds": QUIET},  # the server reads the first part on its own
            {"op": "send", "sock": s, "hex": SPLIT[1]},
            {"op": "recv_until", "sock": s, "count": len(reply.encode())},
            {"op": "close", "sock": s, **CLOSE},
        ]
        return Plan(steps, {"exchanges": [{"send": SPLIT_TEXT, "reply": reply}]})

    def _converse(self, s: str, count: int, rcvbuf: int | None = None, **options: Any) -> Plan:
        sent = payload(lines(count))
        reply = (self.a.answer(sent.decode()) or "").encode()
        small = {"rcvbuf": rcvbuf} if rcvbuf else {}
        steps = [
            *self._open(s, **small),
            {"op": "converse", "sock": s, **lines(count), "count": len(reply), **options},
            {"op": "close", "sock": s, **CLOSE},
        ]
        return Plan(steps, {"nbytes": len(reply), "sha256": digest(reply), "sent": len(sent)})

    def _stream_large(self) -> Plan:
        return self._converse("large.a", LARGE, size=65536)

    def _stream_slow_reader(self) -> Plan:
        return self._converse(
            "slow-reader.a", SLOW, size=SLOW_READ, stall=SLOW_STALL, rcvbuf=SLOW_RCVBUF
        )

    def _stream_sequential(self) -> Plan:
        example, steps = self._first(), []
        for n in range(3):
            s = f"sequential.{n}"
            steps += [*self._open(s), *self._exchange(s, example), {"op": "close", "sock": s}]
        return Plan(steps, {"exchanges": [vars(example)], "clients": 3})

    def _stream_concurrent(self) -> Plan:
        example = self._first()
        a, b = "concurrent.a", "concurrent.b"
        steps = [
            *self._open(a),
            *self._exchange(a, example),
            *self._open(b),
            *self._exchange(b, example),  # while a is still connected
            *self._exchange(a, example),
            {"op": "close", "sock": b, **CLOSE},
            {"op": "close", "sock": a, **CLOSE},
        ]
        return Plan(steps, {"exchanges": [vars(example)]})

    def _stream_reset(self) -> Plan:
        example = self._first()
        a, b = "reset.a", "reset.b"
        steps = [
            *self._open(a),
            *self._exchange(a, example),
            {"op": "close", "sock": a, "reset": True},  # RST while the server waits in recv
            {"op": "pause", "seconds": QUIET},
            *self._open(b),
            *self._exchange(b, example),
            {"op": "close", "sock": b, **CLOSE},
        ]
        return Plan(steps, {"exchanges": [vars(example)]})

    def _stream_half_close(self) -> Plan:
        example, steps = self._first(), []
        for n in range(MANY):
            s = f"half-close.{n}"
            steps += [
                *self._open(s),
                {"op": "send", "sock": s, "data": example.send},
                {"op": "shutdown", "sock": s, "how": "wr"},  # FIN: no more requests
                {"op": "recv_all", "sock": s},  # the answer, then the server's FIN (eof)
                {"op": "close", "sock": s, **CLOSE},
            ]
        return Plan(steps, {"exchanges": [vars(example)], "clients": MANY})

    def reachable(self, target: str) -> Plan:
        """From another host, to ``target`` (the server host's address on their network)."""
        example = self._first()
        s = "reachable.a"
        if self.a.stream:
            steps = [
                {"op": "socket", "sock": s, "type": "tcp", "timeout": TIMEOUT},
                {"op": "connect", "sock": s, "host": target, "port": self.port},
                *self._exchange(s, example),
                {"op": "close", "sock": s, **CLOSE},
            ]
        else:
            steps = [
                *self._udp(s),
                {
                    "op": "sendto",
                    "sock": s,
                    "host": target,
                    "port": self.port,
                    "data": example.send,
                },
                {"op": "recvfrom", "sock": s, "size": 65535},
            ]
        return Plan(steps, {"exchanges": [vars(example)], "target": target})

    def restart_before(self) -> list[Step]:
        """A client connected and answered, before the server is killed."""
        s, example = "restart.a", self._first()
        if self.a.stream:
            return [*self._open(s), *self._exchange(s, example)]
        return [*self._udp(s), *self._ask(s, data=example.send)]

    def restart_after(self) -> list[Step]:
        """The same client after the restart; then (TCP) a new one."""
        s, example = "restart.a", self._first()
        if not self.a.stream:  # the same socket (it never knew); another request, so a
            # late answer of the killed server is not taken for the new one's
            return self._ask(s, data=self._after().send)
        b = "restart.b"
        return [
            {"op": "recv", "sock": s},  # the killed server's FIN: eof
            {"op": "close", "sock": s, **CLOSE},
            *self._open(b),
            *self._exchange(b, example),
            {"op": "close", "sock": b, **CLOSE},
        ]

    def _after(self) -> Example:
        return self._examples("back again")[0]

    def restart_expect(self) -> dict[str, Any]:
        return {"exchanges": [vars(self._first())], "after": [vars(self._after())]}

    def _stream_not_text(self) -> Plan:
        example = self._first()
        a, b = "not-text.a", "not-text.b"
        steps = [
            *self._open(a),
            {"op": "send", "sock": a, "hex": NOT_TEXT},
            {"op": "timeout", "sock": a, "seconds": QUIET},
            {"op": "recv", "sock": a},  # any answer, or none
            {"op": "close", "sock": a, **CLOSE},
            *self._open(b),
            *self._exchange(b, example),
            {"op": "close", "sock": b, **CLOSE},
        ]
        return Plan(steps, {"exchanges": [vars(example)]})

    # --- datagrams ------------------------------------------------------------------

    def datagram(self, probe: str) -> Plan:
        return getattr(self, "_datagram_" + probe.replace("-", "_"))()  # type: ignore[no-any-return]

    def _udp(self, sock: str) -> list[Step]:
        # Unconnected: the kernel hands it every answer, whatever port it came from, so
        # only sender-address judges where answers come from.
        return [{"op": "socket", "sock": sock, "type": "udp", "timeout": TIMEOUT}]

    def _ask(self, sock: str, **request: Any) -> list[Step]:
        return [
            {"op": "sendto", "sock": sock, "host": self.host, "port": self.port, **request},
            {"op": "recvfrom", "sock": sock, "size": 65535},
        ]

    def _datagram_answers(self) -> Plan:
        examples = self._examples("hello", "and again")
        steps = self._udp("answers.a")
        for example in examples:
            steps += self._ask("answers.a", data=example.send)
        return Plan(steps, {"exchanges": [vars(e) for e in examples]})

    def _datagram_large(self) -> Plan:
        sizes = (1472, 4000, LARGEST_DATAGRAM)  # one Ethernet frame's payload; more; the largest
        steps, expect = [], []
        for n, size in enumerate(sizes):  # each from its own socket: a sender seen once
            sent = payload({"lines": size})
            reply = (self.a.answer(sent.decode()) or "").encode()
            steps += [*self._udp(f"large.{n}"), *self._ask(f"large.{n}", lines=size)]
            expect.append({"sent": size, "nbytes": len(reply), "sha256": digest(reply)})
        return Plan(steps, {"datagrams": expect})

    def _datagram_sender_address(self) -> Plan:
        examples = self._examples("from one", "from two")
        if len(examples) < 2:
            examples = [examples[0], examples[0]]
        a, b = "sender-address.a", "sender-address.b"
        steps = [
            *self._udp(a),
            *self._udp(b),
            {
                "op": "sendto",
                "sock": a,
                "host": self.host,
                "port": self.port,
                "data": examples[0].send,
            },
            {
                "op": "sendto",
                "sock": b,
                "host": self.host,
                "port": self.port,
                "data": examples[1].send,
            },
            {"op": "recvfrom", "sock": b, "size": 65535},
            {"op": "recvfrom", "sock": a, "size": 65535},
        ]
        return Plan(steps, {"exchanges": [vars(e) for e in examples]})

    def _datagram_non_ascii(self) -> Plan:
        example = self._examples(NON_ASCII)[0]
        steps = [*self._udp("non-ascii.a"), *self._ask("non-ascii.a", data=example.send)]
        return Plan(steps, {"exchanges": [vars(example)]})

    def _datagram_not_text(self) -> Plan:
        example = self._first()
        a, b = "not-text.a", "not-text.b"
        steps = [
            *self._udp(a),
            {"op": "sendto", "sock": a, "host": self.host, "port": self.port, "hex": NOT_TEXT},
            {"op": "timeout", "sock": a, "seconds": QUIET},
            {"op": "recvfrom", "sock": a, "size": 65535},  # any answer, or none
            *self._udp(b),
            *self._ask(b, data=example.send),
        ]
        return Plan(steps, {"exchanges": [vars(example)]})
