"""frozen-listener: who answers a connection, the process or its kernel?

    socklab run examples/experiments/frozen_listener.py

tcp-shout is frozen (docker pause: its process gets no CPU at all) while clients
connect and send. The handshake is the kernel's work, so connections are still
accepted into the listening socket's queue; the messages wait in the kernel's
buffers; nothing is answered until the process runs again, and then every one is.
"""

from __future__ import annotations

import lab

CLIENTS = 3


class FrozenListener(lab.Experiment):
    name = "frozen-listener"
    question = "Who answers a TCP connection: the listening process, or its host's kernel?"
    needs = lab.Needs(processes={"tcp-shout": ("8080/tcp",)})
    claims = (
        lab.Claim(
            "kernel-accepts",
            "While the process is frozen, connections to its port still succeed: the kernel "
            "completes the handshake and queues them for a later accept()",
        ),
        lab.Claim(
            "kernel-buffers",
            "Messages sent on them are taken too (send succeeds): they wait in kernel buffers",
        ),
        lab.Claim("nothing-answered", "...but nothing is answered while the process is frozen"),
        lab.Claim(
            "all-answered-after",
            "Once the process runs again, every queued connection is accepted and answered",
        ),
    )

    def run(self, ctx: lab.Context) -> None:
        net = ctx.lab
        with ctx.session(net.topology.client.name) as s:
            with net.fault("pause", "tcp-shout"):
                for i in range(CLIENTS):
                    sock = f"c{i}"
                    s.step(op="socket", sock=sock, type="tcp", timeout=1.0)
                    s.step(op="connect", sock=sock, host="tcp-shout", port=8080)
                    s.step(op="send", sock=sock, data=f"hello {i}")
                    s.step(op="shutdown", sock=sock, how="wr")
                for i in range(CLIENTS):
                    s.step(op="recv", sock=f"c{i}")  # frozen: a timeout
                ctx.facts["resumed_at"] = ctx.clock() - ctx.t0
            for i in range(CLIENTS):
                s.step(op="timeout", sock=f"c{i}", seconds=5.0)
                s.step(op="recv_all", sock=f"c{i}")

    def judge(self, seen: lab.Observations) -> lab.Verdicts:
        events, resumed = seen.events, seen.facts["resumed_at"]
        socks = [f"c{i}" for i in range(CLIENTS)]
        v = lab.Verdicts()

        @v.claim("kernel-accepts")
        def _() -> tuple[bool, str]:
            outcomes = [events.first(s, "connect").outcome for s in socks]
            return all(o == "ok" for o in outcomes), f"connects while frozen: {outcomes}"

        @v.claim("kernel-buffers")
        def _() -> tuple[bool, str]:
            sends = [events.first(s, "send") for s in socks]
            return (
                all(e.outcome == "ok" and e.nbytes for e in sends),
                f"sends while frozen: {[(e.outcome, e.nbytes) for e in sends]}",
            )

        @v.claim("nothing-answered")
        def _() -> tuple[bool, str]:
            during = [e for e in events if e.op.startswith("recv") and e.t < resumed]
            answers = [e for e in during if e.outcome == "ok" and e.nbytes]
            return (
                bool(during) and not answers,
                f"{len(during)} receives before the resume: {sorted({e.outcome for e in during})}",
            )

        @v.claim("all-answered-after")
        def _() -> tuple[bool, str]:
            replies = {s: events.received(s).decode(errors="replace") for s in socks}
            expected = {f"c{i}": f"HELLO {i}" for i in range(CLIENTS)}
            return replies == expected, f"after the resume: {replies}"

        return v
