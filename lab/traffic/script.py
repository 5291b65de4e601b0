"""Socket scripts written as Python, and the events they record.

A ``Script`` is a list of socket operations that runs inside a lab host (or on
the Docker host) as ``services/probes/sockscript.py``; every operation becomes an
``Event`` holding what the kernel answered. Build one readably::

    script = Script()
    c = script.tcp("c")
    c.connect("tcp-shout", 8080).sendall("hello").shutdown().recv_all().close()
    events = lab.run(script, on="client")
    events.received("c")            # b'HELLO'

The steps it produces are exactly the JSON steps ``sockscript`` documents, so a
script can also be given as that list of dicts.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lab.services.probes.sockscript import Event, Step, raw

__all__ = ["Event", "Events", "Script", "Sock", "steps_of"]


def _payload(data: str | bytes, fill: tuple[str, int] | None) -> dict[str, Any]:
    if fill is not None:
        return {"fill": {"byte": fill[0], "count": fill[1]}}
    if isinstance(data, bytes):
        return {"hex": data.hex()}
    return {"data": data}


class Sock:
    """One named socket of a script; every method adds a step and returns the socket."""

    def __init__(self, script: Script, name: str) -> None:
        self.script = script
        self.name = name

    def _add(self, op: str, **fields: Any) -> Sock:
        self.script.steps.append({"op": op, "sock": self.name, **fields})
        return self

    def bind(self, host: str = "0.0.0.0", port: int = 0) -> Sock:
        return self._add("bind", host=host, port=port)

    def listen(self) -> Sock:
        return self._add("listen")

    def accept(self, name: str) -> Sock:
        """Accept one connection as a new socket called ``name`` (returned)."""
        self._add("accept", **{"as": name})
        return Sock(self.script, name)

    def connect(self, host: str, port: int) -> Sock:
        return self._add("connect", host=host, port=port)

    def send(self, data: str | bytes = "", *, fill: tuple[str, int] | None = None) -> Sock:
        """One send(): the kernel may take less than all of it (the count is recorded)."""
        return self._add("send", **_payload(data, fill))

    def sendall(self, data: str | bytes = "", *, fill: tuple[str, int] | None = None) -> Sock:
        return self._add("sendall", **_payload(data, fill))

    def sendto(
        self, host: str, port: int, data: str | bytes = "", *, fill: tuple[str, int] | None = None
    ) -> Sock:
        return self._add("sendto", host=host, port=port, **_payload(data, fill))

    def recv(self, size: int = 65536, *, wait_for: int | None = None) -> Sock:
        """One recv(); ``wait_for``: block until that many bytes are queued (SO_RCVLOWAT)."""
        extra = {"wait_for": wait_for} if wait_for is not None else {}
        return self._add("recv", size=size, **extra)

    def recv_all(self, size: int = 65536) -> Sock:
        """recv() until the peer closes (EOF), each call recorded."""
        return self._add("recv_all", size=size)

    def recvfrom(self, size: int = 65536) -> Sock:
        return self._add("recvfrom", size=size)

    def shutdown(self, how: str = "wr") -> Sock:
        return self._add("shutdown", how=how)

    def timeout(self, seconds: float) -> Sock:
        return self._add("timeout", seconds=seconds)

    def close(self) -> Sock:
        return self._add("close")


class Script:
    """Socket operations to run in one host, in order."""

    def __init__(self, steps: Iterable[Step] = ()) -> None:
        self.steps: list[Step] = list(steps)

    def socket(
        self,
        name: str,
        kind: str = "tcp",
        *,
        timeout: float | None = None,
        rcvbuf: int = 0,
        ttl: int = 0,
        reuseaddr: bool = False,
    ) -> Sock:
        """A new socket. ``timeout``: how long each call may block (default 3 s);
        ``rcvbuf``: SO_RCVBUF; ``ttl``: IP_TTL, how many routers its packets may cross;
        ``reuseaddr``: SO_REUSEADDR, to bind a port a TIME_WAIT still holds."""
        step: Step = {"op": "socket", "sock": name, "type": kind}
        if timeout is not None:
            step["timeout"] = timeout
        if rcvbuf:
            step["rcvbuf"] = rcvbuf
        if ttl:
            step["ttl"] = ttl
        if reuseaddr:
            step["reuseaddr"] = True
        self.steps.append(step)
        return Sock(self, name)

    def tcp(
        self,
        name: str,
        *,
        timeout: float | None = None,
        rcvbuf: int = 0,
        ttl: int = 0,
        reuseaddr: bool = False,
    ) -> Sock:
        return self.socket(
            name, "tcp", timeout=timeout, rcvbuf=rcvbuf, ttl=ttl, reuseaddr=reuseaddr
        )

    def udp(
        self, name: str, *, timeout: float | None = None, rcvbuf: int = 0, ttl: int = 0
    ) -> Sock:
        return self.socket(name, "udp", timeout=timeout, rcvbuf=rcvbuf, ttl=ttl)

    def resolve(self, host: str) -> Script:
        """Look ``host`` up (Docker's DNS inside the lab); the address is the event's data."""
        self.steps.append({"op": "resolve", "host": host})
        return self

    def extend(self, other: Script | Iterable[Step], *, rename: str = "") -> Script:
        """Append another script's steps, its sockets renamed to ``rename`` if given."""
        for step in steps_of(other):
            self.steps.append({**step, "sock": rename} if rename and "sock" in step else dict(step))
        return self

    def __len__(self) -> int:
        return len(self.steps)

    def __repr__(self) -> str:
        return f"Script({len(self.steps)} steps)"


def steps_of(script: Script | Iterable[Step]) -> list[Step]:
    return list(script.steps) if isinstance(script, Script) else list(script)


class Events(list[Event]):
    """Recorded socket events, with the questions experiments ask of them."""

    def of(self, sock: str) -> Events:
        return Events(e for e in self if e.sock == sock)

    def every(self, sock: str, op: str) -> Events:
        return Events(e for e in self if e.sock == sock and e.op == op)

    def first(self, sock: str, op: str) -> Event:
        """The first ``op`` on ``sock``; LookupError if the script had none."""
        for e in self:
            if e.sock == sock and e.op == op:
                return e
        raise LookupError(f"no {op} on socket {sock} was recorded")

    def received(self, sock: str | None = None) -> bytes:
        """Every byte received (on ``sock``, or on any socket), in order."""
        return b"".join(
            raw(e.data or "")
            for e in self
            if (sock is None or e.sock == sock) and e.op.startswith("recv") and e.outcome == "ok"
        )

    def failure(self) -> str:
        """The first operation that did not succeed, as 'op: OUTCOME', or ''."""
        for e in self:
            if e.outcome not in ("ok", "eof"):
                return f"{e.op}: {e.outcome}"
        return ""

    def __repr__(self) -> str:
        lines = [
            f"{e.t * 1000:9.2f} ms  {e.host:<10} {e.sock:<8} {e.op:<9} {e.outcome}"
            + (f"  {e.nbytes} B" if e.nbytes is not None else "")
            for e in self
        ]
        return "\n".join(lines) or "Events([])"
