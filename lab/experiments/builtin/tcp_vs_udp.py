"""tcp-vs-udp: what each transport does for you, and what it does not."""

from __future__ import annotations

from lab.experiments.model import Claim, Context, Experiment, Needs, Observations, Verdicts
from lab.services.probes.sockscript import Step

NO_LISTENER = 9
UDP_MAX = 65507  # 65535 - 20 (IPv4 header) - 8 (UDP header)
BIG = 200_000
SMALL_RCVBUF = 4096  # the kernel doubles it; still far below BIG
MESSAGES = ("one", "two", "three")


class TcpVsUdp(Experiment):
    name = "tcp-vs-udp"
    question = "What do TCP and UDP each do for you, and what don't they?"
    needs = Needs(
        processes={"tcp-shout": ("8080/tcp",), "udp-shout": ("8080/udp",)}, hosts=("shouthost",)
    )
    claims = (
        Claim(
            "udp-no-handshake",
            "UDP needs no handshake: the very first datagram of a fresh socket carries the "
            "data, reaches the process and is answered, with nothing exchanged before it",
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

    def run(self, ctx: Context) -> None:
        messages = list(MESSAGES)
        steps: list[Step] = [
            # A fresh UDP socket's first datagram, with nothing before it, and its answer.
            {"op": "socket", "sock": "u0", "type": "udp", "timeout": 2.0},
            {"op": "sendto", "sock": "u0", "host": "udp-shout", "port": 8080, "data": "hello?"},
            {"op": "recvfrom", "sock": "u0"},
            {"op": "close", "sock": "u0"},
            # TCP towards a port with no listener: its first packet is a SYN, refused.
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
        ctx.on(ctx.lab.topology.client.name, steps)

    def judge(self, seen: Observations) -> Verdicts:
        events = seen.events
        v = Verdicts()

        @v.claim("udp-no-handshake")
        def _() -> tuple[bool, str]:
            u0 = events.of("u0")
            first_op = next(e for e in u0 if e.op != "socket")
            reply = events.first("u0", "recvfrom")
            return (
                first_op.op == "sendto"
                and first_op.outcome == "ok"
                and reply.outcome == "ok"
                and reply.data == "HELLO?",
                f"the socket's first operation: {first_op.op} to {first_op.remote} "
                f"({first_op.outcome}, {first_op.nbytes} bytes); the process answered "
                f"{reply.data!r} ({reply.outcome})",
            )

        @v.claim("tcp-needs-connection")
        def _() -> tuple[bool, str]:
            tcp_conn = events.first("t0", "connect")
            return (
                tcp_conn.outcome == "ECONNREFUSED",
                f"connect {tcp_conn.remote}: {tcp_conn.outcome}",
            )

        @v.claim("tcp-no-boundaries")
        def _() -> tuple[bool, str]:
            sends = events.every("t3", "send")
            (recv,) = events.every("t3", "recv")
            return (
                len(sends) == len(MESSAGES)
                and all(s.outcome == "ok" for s in sends)
                and recv.data == "".join(MESSAGES).upper(),
                f"{len(sends)} sends of {[s.nbytes for s in sends]} bytes; one recv got "
                f"{recv.nbytes} bytes: {recv.data!r}",
            )

        @v.claim("tcp-stream-pieces")
        def _() -> tuple[bool, str]:
            pieces = [e for e in events.every("tbig", "recv_all") if e.outcome == "ok"]
            total = sum(e.nbytes or 0 for e in pieces)
            sizes = [e.nbytes or 0 for e in pieces]
            return (
                total == BIG and len(pieces) > 1,
                f"one send of {BIG} bytes; {len(pieces)} recvs brought {total} bytes "
                f"(largest {max(sizes, default=0)}, smallest {min(sizes, default=0)})",
            )

        @v.claim("udp-boundaries")
        def _() -> tuple[bool, str]:
            replies = [e.data for e in events.every("u3", "recv")]
            return (
                sorted(r or "" for r in replies) == sorted(m.upper() for m in MESSAGES),
                f"{len(MESSAGES)} datagrams sent; recvs returned {replies}",
            )

        @v.claim("udp-truncation")
        def _() -> tuple[bool, str]:
            sent = events.first("ut", "sendto")
            cut, after = events.every("ut", "recvfrom")
            lost = (sent.nbytes or 0) - (cut.nbytes or 0)
            return (
                sent.nbytes == 1500
                and cut.nbytes == 1000
                and cut.note == "truncated"
                and after.outcome == "timeout",
                f"{sent.nbytes} bytes sent; recvfrom(1000) got {cut.nbytes} "
                f"({cut.note or 'whole'}), {lost} bytes lost; the next recvfrom: {after.outcome}",
            )

        @v.claim("udp-empty")
        def _() -> tuple[bool, str]:
            empty_send = events.every("ue", "send")[0]
            empty_recv = events.every("ue", "recv")[0]
            return (
                empty_send.outcome == "ok"
                and empty_send.nbytes == 0
                and empty_recv.outcome == "ok"
                and empty_recv.nbytes == 0,
                f"send of {empty_send.nbytes} bytes: {empty_send.outcome}; reply: "
                f"{empty_recv.outcome}, {empty_recv.nbytes} bytes",
            )

        @v.claim("udp-max")
        def _() -> tuple[bool, str]:
            max_send, too_big = events.every("ue", "send")[1:3]
            max_recv = events.every("ue", "recv")[1]
            return (
                max_send.outcome == "ok"
                and max_recv.nbytes == UDP_MAX
                and too_big.outcome == "EMSGSIZE",
                f"{UDP_MAX} bytes: {max_send.outcome}, reply of {max_recv.nbytes}; "
                f"{UDP_MAX + 1} bytes: {too_big.outcome}",
            )

        return v
