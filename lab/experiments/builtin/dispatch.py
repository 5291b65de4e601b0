"""dispatch: one IP address, several processes; the kernel picks the process by port."""

from __future__ import annotations

import json
import re
from dataclasses import asdict

from lab.experiments.model import Claim, Context, Experiment, every, first, ip_of, rename
from lab.httpwire import WireError, split_responses
from lab.traffic import clients as send
from lab.traffic.clients import received
from services.probes.sockscript import Step

NO_LISTENER = 9  # the discard port: nothing in the lab listens on it


class Dispatch(Experiment):
    name = "dispatch"
    question = "One IP address, several processes: how does a message find its process?"
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

    def run(self, ctx: Context) -> dict[str, tuple[bool, str]]:
        apphost, shouthost = ctx.ip("apphost"), ctx.ip("shouthost")
        client_steps: list[Step] = [
            *rename(send.http_script("http", 80, "GET", "/"), "http"),
            *rename(send.db_script("db", 6379, ["INFO", "server"]), "db"),
            *rename(send.tcp_script("tcp-shout", 8080, "tcp?"), "tcp8080"),
            *rename(send.udp_script("udp-shout", 8080, "udp?"), "udp8080"),
            {"op": "socket", "sock": "refused", "type": "tcp"},
            {"op": "connect", "sock": "refused", "host": "apphost", "port": NO_LISTENER},
            {"op": "close", "sock": "refused"},
            *rename(send.udp_script("apphost", NO_LISTENER, "anyone?", timeout=1.0), "udp-conn"),
            *rename(
                send.udp_script("apphost", NO_LISTENER, "anyone?", connected=False, timeout=1.0),
                "udp-unconn",
            ),
        ]
        events = ctx.on("client", client_steps)
        # Binding is asked of apphost's own kernel: the host container shares its network.
        binds = ctx.on(
            "apphost",
            [
                {"op": "socket", "sock": "tcp80", "type": "tcp"},
                {"op": "bind", "sock": "tcp80", "host": "0.0.0.0", "port": 80},
                {"op": "close", "sock": "tcp80"},
                {"op": "socket", "sock": "udp80", "type": "udp"},
                {"op": "bind", "sock": "udp80", "host": "0.0.0.0", "port": 80},
                {"op": "close", "sock": "udp80"},
            ],
        )
        tables = {h: ctx.lab.port_table(h) for h in ("apphost", "shouthost")}
        ctx.facts["port_tables"] = {h: [asdict(r) for r in rows] for h, rows in tables.items()}

        def owner(host: str, protocol: str, port: int) -> int | None:
            return next(
                (
                    r.pid
                    for r in tables[host]
                    if (r.protocol, r.port) == (protocol, port) and r.pid is not None
                ),
                None,
            )

        findings: dict[str, tuple[bool, str]] = {}

        http_ip = ip_of(first(events, "http", "connect").remote)
        db_ip = ip_of(first(events, "db", "connect").remote)
        findings["same-ip"] = (
            http_ip == db_ip == apphost,
            f"http answered at {http_ip}, db at {db_ip}; apphost is {apphost}",
        )

        http_pid = _http_pid(received(every(events, "http", "recv_all")))
        db_pid = _db_pid(received(every(events, "db", "recv_all")))
        table_http, table_db = owner("apphost", "tcp", 80), owner("apphost", "tcp", 6379)
        findings["different-processes"] = (
            http_pid is not None
            and db_pid is not None
            and http_pid != db_pid
            and (http_pid, db_pid) == (table_http, table_db),
            f"http said pid {http_pid}, db said pid {db_pid}; the port table owns "
            f"tcp/80 by pid {table_http} and tcp/6379 by pid {table_db}",
        )

        tcp_reply = received(every(events, "tcp8080", "recv_all"))
        udp_reply = received(every(events, "udp8080", "recv"))
        tcp_pid, udp_pid = owner("shouthost", "tcp", 8080), owner("shouthost", "udp", 8080)
        tcp_ip = ip_of(first(events, "tcp8080", "connect").remote)
        udp_ip = ip_of(first(events, "udp8080", "connect").remote)
        findings["tcp-udp-8080"] = (
            tcp_pid is not None
            and udp_pid is not None
            and tcp_pid != udp_pid
            and tcp_reply == b"TCP?"
            and udp_reply == b"UDP?"
            and tcp_ip == udp_ip == shouthost,
            f"at {tcp_ip}: tcp/8080 owned by pid {tcp_pid} answered {tcp_reply!r}; "
            f"udp/8080 owned by pid {udp_pid} answered {udp_reply!r}",
        )

        refused = first(events, "refused", "connect")
        findings["tcp-refused"] = (
            refused.outcome == "ECONNREFUSED",
            f"connect to {refused.remote}: {refused.outcome}",
        )
        conn_send = first(events, "udp-conn", "send")
        conn_recv = first(events, "udp-conn", "recv")
        findings["udp-connected-refused"] = (
            conn_send.outcome == "ok" and conn_recv.outcome == "ECONNREFUSED",
            f"send: {conn_send.outcome}, then recv: {conn_recv.outcome}",
        )
        unconn_send = first(events, "udp-unconn", "sendto")
        unconn_recv = first(events, "udp-unconn", "recvfrom")
        findings["udp-unconnected-silent"] = (
            unconn_send.outcome == "ok" and unconn_recv.outcome == "timeout",
            f"sendto: {unconn_send.outcome}, then recvfrom: {unconn_recv.outcome}",
        )
        tcp_bind, udp_bind = first(binds, "tcp80", "bind"), first(binds, "udp80", "bind")
        findings["eaddrinuse"] = (
            tcp_bind.outcome == "EADDRINUSE",
            f"bind 0.0.0.0:80/tcp on apphost: {tcp_bind.outcome}",
        )
        findings["separate-port-spaces"] = (
            tcp_bind.outcome == "EADDRINUSE" and udp_bind.outcome == "ok",
            f"bind 0.0.0.0:80/tcp: {tcp_bind.outcome}; bind 0.0.0.0:80/udp: {udp_bind.outcome}",
        )
        return findings


def _http_pid(raw: bytes) -> int | None:
    try:
        (response,) = split_responses(raw)
        return int(json.loads(response.body)["pid"])
    except (WireError, ValueError, KeyError):
        return None


def _db_pid(raw: bytes) -> int | None:
    match = re.search(rb"process_id:(\d+)", raw)
    return int(match.group(1)) if match else None
