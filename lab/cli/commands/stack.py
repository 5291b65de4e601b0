"""lab up, lab down, lab status: the lab's life and what it looks like."""

from __future__ import annotations

import argparse
import json
from typing import Any

from lab.cli.context import Session
from lab.views import render


def register(commands: Any) -> None:
    up = commands.add_parser("up", help="build, start and wait until healthy")
    up.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="seconds to wait for every service to be healthy (default 120)",
    )
    up.set_defaults(handler=cmd_up)

    down = commands.add_parser("down", help="remove every container, network and volume of the lab")
    down.set_defaults(handler=cmd_down)

    status = commands.add_parser(
        "status", help="hosts, IPs, processes, port tables, links and routes"
    )
    status.add_argument("--json", action="store_true", help="print JSON instead of tables")
    status.set_defaults(handler=cmd_status)


def cmd_up(s: Session, args: argparse.Namespace) -> int:
    reporter = s.reporter()
    with reporter.running("starting the lab"):
        chosen = s.lab.up(timeout=args.timeout, progress=reporter)
    s.print(
        f"[green]lab is up[/] (project {s.lab.project}; "
        f"base image {chosen.image}, {chosen.path} path)"
    )
    s.print(*render.status_tables(s.lab.status()))
    return 0


def cmd_down(s: Session, args: argparse.Namespace) -> int:
    s.print(render.removed_text(s.lab.down()))
    return 0


def cmd_status(s: Session, args: argparse.Namespace) -> int:
    report = s.lab.status()
    if args.json:
        print(json.dumps(render.status_json(report), indent=2))
    else:
        s.print(*render.status_tables(report))
    return 0
