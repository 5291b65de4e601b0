"""half-close: can a TCP client go on receiving after it has finished sending?

The tutorial's experiment (docs/scripting.md builds it step by step).

    socklab run examples/experiments/half_close.py
"""

from __future__ import annotations

import lab


class HalfClose(lab.Experiment):
    name = "half-close"
    question = "Can a TCP client go on receiving after it has finished sending?"
    needs = lab.Needs(processes={"tcp-shout": ("8080/tcp",)})
    claims = (
        lab.Claim(
            "still-receives",
            "After shutdown(SHUT_WR) the client still receives the whole answer",
        ),
        lab.Claim("then-eof", "...and then end-of-file, once the server has closed its side"),
        lab.Claim(
            "no-more-sending",
            "A send after shutdown(SHUT_WR) fails at once with EPIPE: that direction is closed",
        ),
    )

    def run(self, ctx: lab.Context) -> None:
        script = lab.Script()
        c = script.tcp("c")
        c.connect("tcp-shout", 8080).sendall("half open").shutdown("wr")
        c.send("too late").recv_all().close()
        ctx.on(ctx.lab.topology.client.name, script)

    def judge(self, seen: lab.Observations) -> lab.Verdicts:
        events = seen.events
        v = lab.Verdicts()

        @v.claim("still-receives")
        def _() -> tuple[bool, str]:
            got = events.received("c")
            return got == b"HALF OPEN", f"received {got!r} after the shutdown"

        @v.claim("then-eof")
        def _() -> tuple[bool, str]:
            last = events.every("c", "recv_all")[-1]
            return last.outcome == "eof", f"the last receive: {last.outcome}"

        @v.claim("no-more-sending")
        def _() -> tuple[bool, str]:
            late = events.first("c", "send")
            return late.outcome == "EPIPE", f"send after the shutdown: {late.outcome}"

        return v
