"""Run a script of socket operations and record what the kernel answered to each.

A script is a JSON list of steps; each names a socket and one operation:

  {"op": "socket", "sock": "a", "type": "tcp"|"udp", "timeout": 3.0, "rcvbuf": N, "ttl": N,
   "reuseaddr": true}                                              (SO_REUSEADDR before bind)
  {"op": "bind", "sock": "a", "host": "0.0.0.0", "port": 80}
  {"op": "listen", "sock": "a"}
  {"op": "accept", "sock": "a", "as": "b"}
  {"op": "connect", "sock": "a", "host": "http", "port": 80}      (or "to": "<sock>")
  {"op": "send", "sock": "a", <payload>}                          (send() once; the count sent)
  {"op": "sendall", "sock": "a", <payload>}
  {"op": "sendto", "sock": "a", "host": ..., "port": ..., <payload>}
  {"op": "recv", "sock": "a", "size": 65536, "wait_for": N}       (one recv; wait_for sets
                                                                   SO_RCVLOWAT: block until N bytes)
  {"op": "recv_all", "sock": "a", "size": 65536}                  (recv until EOF, each recorded)
  {"op": "recv_until", "sock": "a", "count": N}                   (recv until N bytes in all,
                                                                   EOF or an error, each recorded)
  {"op": "converse", "sock": "a", <payload>, "count": N, "size": 4096, "pause": 0.0,
   "stall": 1.0, "timeout": 10.0}    (sendall in a thread while this one reads N bytes back,
                                      `size` at a time with `pause` between reads, after
                                      `stall` seconds of reading nothing: a slow reader; one
                                      recv event: its count, and a sha256 in note)
  {"op": "recvfrom", "sock": "a", "size": 1000}                   (notes "truncated" when the
                                                                   datagram did not fit)
  {"op": "shutdown", "sock": "a", "how": "wr"|"rd"|"rdwr"}
  {"op": "close", "sock": "a", "reset": false}                    (reset: SO_LINGER 0, so the
                                                                   close sends RST, not FIN;
                                                                   "if-peer-closed": only when
                                                                   the peer ended first)
  {"op": "pause", "seconds": 0.2}                                 (let the peer read between sends)
  {"op": "timeout", "sock": "a", "seconds": 1.0}
  {"op": "resolve", "host": "tcp-shout"}

<payload> is "data" (text, sent as UTF-8), "hex", "fill": {"byte": "x", "count": N}, or
"lines": N (N bytes of numbered lines: a byte lost or reordered shows).

Every step becomes an event: time since the script started, host, socket name,
protocol, local and remote address, and the outcome: "ok", "eof", "timeout", or
the errno name (ECONNREFUSED, EPIPE, ECONNRESET, EADDRINUSE, EMSGSIZE...). A
step that fails is recorded and the script goes on, so one script can show a
refusal and what follows it. Nothing here decides whether an outcome is right.

``python3 -m services.probes.sockscript '<json>'`` runs a script and prints its events as JSON.
"""

from __future__ import annotations

import errno
import hashlib
import json
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

Step = dict[str, Any]
DEFAULT_TIMEOUT = 3.0
CONVERSE_TIMEOUT = 10.0
RECV_SIZE = 65536


class ScriptError(Exception):
    """The script itself is wrong (unknown op, unknown socket): a bug, not an observation."""


@dataclass
class Event:
    t: float  # seconds since the script started (monotonic clock)
    host: str
    sock: str
    protocol: str
    op: str
    local: str
    remote: str
    outcome: str  # "ok", "eof", "timeout", or an errno name
    nbytes: int | None = None
    data: str | None = None  # the bytes sent or received, exactly (see text())
    note: str = ""
    dt: float = 0.0  # how long the call took (a recv waits; a timeout lasts its timeout)


def outcome_of(exc: BaseException) -> str:
    """The name a student would look up: the errno name, or 'timeout'."""
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, socket.gaierror):
        return f"unresolved ({exc.strerror})"
    if isinstance(exc, OSError) and exc.errno is not None:
        return errno.errorcode.get(exc.errno, str(exc.errno))
    return type(exc).__name__


def payload(step: Step) -> bytes:
    if "data" in step:
        return str(step["data"]).encode()
    if "hex" in step:
        return bytes.fromhex(step["hex"])
    if "fill" in step:
        return str(step["fill"]["byte"]).encode()[:1] * int(step["fill"]["count"])
    if "lines" in step:
        return numbered_lines(int(step["lines"]))
    return b""


