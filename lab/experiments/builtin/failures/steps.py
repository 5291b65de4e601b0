"""One client's conversation as socket-script steps: its messages, tagged so that each
answer is recognised, and the fresh socket it opens after recovery.

A fresh socket's name is the held one's with FRESH appended: the runner opens it, the
judgement and the pictures tell the two apart by it (``is_fresh``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lab.experiments.builtin.failures.model import Column
from lab.services.protocols.resp import encode_command
from lab.traffic.clients import http_request

FRESH = "_new"  # appended to a held socket's name: the one opened after recovery


def is_fresh(sock: str) -> bool:
    """Whether a socket is the one opened after recovery, not the one held across."""
    return sock.endswith(FRESH)


@dataclass
class Client:
    column: Column
    sock: str
    sent: list[str] = field(default_factory=list)  # tags of messages sent, in order
    address: str = ""  # udp: the server's IP, looked up once (a dead host has no DNS name)

    @property
    def name(self) -> str:
        return self.column.name

    def message(self, tag: str) -> dict[str, Any]:
        """The payload of one message, tagged so its answer can be recognised."""
        self.sent.append(tag)
        if self.column.protocol == "http":
            return {"data": http_request("GET", f"/healthz?{tag}", "lab", close=False)}
        if self.column.protocol == "resp":
            return {"hex": encode_command("ECHO", tag).hex()}
        return {"data": tag}


def answered_tags(client: Client, received: bytes, waiting: list[str]) -> list[str]:
    """Which of the messages ``waiting`` for an answer the received bytes answer."""
    protocol = client.column.protocol
    if protocol == "http":
        # Answers come strictly in order, one status line each (whatever the status).
        return waiting[: received.count(b"HTTP/1.1 ") + received.count(b"HTTP/1.0 ")]
    if protocol == "resp":
        return [t for t in waiting if f"${len(t)}\r\n{t}\r\n".encode() in received]
    if protocol == "shout":
        return [t for t in waiting if t.upper().encode() in received]
    return [t for t in waiting if t.encode() in received]


def connect_steps(client: Client, timeout: float) -> list[dict[str, Any]]:
    c = client.column
    kind = "tcp" if c.kind == "stream" else "udp"
    steps: list[dict[str, Any]] = [
        {"op": "socket", "sock": client.sock, "type": kind, "timeout": timeout}
    ]
    if c.kind != "udp":
        steps.append({"op": "connect", "sock": client.sock, "host": client.address, "port": c.port})
    return steps


def send_step(client: Client, tag: str) -> dict[str, Any]:
    if client.column.kind == "udp":
        return {
            "op": "sendto",
            "sock": client.sock,
            "host": client.address,
            "port": client.column.port,
            **client.message(tag),
        }
    return {"op": "send", "sock": client.sock, **client.message(tag)}


def recv_step(client: Client) -> dict[str, Any]:
    return {"op": "recvfrom" if client.column.kind == "udp" else "recv", "sock": client.sock}
