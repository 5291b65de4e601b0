"""lab sockets, lab trace: sockets as file descriptors, TCP states, and system calls."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any

from lab.cli.context import Invocation
from lab.errors import UsageError

DEFAULT_SECONDS = 10.0


def register(commands: Any) -> None:
    sockets = commands.add_parser(
        "sockets",
        help="every TCP and UDP socket of a host: state, queues, owner and fd (ss -tanup)",
        description="Every TCP and UDP socket in a host's kernel, in any state, read from /proc "
        "inside the host the way `ss -tanup` reads it: local and remote address, TCP state "
        "(LISTEN, ESTABLISHED, TIME_WAIT, CLOSE_WAIT, FIN_WAIT...), the receive and send "
        "queues, the process that holds it and its file descriptor number. A socket no "
        "process holds (TIME_WAIT) is the kernel's; a socket a process holds that no table "
        "lists is one not yet bound, or closed. HOST may be a process: its host is shown.",
    )
    sockets.add_argument("host", metavar="HOST")
    sockets.add_argument(
        "--all", action="store_true", help="list every TIME_WAIT (they are folded by default)"
    )
    sockets.add_argument("--json", action="store_true", help="print JSON instead of a table")
    sockets.set_defaults(handler=cmd_sockets)

    trace = commands.add_parser(
        "trace",
        help="a process's socket system calls, live (strace), beside what the lab sends",
        description="Attach strace to a lab process from a helper container that holds only "
        "CAP_SYS_PTRACE, for SECONDS, and show its socket system calls (socket, bind, listen, "
        "accept, connect, send/recv, shutdown, close...) with their file descriptors, return "
        "values and errno names, on the lab's clock, between the socket events of every lab "
        "command that ran meanwhile (`lab send` in another terminal; with --syscalls its "
        "system calls too). The helper is removed when the trace ends, also on Ctrl-C.",
    )
    trace.add_argument("process", metavar="PROCESS")
    trace.add_argument(
        "--for",
        dest="seconds",
        type=float,
        default=DEFAULT_SECONDS,
        metavar="SECONDS",
        help=f"how long to trace (default {DEFAULT_SECONDS:g}); it ends sooner if the process does",
    )
    trace.add_argument("--json", action="store_true", help="print JSON instead of a table")
    trace.set_defaults(handler=cmd_trace)


def cmd_sockets(s: Invocation, args: argparse.Namespace) -> int:
    host = s.lab.topology.host_of(args.host).name
    rows = s.lab.host(host).sockets()
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=2))
        return 0
    from rich.text import Text

    from lab.views import sockets as view

    title = Text.assemble((host, "bold"), f"  {s.lab.host(host).ip}  every TCP and UDP socket")
    s.print(view.socket_table(title, rows, folded=not args.all))
    return 0


def process_named(s: Invocation, name: str) -> str:
    """A process by name, or by a shortcut the topology declares (tcp: tcp-shout)."""
    topology = s.lab.topology
    if name in topology.processes:
        return name
    if name in topology.hosts:
        raise UsageError(
            f"{name} is a host; trace one of its processes",
            f"one of: {', '.join(topology.hosts[name].processes) or '(it runs none)'}",
        )
    endpoint = topology.endpoint(name)
    if not endpoint.process:
        raise UsageError(f"{name} names no process", f"one of: {', '.join(topology.processes)}")
    return endpoint.process


def cmd_trace(s: Invocation, args: argparse.Namespace) -> int:
    if args.seconds <= 0:
        raise UsageError("--for takes a number of seconds above 0")
    process = process_named(s, args.process)
    with s.lab.tracing(process) as trace:
        ready = (
            f"tracing {process} (pid {trace.pid} on {trace.host}) for {args.seconds:g} s: "
            "send it something from another terminal (`lab send ...`)"
        )
        if args.json:
            print(ready, file=sys.stderr, flush=True)  # stdout is for the JSON
        else:
            s.print(ready)
            sys.stdout.flush()  # a reader of a pipe waits for this line before sending
        trace.wait(args.seconds)
    if args.json:
        print(json.dumps(trace.to_json(), indent=2))
        return 0
    from lab.views import sockets as view

    title = f"{process} (pid {trace.pid} on {trace.host}): system calls, and the lab's sends"
    s.print(view.calls_table([*trace.calls, *trace.others], trace.events, title))
    if trace.ended:
        s.print(f"[red]{process} ended during the trace:[/] {trace.ended}")
    if not trace.calls:
        s.print(f"{process} made no socket system call in {args.seconds:g} s")
    return 0
