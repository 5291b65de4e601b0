"""dispatch: one IP address, several processes; the kernel picks the process by port."""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from typing import TYPE_CHECKING

from lab.experiments.model import (
    Claim,
    Context,
    Experiment,
    Needs,
    Observations,
    Result,
    Verdicts,
    ip_of,
)
from lab.services.protocols.http11 import WireError, split_responses
from lab.traffic import clients
from lab.traffic.script import Script

if TYPE_CHECKING:
    from rich.console import RenderableType

NO_LISTENER = 9  # the discard port: nothing in the lab listens on it


class Dispatch(Experiment):
    name = "dispatch"
    question = "One IP address, several processes: how does a message find its process?"
    needs = Needs(
        processes={
            "http": ("80/tcp",),
            "db": ("6379/tcp",),
            "tcp-shout": ("8080/tcp",),
            "udp-shout": ("8080/udp",),
        },
        hosts=("apphost", "shouthost"),
    )
    claims = (
        Claim("same-ip", "http (TCP 80) and db (TCP 6379) are reached at one and the same IP"),
        Claim(
            "different-processes",
            "...yet answered by two different processes, each the owner of its port "
            "in the host's port table",
        ),
        Claim(
            "tcp-udp-8080",
            "TCP 8080 and UDP 8080 on shouthost are two sockets owned by two processes, "
            "and both answer",
        ),
        Claim("tcp-refused", "A TCP connect to a port nobody listens on is refused: ECONNREFUSED"),
        Claim(
            "udp-connected-refused",
            "A datagram to a port nobody listens on draws ICMP port unreachable, which a "
            "connected UDP socket reports as ECONNREFUSED",
        ),
        Claim(
            "udp-unconnected-silent",
            "An unconnected UDP socket hears nothing of it: its recvfrom times out",
        ),
        Claim("eaddrinuse", "A second bind to TCP port 80 on apphost fails with EADDRINUSE"),
        Claim(
            "separate-port-spaces",
            "TCP and UDP ports are separate tables: UDP port 80 on apphost can still be bound",
        ),
    )

    def run(self, ctx: Context) -> None:
        client = Script()
        client.extend(clients.http_script("http", 80, "GET", "/"), rename="http")
        client.extend(clients.db_script("db", 6379, ["INFO", "server"]), rename="db")
        client.extend(clients.tcp_script("tcp-shout", 8080, "tcp?"), rename="tcp8080")
        client.extend(clients.udp_script("udp-shout", 8080, "udp?"), rename="udp8080")
        client.tcp("refused").connect("apphost", NO_LISTENER).close()
        client.extend(
            clients.udp_script("apphost", NO_LISTENER, "anyone?", timeout=1.0), rename="udp-conn"
        )
        client.extend(
            clients.udp_script("apphost", NO_LISTENER, "anyone?", connected=False, timeout=1.0),
            rename="udp-unconn",
        )
        ctx.on(ctx.lab.topology.client.name, client)
        # Binding is asked of apphost's own kernel: the host container shares its network.
        binds = Script()
        binds.tcp("tcp80").bind("0.0.0.0", 80).close()
        binds.udp("udp80").bind("0.0.0.0", 80).close()
        ctx.on("apphost", binds)
        ctx.facts["port_tables"] = {
            h: [asdict(r) for r in ctx.lab.host(h).port_table()] for h in ("apphost", "shouthost")
        }

    def judge(self, seen: Observations) -> Verdicts:
        events, tables = seen.events, seen.facts["port_tables"]
        apphost, shouthost = seen.ip("apphost"), seen.ip("shouthost")

        def owner(host: str, protocol: str, port: int) -> int | None:
            return next(
                (
                    int(r["pid"])
                    for r in tables[host]
                    if (r["protocol"], r["port"]) == (protocol, port) and r["pid"] is not None
                ),
                None,
            )

        v = Verdicts()

        @v.claim("same-ip")
        def _() -> tuple[bool, str]:
            http_ip = ip_of(events.first("http", "connect").remote)
            db_ip = ip_of(events.first("db", "connect").remote)
            return (
                http_ip == db_ip == apphost,
                f"http answered at {http_ip}, db at {db_ip}; apphost is {apphost}",
            )

        @v.claim("different-processes")
        def _() -> tuple[bool, str]:
            http_pid = _http_pid(events.received("http"))
            db_pid = _db_pid(events.received("db"))
            table_http, table_db = owner("apphost", "tcp", 80), owner("apphost", "tcp", 6379)
            return (
                http_pid is not None
                and db_pid is not None
                and http_pid != db_pid
                and (http_pid, db_pid) == (table_http, table_db),
                f"http said pid {http_pid}, db said pid {db_pid}; the port table owns "
                f"tcp/80 by pid {table_http} and tcp/6379 by pid {table_db}",
            )

        @v.claim("tcp-udp-8080")
        def _() -> tuple[bool, str]:
            tcp_reply, udp_reply = events.received("tcp8080"), events.received("udp8080")
            tcp_pid, udp_pid = owner("shouthost", "tcp", 8080), owner("shouthost", "udp", 8080)
            tcp_ip = ip_of(events.first("tcp8080", "connect").remote)
            udp_ip = ip_of(events.first("udp8080", "connect").remote)
            return (
                tcp_pid is not None
                and udp_pid is not None
                and tcp_pid != udp_pid
                and tcp_reply == b"TCP?"
                and udp_reply == b"UDP?"
                and tcp_ip == udp_ip == shouthost,
                f"at {tcp_ip}: tcp/8080 owned by pid {tcp_pid} answered {tcp_reply!r}; "
                f"udp/8080 owned by pid {udp_pid} answered {udp_reply!r}",
            )

        @v.claim("tcp-refused")
        def _() -> tuple[bool, str]:
            refused = events.first("refused", "connect")
            return (
                refused.outcome == "ECONNREFUSED",
                f"connect to {refused.remote}: {refused.outcome}",
            )

        @v.claim("udp-connected-refused")
        def _() -> tuple[bool, str]:
            sent, got = events.first("udp-conn", "send"), events.first("udp-conn", "recv")
            return (
                sent.outcome == "ok" and got.outcome == "ECONNREFUSED",
                f"send: {sent.outcome}, then recv: {got.outcome}",
            )

        @v.claim("udp-unconnected-silent")
        def _() -> tuple[bool, str]:
            sent = events.first("udp-unconn", "sendto")
            got = events.first("udp-unconn", "recvfrom")
            return (
                sent.outcome == "ok" and got.outcome == "timeout",
                f"sendto: {sent.outcome}, then recvfrom: {got.outcome}",
            )

        @v.claim("eaddrinuse")
        def _() -> tuple[bool, str]:
            tcp_bind = events.first("tcp80", "bind")
            return (
                tcp_bind.outcome == "EADDRINUSE",
                f"bind 0.0.0.0:80/tcp on apphost: {tcp_bind.outcome}",
            )

        @v.claim("separate-port-spaces")
        def _() -> tuple[bool, str]:
            tcp_bind, udp_bind = events.first("tcp80", "bind"), events.first("udp80", "bind")
            return (
                tcp_bind.outcome == "EADDRINUSE" and udp_bind.outcome == "ok",
                f"bind 0.0.0.0:80/tcp: {tcp_bind.outcome}; bind 0.0.0.0:80/udp: {udp_bind.outcome}",
            )

        return v

    def tables(self, result: Result) -> list[RenderableType]:
        from lab.views import render

        return list(render.recorded_port_tables(result.facts["port_tables"]))


def _http_pid(raw: bytes) -> int | None:
    try:
        (response,) = split_responses(raw)
        return int(json.loads(response.body)["pid"])
    except (WireError, ValueError, KeyError):
        return None


def _db_pid(raw: bytes) -> int | None:
    match = re.search(rb"process_id:(\d+)", raw)
    return int(match.group(1)) if match else None
