"""What each cell should show, by fault and client kind: the claims the matrix makes."""

from __future__ import annotations

from dataclasses import dataclass, replace

from lab.experiments.builtin.failures.model import Column, Row
from lab.experiments.model import (
    Claim,
)


@dataclass(frozen=True)
class Expect:
    """What a cell should show. ``during``: see ``during_verdict``; ``old``: does the very
    socket work again after recovery; ``late``: are messages sent during the fault answered
    after it (True), lost (False), or is there nothing to say (None). ``also``: other
    outcomes the row's timing lets the kernel produce, each as right as ``during``."""

    during: str
    old: bool
    late: bool | None
    why: str
    also: tuple[str, ...] = ()

    @property
    def admits(self) -> tuple[str, ...]:
        return (self.during, *self.also)


# The expected outcome of every kind of cell, as the Linux kernel behaves (Docker bridge
# network): by the fault's kind, whether it struck the server's host or only the server
# process, and the client's kind of socket.
_TCP_DEATH = Expect(
    "eof-then-epipe",
    False,
    False,
    "the kernel closes the dead process's socket (FIN: recv sees EOF); the next "
    "send draws an RST and the one after fails with EPIPE (BrokenPipeError)",
)
_SILENT_TCP = Expect(
    "silent",
    True,
    True,
    "nothing comes back, not even an error; the data waits in kernel buffers "
    "and is answered once the peer is back",
)
_HOST_GONE_TCP = Expect(
    "eof-then-silent",
    False,
    False,
    "the dying process's FIN still gets out (EOF), but then the address is gone: sends "
    "succeed into the void, no RST, no error; after the host returns, its new kernel "
    "knows no such connection and resets it",
)
_UNTOUCHED = Expect(
    "answered",
    True,
    None,
    "pausing a host's container freezes only its own init: the processes are containers "
    "of their own, so they and the host's kernel go on answering",
)
_ACROSS_A_CUT = Expect(
    "silent",
    True,
    True,
    "TCP retransmits into the cut between the machines; once they are joined again the "
    "retransmission crosses the overlay and the same connection carries on",
)
EXPECTED: dict[tuple[str, bool, str], Expect] = {
    # (fault kind, struck the server's host, client kind)
    ("kill", False, "stream"): _TCP_DEATH,
    ("kill", False, "udp"): Expect(
        "silent",
        True,
        False,
        "the ICMP port unreachable is ignored by an unconnected socket; "
        "the datagram is lost; after restart the same socket works",
    ),
    ("kill", False, "udp-connected"): Expect(
        "refused",
        True,
        False,
        "ICMP port unreachable comes back and a connected socket "
        "reports it as ECONNREFUSED; after restart the same socket works",
    ),
    ("stop", False, "stream"): _TCP_DEATH,
    ("stop", False, "udp"): Expect("silent", True, False, "as for a crash: no socket, no reply"),
    ("stop", False, "udp-connected"): Expect(
        "refused", True, False, "as for a crash: ICMP port unreachable"
    ),
    ("kill", True, "stream"): _HOST_GONE_TCP,
    ("kill", True, "udp"): Expect("silent", True, False, "no host, no ICMP: only silence"),
    ("kill", True, "udp-connected"): Expect(
        "silent",
        True,
        False,
        "no host, so no ICMP either: even a connected socket hears "
        "nothing; the same socket works once the host is back",
    ),
    ("stop", True, "stream"): _HOST_GONE_TCP,
    ("stop", True, "udp"): Expect("silent", True, False, "as for a host crash: silence"),
    ("stop", True, "udp-connected"): Expect(
        "silent", True, False, "as for a host crash: no host, no ICMP"
    ),
    ("pause", False, "stream"): _SILENT_TCP,
    ("pause", False, "udp"): Expect(
        "silent",
        True,
        True,
        "the datagram waits in the frozen process's socket buffer and is answered after resume",
    ),
    ("pause", False, "udp-connected"): Expect(
        "silent", True, True, "the socket still exists, so no ICMP: a late answer"
    ),
    ("pause", True, "stream"): _UNTOUCHED,
    ("pause", True, "udp"): _UNTOUCHED,
    ("pause", True, "udp-connected"): _UNTOUCHED,
    ("cut", True, "stream"): Expect(
        "silent",
        True,
        True,
        "TCP retransmits into the cut; after the cable is back the "
        "retransmission gets through and the same connection carries on",
    ),
    ("cut", True, "udp"): Expect(
        "silent", True, False, "the datagram is lost in the cut; UDP never resends it"
    ),
    ("cut", True, "udp-connected"): Expect(
        "silent", True, False, "lost in the cut, and no ICMP either"
    ),
    # A machine cut off (from all, or from the client's machine only): the overlay's
    # VXLAN frames are dropped on the underlay, both kernels live on, nothing answers.
    ("isolate", True, "stream"): _ACROSS_A_CUT,
    ("isolate", True, "udp"): Expect(
        "silent", True, False, "the datagram is lost with the machine; UDP never resends it"
    ),
    ("isolate", True, "udp-connected"): Expect(
        "silent", True, False, "lost, and no ICMP: the machine that would send one is cut off"
    ),
    ("sever", True, "stream"): _ACROSS_A_CUT,
    ("sever", True, "udp"): Expect(
        "silent", True, False, "lost on the cut link between the two machines"
    ),
    ("sever", True, "udp-connected"): Expect(
        "silent", True, False, "lost on the cut link, and no ICMP comes back over it"
    ),
    ("restart", False, "stream"): _TCP_DEATH,
    ("restart", False, "udp"): Expect(
        "answered",
        True,
        None,
        "a new process on the same port answers the same socket: "
        'UDP keeps no connection to lose ("udp works tho")',
    ),
    ("restart", False, "udp-connected"): Expect(
        "answered", True, None, "the same: the restarted server answers at once"
    ),
    ("restart", True, "stream"): _TCP_DEATH,
    ("restart", True, "udp"): Expect(
        "answered", True, None, "host and process are back on the same address: it answers"
    ),
    ("restart", True, "udp-connected"): Expect(
        "answered", True, None, "the same, for a connected socket"
    ),
}