def numbered_lines(count: int) -> bytes:
    """``count`` bytes of lines that each carry their number."""
    out = bytearray()
    n = 0
    while len(out) < count:
        out += b"%08d the quick brown fox jumps over the lazy dog\n" % n
        n += 1
    return bytes(out[:count])


def text(data: bytes) -> str:
    """Bytes as a JSON-safe string that turns back into the very same bytes.

    Undecodable bytes become lone surrogates (surrogateescape); json escapes them
    as \\udcXX. ``raw(text(b)) == b`` for every b.
    """
    return data.decode("utf-8", "surrogateescape")


def raw(data: str) -> bytes:
    return data.encode("utf-8", "surrogateescape")


def printable(data: str) -> str:
    """For people: undecodable bytes shown as \\xNN escapes."""
    return raw(data).decode("utf-8", "backslashreplace")


@dataclass
class _Sock:
    sock: socket.socket
    protocol: str
    remote: str = ""
    peer_closed: bool = False  # a read saw the peer's FIN, or a call its RST


@dataclass
class Runner:
    hostname: str = field(default_factory=socket.gethostname)
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self.socks: dict[str, _Sock] = {}
        self.events: list[Event] = []
        self.started = self.clock()

    def run(self, steps: list[Step]) -> list[Event]:
        try:
            for step in steps:
                self.step(step)
        finally:
            for s in self.socks.values():
                s.sock.close()
        return self.events

    def step(self, step: Step) -> None:
        op = step.get("op")
        handler = getattr(self, f"_op_{op}", None)
        if handler is None:
            raise ScriptError(f"unknown op {op!r}")
        handler(step)

    # --- recording ---

    def _record(
        self, step: Step, action: Callable[[], Any], *, remote: str = "", data: bytes | None = None
    ) -> Any:
        name = step.get("sock", "")
        entry = self.socks.get(name)
        t = self.clock() - self.started
        result: Any = None
        outcome, nbytes, note = "ok", None, ""
        try:
            result = action()
        except OSError as exc:
            outcome = outcome_of(exc)
        else:
            if isinstance(result, tuple) and len(result) == 3:  # (bytes, truncated, peer)
                data, truncated, peer = result
                nbytes, note = len(data), "truncated" if truncated else ""
                remote = remote or f"{peer[0]}:{peer[1]}"
            elif isinstance(result, bytes):
                data, nbytes = result, len(result)
                # An empty read is end-of-stream on TCP; on UDP it is an empty datagram.
                if (
                    step["op"] in ("recv", "recv_all", "recv_until")
                    and not result
                    and entry
                    and entry.protocol == "tcp"
                ):
                    outcome = "eof"
            elif isinstance(result, int) and data is not None:
                nbytes = result
        took = self.clock() - self.started - t
        if entry is not None and outcome not in ("ok", "timeout"):
            entry.peer_closed = True
        self.events.append(
            Event(
                t=round(t, 6),
                dt=round(took, 6),
                host=self.hostname,
                sock=name,
                protocol=entry.protocol if entry else "",
                op=step["op"],
                local=_address(entry.sock.getsockname) if entry else "",
                remote=remote or (entry.remote if entry else ""),
                outcome=outcome,
                nbytes=nbytes,
                data=None if data is None else text(data),
                note=note,
            )
        )
        return result if outcome in ("ok", "eof") else None

    def _sock(self, step: Step) -> _Sock:
        name = step.get("sock")
        if name not in self.socks:
            raise ScriptError(f"no socket named {name!r}; create it with a socket step first")
        return self.socks[name]

    # --- operations ---

    def _op_socket(self, step: Step) -> None:
        kind = socket.SOCK_DGRAM if step["type"] == "udp" else socket.SOCK_STREAM
        s = socket.socket(socket.AF_INET, kind)
        s.settimeout(float(step.get("timeout", DEFAULT_TIMEOUT)))
        if "rcvbuf" in step:  # a small receive buffer makes a stream arrive in small pieces
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, int(step["rcvbuf"]))
        if "ttl" in step:  # how many routers the packets may cross (IP time to live)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, int(step["ttl"]))
        if step.get("reuseaddr"):  # bind a port that a TIME_WAIT still holds (a restart)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socks[step["sock"]] = _Sock(s, step["type"])
        self._record(step, lambda: None)

    def _op_timeout(self, step: Step) -> None:
        s = self._sock(step)
        self._record(step, lambda: s.sock.settimeout(float(step["seconds"])))

    def _op_resolve(self, step: Step) -> None:
        host = step["host"]
        address = self._record(step, lambda: socket.gethostbyname(host), remote=host)
        if address:
            self.events[-1].data = address

    def _op_bind(self, step: Step) -> None:
        s = self._sock(step)
        address = (step.get("host", "0.0.0.0"), int(step["port"]))
        self._record(step, lambda: s.sock.bind(address))
        self.events[-1].local = f"{address[0]}:{address[1]}"  # what was asked, bound or not

    def _op_listen(self, step: Step) -> None:
        s = self._sock(step)
        self._record(step, lambda: s.sock.listen(int(step.get("backlog", 16))))

    def _op_accept(self, step: Step) -> None:
        s = self._sock(step)
        accepted = self._record(step, s.sock.accept)
        if accepted:
            conn, peer = accepted
            conn.settimeout(s.sock.gettimeout())
            self.socks[step["as"]] = _Sock(conn, s.protocol, f"{peer[0]}:{peer[1]}")
            self.events[-1].remote = f"{peer[0]}:{peer[1]}"

    def _target(self, step: Step) -> tuple[str, int]:
        if "to" in step:
            host, port = self.socks[step["to"]].sock.getsockname()[:2]
            return ("127.0.0.1" if host == "0.0.0.0" else host), port
        return socket.gethostbyname(step["host"]), int(step["port"])

    def _op_connect(self, step: Step) -> None:
        s = self._sock(step)

        def connect() -> None:
            address = self._target(step)  # a failed name lookup is recorded like any error
            s.remote = f"{address[0]}:{address[1]}"
            s.sock.connect(address)

        self._record(step, connect)

    def _op_send(self, step: Step) -> None:
        s, data = self._sock(step), payload(step)
        self._record(step, lambda: s.sock.send(data), data=data)

    def _op_sendall(self, step: Step) -> None:
        s, data = self._sock(step), payload(step)
        self._record(step, lambda: _sendall(s.sock, data), data=data)

    def _op_sendto(self, step: Step) -> None:
        s, data = self._sock(step), payload(step)

        def sendto() -> int:
            address = self._target(step)
            s.remote = f"{address[0]}:{address[1]}"
            return s.sock.sendto(data, address)

        self._record(step, sendto, data=data)

    def _op_recv(self, step: Step) -> None:
        s = self._sock(step)
        if "wait_for" in step:
            # Block until this many bytes are queued, so one recv can see what several sends made.
            s.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, int(step["wait_for"]))
        self._record(step, lambda: s.sock.recv(int(step.get("size", RECV_SIZE))))
        if "wait_for" in step:
            s.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 1)

    def _op_recv_all(self, step: Step) -> None:
        s = self._sock(step)
        size = int(step.get("size", RECV_SIZE))
        while True:
            data = self._record(step, lambda: s.sock.recv(size))
            if not data:  # EOF, or an error (recorded)
                return

    def _op_recv_until(self, step: Step) -> None:
        s = self._sock(step)
        size, wanted, got = int(step.get("size", RECV_SIZE)), int(step["count"]), 0
        while got < wanted:
            ask = min(size, wanted - got)
            data = self._record(step, lambda: s.sock.recv(ask))  # noqa: B023 (called at once)
            if not data:  # EOF, or an error (recorded)
                return
            got += len(data)

    def _op_converse(self, step: Step) -> None:
        s, data = self._sock(step), payload(step)
        size, wanted, pause = int(step.get("size", 4096)), int(step["count"]), step.get("pause")
        stall = float(step.get("stall", 0))
        sent: list[BaseException | None] = []

        def send() -> None:
            try:
                s.sock.sendall(data)
                sent.append(None)
            except OSError as exc:
                sent.append(exc)

        # One deadline for the whole exchange, not the socket's per-call one: Python bounds
        # a whole sendall by the socket's timeout, and a traced server is slow.
        s.sock.settimeout(float(step.get("timeout", CONVERSE_TIMEOUT)))
        writer = threading.Thread(target=send, daemon=True)
        writer.start()

        def read() -> bytes:
            time.sleep(stall)  # a reader that stops reading: the peer's sends must wait
            got = bytearray()
            while len(got) < wanted:
                try:
                    chunk = s.sock.recv(min(size, wanted - len(got)))
                except OSError:
                    if not got:
                        raise
                    break  # what came before the error is what the reader saw
                if not chunk:
                    break
                got += chunk
                if pause:
                    time.sleep(float(pause))
            return bytes(got)

        received = self._record({**step, "op": "recv"}, read)
        writer.join(float(step.get("timeout", CONVERSE_TIMEOUT)))
        error = sent[0] if sent else TimeoutError()
        self._record({**step, "op": "sendall"}, lambda: _raise_or(error, len(data)), data=b"")
        recv_event = self.events[-2]
        got = b"" if received is None else received
        recv_event.data = text(got) if len(got) <= 4096 else None
        recv_event.note = f"sha256 {hashlib.sha256(got).hexdigest()}"

    def _op_pause(self, step: Step) -> None:
        self._record(step, lambda: time.sleep(float(step.get("seconds", 0.2))))

    def _op_recvfrom(self, step: Step) -> None:
        s = self._sock(step)
        size = int(step.get("size", RECV_SIZE))

        def receive() -> tuple[bytes, bool, Any]:
            data, _, flags, peer = s.sock.recvmsg(size)
            return data, bool(flags & socket.MSG_TRUNC), peer

        self._record(step, receive)

    def _op_shutdown(self, step: Step) -> None:
        s = self._sock(step)
        how = {"rd": socket.SHUT_RD, "wr": socket.SHUT_WR, "rdwr": socket.SHUT_RDWR}[step["how"]]
        self._record(step, lambda: s.sock.shutdown(how))

    def _op_close(self, step: Step) -> None:
        s = self._sock(step)

        reset = step.get("reset")
        if reset == "if-peer-closed":
            # The peer closed first, so its side would wait in FIN_WAIT2/TIME_WAIT: a RST
            # ends it there at once.
            reset = s.peer_closed

        def close() -> None:
            if reset:  # a zero linger: the kernel drops the connection with RST
                s.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.sock.close()

        self._record(step, close)


