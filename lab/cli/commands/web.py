"""lab web: the lab in a browser, live, with recorded runs to replay."""

from __future__ import annotations

import argparse
import errno
import socket
import sys
from pathlib import Path
from typing import Any

from lab.cli.context import Invocation
from lab.errors import LabError, PortTaken, UsageError

DEFAULT_PORT = 8765
RESULTS_SHOWN = 50


def register(commands: Any) -> None:
    web = commands.add_parser(
        "web",
        help="the lab in a browser: topology, traffic and frames live; runs replayed",
        description="Start a local web server and print the address to open. The page draws "
        "the topology (networks, hosts, processes, their ports and owners, published ports, "
        "impaired links) with each one's state as Docker reports it; every socket call any "
        "`lab` command, lab script or the page itself makes travels across it as it happens "
        "(and, with the capture on, every frame); faults, links, experiments and restore are "
        "one click away. Results of earlier runs (RESULT.json, and ./results) replay without "
        "Docker. Ctrl-C stops it and undoes what the page set.",
    )
    web.add_argument("results", nargs="*", type=Path, metavar="RESULT.json", help="runs to replay")
    web.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    web.add_argument(
        "--bind",
        default="127.0.0.1",
        metavar="ADDRESS",
        help="where to listen (default 127.0.0.1: this machine only). Anything else lets "
        "other machines reach the page, token in hand; 0.0.0.0 (or ::) listens on every "
        "interface and prints an address to open for each",
    )
    web.add_argument("--replay-only", action="store_true", help="do not look for a running lab")
    web.set_defaults(handler=cmd_web)


def chosen_results(given: list[Path]) -> list[Path]:
    for path in given:
        if not path.is_file():
            raise UsageError(f"{path}: no such result file")
    found = sorted(Path("results").glob("*.json"), key=lambda p: p.stat().st_mtime)
    recent = [p for p in reversed(found[-RESULTS_SHOWN:]) if "-predictions-" not in p.name]
    return [*given, *(p for p in recent if p not in given)]


def free_port(bind: str, port: int) -> int:
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((bind, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortTaken(port, "tcp") from None
            raise UsageError(f"cannot listen on {bind}:{port}: {exc.strerror}") from None
        return int(s.getsockname()[1])


def cmd_web(s: Invocation, args: argparse.Namespace) -> int:
    from aiohttp import web  # loads slowly: only this command needs it
    from rich.markup import escape

    from lab.web.guard import Guard
    from lab.web.live import Live
    from lab.web.server import Server, own_names

    results = chosen_results(args.results)
    port = free_port(args.bind, args.port)
    guard = Guard(port, args.bind, own=own_names(args.bind))
    server = Server(guard, None, results)
    live = None
    if not args.replay_only:
        try:
            if s.lab.is_running():
                live = Live(s.lab, server.broadcast)
        except LabError as exc:
            s.print(f"[yellow]no live lab[/] ({exc.line()}): replays only")
    server.live = live
    if not guard.loopback_only:
        print(
            f"{s.prog}: warning: listening on {args.bind}: other machines can reach this page; "
            "the token is all that stands between them and your lab",
            file=sys.stderr,
        )
    what = f"project {s.lab.project}, live" if live else "replays only"

    def listening(_: str) -> None:  # printed once the server accepts connections
        first, *others = (escape(a) for a in guard.addresses())  # "[fd00::2]" is no markup
        s.print(f"lab web ({what}; {len(results)} results to replay): open [bold]{first}[/]")
        for other in others:  # a wildcard bind: every address of this machine's
            s.print(f"  or {other}")
        s.print("Ctrl-C stops it, and undoes every fault and impairment set from the page.")
        sys.stdout.flush()

    web.run_app(server.app(), host=args.bind, port=port, print=listening, handle_signals=True)
    s.print("lab web stopped")
    return 0
