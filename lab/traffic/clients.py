"""One-shot conversations, one per protocol a process can declare, as socket scripts.

``conversation`` picks the script for what the target speaks (``socklab.ports``):
shout, echo and raw get the message and read the answer, HTTP a request, RESP a
command. The same script runs on the Docker host (through a published port) or
inside any lab host; either way every operation is recorded.
"""

from __future__ import annotations

import json

from lab.errors import UsageError
from lab.services.probes.sockscript import Event, Step, raw
from lab.services.protocols.resp import Error, Reply, Simple, encode_command, parse_reply


def tcp_script(host: str, port: int, message: str) -> list[Step]:
    """The shout round trip: connect, send, half-close, read until the server closes."""
    return [
        {"op": "socket", "sock": "c", "type": "tcp"},
        {"op": "connect", "sock": "c", "host": host, "port": port},
        {"op": "sendall", "sock": "c", "data": message},
        {"op": "shutdown", "sock": "c", "how": "wr"},
        {"op": "recv_all", "sock": "c"},
        {"op": "close", "sock": "c"},
    ]


def udp_script(
    host: str, port: int, message: str, connected: bool = True, timeout: float = 2.0
) -> list[Step]:
    """One datagram and one reply. Only a connected socket hears ICMP errors (ECONNREFUSED)."""
    if connected:
        exchange: list[Step] = [
            {"op": "connect", "sock": "c", "host": host, "port": port},
            {"op": "send", "sock": "c", "data": message},
            {"op": "recv", "sock": "c"},
        ]
    else:
        exchange = [
            {"op": "sendto", "sock": "c", "host": host, "port": port, "data": message},
            {"op": "recvfrom", "sock": "c"},
        ]
    return [
        {"op": "socket", "sock": "c", "type": "udp", "timeout": timeout},
        *exchange,
        {"op": "close", "sock": "c"},
    ]


def http_request(method: str, path: str, host: str, body: str = "", close: bool = True) -> str:
    headers = f"Host: {host}\r\n"
    if body or method in ("PUT", "POST"):
        headers += f"Content-Length: {len(body.encode())}\r\n"
    if close:
        headers += "Connection: close\r\n"
    return f"{method} {path} HTTP/1.1\r\n{headers}\r\n{body}"


def http_script(host: str, port: int, method: str, path: str, body: str = "") -> list[Step]:
    request = http_request(method, path, host, body)
    return [
        {"op": "socket", "sock": "c", "type": "tcp"},
        {"op": "connect", "sock": "c", "host": host, "port": port},
        {"op": "sendall", "sock": "c", "data": request},
        {"op": "recv_all", "sock": "c"},
        {"op": "close", "sock": "c"},
    ]


def db_script(host: str, port: int, args: list[str]) -> list[Step]:
    """One command, then QUIT so the server closes and the reply can be read to EOF."""
    frames = encode_command(*args) + encode_command("QUIT")
    return [
        {"op": "socket", "sock": "c", "type": "tcp"},
        {"op": "connect", "sock": "c", "host": host, "port": port},
        {"op": "sendall", "sock": "c", "hex": frames.hex()},
        {"op": "recv_all", "sock": "c"},
        {"op": "close", "sock": "c"},
    ]


def conversation(
    protocol: str,
    transport: str,
    host: str,
    port: int,
    words: list[str],
    *,
    data: str = "",
    unconnected: bool = False,
) -> list[Step]:
    """The script that says ``words`` to a port speaking ``protocol`` over ``transport``."""
    if protocol == "http":
        if len(words) == 1:
            words = ["GET", words[0]]
        if len(words) != 2 or not words[1].startswith("/"):
            raise UsageError(
                "an HTTP target takes [METHOD] PATH, as in `lab send http PUT /kv/a --data 1`"
            )
        return http_script(host, port, words[0].upper(), words[1], data)
    if protocol == "resp":
        if not words:
            raise UsageError("a RESP target takes COMMAND [ARG...], as in `lab send db PING`")
        return db_script(host, port, words)
    if len(words) != 1:
        raise UsageError(f"a {protocol} target takes one MESSAGE (quote it)")
    if transport == "udp":
        return udp_script(host, port, words[0], connected=not unconnected)
    return tcp_script(host, port, words[0])


def received(events: list[Event]) -> bytes:
    """Everything the script received, in order, as bytes."""
    return b"".join(
        raw(e.data or "") for e in events if e.op.startswith("recv") and e.outcome == "ok"
    )


def failure(events: list[Event]) -> str:
    """The first operation that did not succeed, as 'op: OUTCOME', or ''."""
    for e in events:
        if e.outcome not in ("ok", "eof"):
            return f"{e.op}: {e.outcome}"
    return ""


def reply_text(protocol: str, events: list[Event]) -> str:
    """What came back, for people: a RESP reply as redis-cli shows it, the rest as text."""
    data = received(events)
    if protocol != "resp":
        return data.decode("utf-8", "backslashreplace")
    parsed = parse_reply(data)
    return show_reply(parsed[0]) if parsed else data.decode("utf-8", "backslashreplace")


def show_reply(reply: Reply) -> str:
    """Render a RESP reply as redis-cli does."""
    if isinstance(reply, Simple):
        return reply.text
    if isinstance(reply, Error):
        return f"(error) {reply.text}"
    if isinstance(reply, int):
        return f"(integer) {reply}"
    if isinstance(reply, bytes):
        return json.dumps(reply.decode("utf-8", "backslashreplace"))
    if reply is None:
        return "(nil)"
    if not reply:
        return "(empty array)"
    if isinstance(reply, dict):
        pairs = enumerate(reply.items(), 1)
        return "\n".join(f"{i}# {k} => {show_reply(v)}" for i, (k, v) in pairs)
    return "\n".join(f"{i}) {show_reply(item)}" for i, item in enumerate(reply, 1))
