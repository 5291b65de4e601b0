"""lab send: one conversation with any process, in the protocol it declares."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

from lab.cli.context import Invocation
from lab.errors import NotRunning


def register(commands: Any) -> None:
    send = commands.add_parser(
        "send",
        help="one conversation with a process: TARGET [ARG...]",
        description="Send one message to a process and show every socket operation and its "
        "outcome. TARGET is a process (http, db, tcp-shout...), PROCESS:PORT when it declares "
        "several, HOST:PORT[/udp] or IP:PORT[/udp] for any port at all, or a shortcut from "
        "the topology (tcp, udp). What is sent follows the protocol the port declares: "
        "shout/echo/raw: MESSAGE; http: [METHOD] PATH; resp: COMMAND [ARG...].",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  lab send tcp hello\n  lab send udp 'udp works tho' --from client\n"
        "  lab send http PUT /kv/a --data 1\n  lab send db GET a\n"
        "  lab send shouthost:8080/udp hi --from apphost",
    )
    send.add_argument("target", metavar="TARGET")
    send.add_argument("words", nargs="+", metavar="ARG", help="what to say (see above)")
    send.add_argument(
        "--from",
        dest="origin",
        default="",
        metavar="WHERE",
        help="docker-host (or host): this machine, through the published port; or any lab "
        "host by name (client: the workbench). Default: docker-host when the port is "
        "published, else the client host",
    )
    send.add_argument("--data", default="", help="http: request body")
    send.add_argument(
        "--unconnected",
        action="store_true",
        help="udp: use sendto/recvfrom on an unconnected socket",
    )
    send.add_argument(
        "--syscalls",
        action="store_true",
        help="run the client under strace in its host and show its system calls (with fds) "
        "between its socket events; from a lab host only (default: the client host)",
    )
    send.add_argument("--json", action="store_true", help="print the transcript as JSON")
    send.set_defaults(handler=cmd_send)


def origin_of(s: Invocation, target: str, asked: str, traced: bool = False) -> str:
    from lab.api import DOCKER_HOST

    if asked in ("host", DOCKER_HOST):
        return DOCKER_HOST
    if asked:
        return asked
    if traced:  # system calls are traced inside the lab's hosts
        return s.lab.topology.client.name
    endpoint = s.lab.topology.endpoint(target)
    try:
        s.lab.published_port(endpoint.host, endpoint.port.number, endpoint.port.transport)
        return DOCKER_HOST
    except NotRunning:
        return s.lab.topology.client.name


def cmd_send(s: Invocation, args: argparse.Namespace) -> int:
    origin = origin_of(s, args.target, args.origin, args.syscalls)
    sent = s.lab.send(
        args.target,
        *args.words,
        origin=origin,
        data=args.data,
        unconnected=args.unconnected,
        traced=args.syscalls,
    )
    title = f"{sent.endpoint.label} → {sent.address}"
    if args.json:
        data: dict[str, Any] = {"events": [asdict(e) for e in sent.events], "error": sent.error}
        if args.syscalls:
            data["syscalls"] = [asdict(c) for c in sent.syscalls]
        print(json.dumps(data, indent=2))
        return 1 if sent.error else 0
    from lab.views import render
    from lab.views.sockets import calls_table

    if args.syscalls:
        s.print(calls_table(sent.syscalls, sent.events, f"{title}  (from {origin}, traced)"))
    else:
        s.print(render.events_table(sent.events, title))
    if sent.error:
        s.print(f"[red]failed:[/] {sent.error}")
    s.print(sent.reply, plain=True)
    return 1 if sent.error else 0