def _raise_or(error: BaseException | None, value: int) -> int:
    if error is not None:
        raise error
    return value


def _sendall(sock: socket.socket, data: bytes) -> int:
    sock.sendall(data)
    return len(data)


def _address(getsockname: Callable[[], Any]) -> str:
    try:
        host, port = getsockname()[:2]
    except OSError:
        return ""
    return f"{host}:{port}"


def serve(t0: float) -> int:
    """Session mode: one JSON step per input line, one JSON list of events per output line.

    Sockets live across steps, so a driver can act (inject a fault) between two
    steps and see what the very same socket does next. ``t0`` is a reading of
    CLOCK_MONOTONIC taken by the driver: containers share the host's kernel and
    so its monotonic clock, which puts every event on the driver's time line.
    """
    runner = Runner()
    runner.started = t0
    try:
        for line in sys.stdin:
            if not line.strip():
                continue
            done = len(runner.events)
            try:
                runner.step(json.loads(line))
                reply: object = [asdict(e) for e in runner.events[done:]]
            except (ScriptError, json.JSONDecodeError, KeyError) as exc:
                reply = {"error": f"bad step: {exc!r}"}
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()
    finally:
        for s in runner.socks.values():
            s.sock.close()
    return 0


def main() -> int:
    args = sys.argv[1:]
    if len(args) == 2 and args[0] == "--serve":
        return serve(float(args[1]))
    runner = Runner()
    if len(args) == 3 and args[0] == "--t0":
        # Event times count from the driver's reading, as in session mode.
        runner.started = float(args[1])
        args = args[2:]
    if len(args) != 1:
        print(
            "usage: python3 -m services.probes.sockscript [--t0 T0] '<json list of steps>'\n"
            "       python3 -m services.probes.sockscript --serve T0   (steps on stdin)",
            file=sys.stderr,
        )
        return 2
    try:
        events = runner.run(json.loads(args[0]))
    except (ScriptError, json.JSONDecodeError, KeyError) as exc:
        print(f"bad script: {exc!r}", file=sys.stderr)
        return 2
    json.dump([asdict(e) for e in events], sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