# A restart that does not wait for the lab to be healthy again (a schedule's row) lets the
# clients' first messages reach the host before the new process has bound its port: what
# the kernel does to a message in that gap is as right as the answer that comes after it.
# TCP is not here: the old connection is gone either way (EOF, then RST and EPIPE).
IN_THE_GAP: dict[str, tuple[tuple[str, ...], str]] = {
    "udp": (
        ("silent",),
        "; or, probed before the new process bound its port, the datagrams fell in the gap "
        "and were lost (an unconnected socket ignores the ICMP), and the same socket works "
        "after",
    ),
    "udp-connected": (
        ("refused",),
        "; or, probed before the new process bound its port, a datagram fell in the gap and "
        "drew ICMP port unreachable (ECONNREFUSED), and the same socket works after",
    ),
}


# A restarted host may come back with a new MAC address (newer Docker draws one at
# random): until the client's kernel resolves the address again, its datagrams go to the
# old one and are dropped, so a connected socket may hear nothing rather than a refusal.
HOST_GAP = (
    "; or, the host back with a new MAC address, the datagrams sent before the client "
    "resolved it again were lost (silent)"
)


def expectation(row: Row, column: Column) -> Expect | None:
    """What a client should see in a row; None when the row does not touch its server."""
    hits_host = column.host in row.targets
    hits_process = column.process in row.targets
    if not hits_process and not hits_host:
        return None
    # Every fault on a host takes its processes with it, except a freeze: a frozen host
    # leaves its processes running, so a frozen process decides the cell.
    on_host = hits_host and not (row.fault == "pause" and hits_process)
    expect = EXPECTED.get((row.fault, on_host, column.kind))
    if expect is not None and row.fault == "restart" and not row.settle:
        also, why = IN_THE_GAP.get(column.kind, ((), ""))
        if on_host and also and "silent" not in also:
            also, why = (*also, "silent"), why + HOST_GAP
        return replace(expect, also=also, why=expect.why + why)
    return expect


def claims_of(rows: tuple[Row, ...], columns: list[Column]) -> tuple[Claim, ...]:
    """A claim for every cell a row strikes, from what its fault kind predicts there."""
    claims = []
    for row in rows:
        for column in columns:
            expect = expectation(row, column)
            if expect is not None:
                title = row.title or f"{row.fault} {', '.join(row.targets)}"
                claims.append(
                    Claim(f"{row.name}.{column.name}", f"{title} / {column.name}: {expect.why}")
                )
    return tuple(claims)
