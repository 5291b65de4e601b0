"""tcp-vs-udp: what each transport does for you, and what it does not."""

from __future__ import annotations

from lab.experiments.model import Claim, Context, Experiment, every, first
from services.probes.sockscript import Step

NO_LISTENER = 9
UDP_MAX = 65507  # 65535 - 20 (IPv4 header) - 8 (UDP header)
BIG = 200_000
SMALL_RCVBUF = 4096  # the kernel doubles it; still far below BIG


class TcpVsUdp(Experiment):
    name = "tcp-vs-udp"
    question = "What do TCP and UDP each do for you, and what don't they?"
    claims = (
        Claim(
            "udp-no-handshake",
            "UDP needs no handshake: a datagram to a port nobody listens on is sent anyway",
        ),
        Claim(
            "tcp-needs-connection",
            "TCP needs a connection first: connecting to that same port is refused",
        ),
        Claim(
            "tcp-no-boundaries",
            "TCP keeps no message boundaries: three sends can be read by one recv",
        ),
        Claim(
            "tcp-stream-pieces",
            "...and one large send can arrive in many recvs: TCP carries a byte stream",
        ),
        Claim(
            "udp-boundaries",
            "UDP keeps boundaries: three datagrams are three recvs of one datagram each",
        ),
        Claim(
            "udp-truncation",
            "A datagram larger than the receive buffer is cut off and the rest is lost, "
            "as the seed's recvfrom(1000) would do",
        ),
        Claim("udp-empty", "An empty datagram is still a datagram: it is delivered and answered"),
        Claim(
            "udp-max",
            f"The largest UDP payload over IPv4, {UDP_MAX} bytes, is delivered; one byte more "
            "is refused by the sender's own kernel (EMSGSIZE)",
        ),
    )

    def run(self, ctx: Context) -> dict[str, tuple[bool, str]]:
        messages = ["one", "two", "three"]
        steps: list[Step] = [
            # Both transports towards a port with no listener.
            {"op": "socket", "sock": "u0", "type": "udp"},
            {
                "op": "sendto",
                "sock": "u0",
                "host": "shouthost",
                "port": NO_LISTENER,
                "data": "hello?",
            },
            {"op": "close", "sock": "u0"},
            {"op": "socket", "sock": "t0", "type": "tcp"},
            {"op": "connect", "sock": "t0", "host": "shouthost", "port": NO_LISTENER},
            {"op": "close", "sock": "t0"},
            # Three small sends to tcp-shout; one recv that waits until all replies are queued.
            {"op": "socket", "sock": "t3", "type": "tcp"},
            {"op": "connect", "sock": "t3", "host": "tcp-shout", "port": 8080},
            *({"op": "send", "sock": "t3", "data": m} for m in messages),
            {"op": "recv", "sock": "t3", "wait_for": sum(map(len, messages))},
            {"op": "close", "sock": "t3"},
            # One large send; a small receive buffer lets it in a piece at a time.
            {"op": "socket", "sock": "tbig", "type": "tcp", "rcvbuf": SMALL_RCVBUF},
            {"op": "connect", "sock": "tbig", "host": "tcp-shout", "port": 8080},
            {"op": "sendall", "sock": "tbig", "fill": {"byte": "a", "count": BIG}},
            {"op": "shutdown", "sock": "tbig", "how": "wr"},
            {"op": "recv_all", "sock": "tbig"},
            {"op": "close", "sock": "tbig"},
            # Three datagrams to udp-shout, three replies.
            {"op": "socket", "sock": "u3", "type": "udp"},
            {"op": "connect", "sock": "u3", "host": "udp-shout", "port": 8080},
            *({"op": "send", "sock": "u3", "data": m} for m in messages),
            *({"op": "recv", "sock": "u3"} for _ in messages),
            {"op": "close", "sock": "u3"},
            # The seed's recvfrom(1000) against a 1500-byte reply; then look for the rest.
            {"op": "socket", "sock": "ut", "type": "udp", "timeout": 1.0},
            {
                "op": "sendto",
                "sock": "ut",
                "host": "udp-shout",
                "port": 8080,
                "fill": {"byte": "x", "count": 1500},
            },
            {"op": "recvfrom", "sock": "ut", "size": 1000},
            {"op": "recvfrom", "sock": "ut", "size": 1000},
            {"op": "close", "sock": "ut"},
            # Empty and largest datagrams.
            {"op": "socket", "sock": "ue", "type": "udp"},
            {"op": "connect", "sock": "ue", "host": "udp-shout", "port": 8080},
            {"op": "send", "sock": "ue", "data": ""},
            {"op": "recv", "sock": "ue"},
            {"op": "send", "sock": "ue", "fill": {"byte": "m", "count": UDP_MAX}},
            {"op": "recv", "sock": "ue"},
            {"op": "send", "sock": "ue", "fill": {"byte": "m", "count": UDP_MAX + 1}},
            {"op": "close", "sock": "ue"},
        ]
        events = ctx.on("client", steps)
        findings: dict[str, tuple[bool, str]] = {}

        udp_sent = first(events, "u0", "sendto")
        tcp_conn = first(events, "t0", "connect")
        findings["udp-no-handshake"] = (
            udp_sent.outcome == "ok" and udp_sent.nbytes == 6,
            f"sendto {udp_sent.remote}: {udp_sent.outcome}, {udp_sent.nbytes} bytes handed over",
        )
        findings["tcp-needs-connection"] = (
            tcp_conn.outcome == "ECONNREFUSED",
            f"connect {tcp_conn.remote}: {tcp_conn.outcome}",
        )

        sends = every(events, "t3", "send")
        (recv,) = every(events, "t3", "recv")
        findings["tcp-no-boundaries"] = (
            all(s.outcome == "ok" for s in sends) and recv.data == "ONETWOTHREE",
            f"{len(sends)} sends of {[s.nbytes for s in sends]} bytes; one recv got "
            f"{recv.nbytes} bytes: {recv.data!r}",
        )

        pieces = [e for e in every(events, "tbig", "recv_all") if e.outcome == "ok"]
        total = sum(e.nbytes or 0 for e in pieces)
        sizes = [e.nbytes or 0 for e in pieces]
        findings["tcp-stream-pieces"] = (
            total == BIG and len(pieces) > 1,
            f"one send of {BIG} bytes; {len(pieces)} recvs brought {total} bytes "
            f"(largest {max(sizes, default=0)}, smallest {min(sizes, default=0)})",
        )

        replies = [e.data for e in every(events, "u3", "recv")]
        findings["udp-boundaries"] = (
            sorted(r or "" for r in replies) == sorted(m.upper() for m in messages),
            f"3 datagrams sent; recvs returned {replies}",
        )

        sent = first(events, "ut", "sendto")
        cut, after = every(events, "ut", "recvfrom")
        lost = (sent.nbytes or 0) - (cut.nbytes or 0)
        findings["udp-truncation"] = (
            sent.nbytes == 1500
            and cut.nbytes == 1000
            and cut.note == "truncated"
            and after.outcome == "timeout",
            f"{sent.nbytes} bytes sent; recvfrom(1000) got {cut.nbytes} ({cut.note or 'whole'}), "
            f"{lost} bytes lost; the next recvfrom: {after.outcome}",
        )

        ue_sends = every(events, "ue", "send")
        ue_recvs = every(events, "ue", "recv")
        empty_send, empty_recv = ue_sends[0], ue_recvs[0]
        findings["udp-empty"] = (
            empty_send.outcome == "ok" and empty_recv.outcome == "ok" and empty_recv.nbytes == 0,
            f"send of 0 bytes: {empty_send.outcome}; reply: {empty_recv.outcome}, "
            f"{empty_recv.nbytes} bytes",
        )
        max_send, too_big = ue_sends[1], ue_sends[2]
        max_recv = ue_recvs[1]
        findings["udp-max"] = (
            max_send.outcome == "ok"
            and max_recv.nbytes == UDP_MAX
            and too_big.outcome == "EMSGSIZE",
            f"{UDP_MAX} bytes: {max_send.outcome}, reply of {max_recv.nbytes}; "
            f"{UDP_MAX + 1} bytes: {too_big.outcome}",
        )
        return findings
