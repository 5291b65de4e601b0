"""udp-queue-overflow: where do datagrams go when the receiver cannot keep up?

    socklab run examples/experiments/udp_queue_overflow.py

udp-shout is frozen while the client sends a burst of numbered datagrams, more
than its socket's receive buffer can hold (the first version of this experiment
sent too few: the kernel kept them all, and it was the client's own, smaller
buffers that overflowed with the answers). The kernel keeps what fits and drops
the rest, counting each drop against the socket (the "drops" column of
/proc/net/udp, what `ss -u` and `netstat -su` report); the sender is told
nothing. After the resume, the process answers exactly what was kept.
"""

from __future__ import annotations

import lab

SENT = 1500
SIZE = 1400  # bytes per datagram: 2.1 MB in all, well over udp-shout's receive buffer
# (it asks for 1 MiB; the kernel caps that at net.core.rmem_max and doubles it)
SOCKETS = 16  # the answers come back spread over several sockets, so none of the
# client's own receive buffers (a default size: smaller than udp-shout's) overflows


def drops_on(table: str, port: int) -> int:
    """The drop counter of the UDP socket bound to ``port`` in a /proc/net/udp text."""
    for line in table.splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port:
            return int(fields[-1])
    raise LookupError(f"no UDP socket bound to port {port}")


class UdpQueueOverflow(lab.Experiment):
    name = "udp-queue-overflow"
    question = "Where do datagrams go when the receiving process cannot keep up?"
    needs = lab.Needs(processes={"udp-shout": ("8080/udp",)})
    claims = (
        lab.Claim(
            "sender-unaware",
            f"The sender hands all {SENT} datagrams to its kernel without a single error",
        ),
        lab.Claim(
            "some-kept",
            "The receiving kernel queues what fits in the frozen process's receive buffer, "
            "and the process answers those once it runs again",
        ),
        lab.Claim(
            "rest-dropped-and-counted",
            "The rest are dropped on arrival, and the kernel counts each drop against the "
            "socket: kept + dropped = sent",
        ),
    )

    def run(self, ctx: lab.Context) -> None:
        net = ctx.lab
        host = net.process("udp-shout").host
        read = ["cat", "/proc/net/udp"]
        ctx.facts["drops_before"] = drops_on(host.exec(read).decode(), 8080)
        socks = [f"u{i}" for i in range(SOCKETS)]
        with ctx.session(net.topology.client.name) as s:
            for sock in socks:
                s.step(op="socket", sock=sock, type="udp", timeout=2.0)
                s.step(op="connect", sock=sock, host="udp-shout", port=8080)
            with net.fault("pause", "udp-shout"):
                for n in range(SENT):
                    s.step(op="send", sock=socks[n % SOCKETS], data=f"{n:05d}".ljust(SIZE, "."))
                ctx.facts["drops_after"] = drops_on(host.exec(read).decode(), 8080)
            for sock in socks:
                while s.step(op="recv", sock=sock)[-1].outcome == "ok":
                    pass  # every answer the process gave, until there is no more

    def judge(self, seen: lab.Observations) -> lab.Verdicts:
        events = seen.events
        sends = [e for e in events if e.op == "send"]
        answers = [e for e in events if e.op == "recv" and e.outcome == "ok"]
        dropped = seen.facts["drops_after"] - seen.facts["drops_before"]
        v = lab.Verdicts()

        @v.claim("sender-unaware")
        def _() -> tuple[bool, str]:
            failed = [e.outcome for e in sends if e.outcome != "ok"]
            return (
                len(sends) == SENT and not failed,
                f"{len(sends)} sends, {len(failed)} errors",
            )

        @v.claim("some-kept")
        def _() -> tuple[bool, str]:
            numbers = sorted(int((e.data or "0")[:5]) for e in answers)
            return (
                0 < len(answers) < SENT and numbers == list(range(len(answers))),
                f"{len(answers)} answered after the resume, numbers "
                f"{numbers[:1]}...{numbers[-1:]} (the first ones sent: the queue kept those)",
            )

        @v.claim("rest-dropped-and-counted")
        def _() -> tuple[bool, str]:
            return (
                dropped > 0 and len(answers) + dropped == SENT,
                f"{dropped} drops counted on udp-shout's socket; "
                f"{len(answers)} kept + {dropped} dropped = {len(answers) + dropped} of {SENT}",
            )

        return v
