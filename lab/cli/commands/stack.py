"""lab up, lab down, lab status, lab ls: the labs' life and what they look like."""

from __future__ import annotations

import argparse
import datetime
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lab import bundle
from lab.cli.context import Invocation
from lab.errors import UsageError


def register(commands: Any) -> None:
    up = commands.add_parser("up", help="build, start and wait until healthy")
    up.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="seconds to wait for every service to be healthy (default 120)",
    )
    up.set_defaults(handler=cmd_up)

    init = commands.add_parser(
        "init",
        help="write an editable copy of the default lab (compose.yaml, services/, examples/)",
    )
    init.add_argument(
        "folder", nargs="?", type=Path, default=Path("."), help="where (default: this folder)"
    )
    init.set_defaults(handler=cmd_init)

    down = commands.add_parser("down", help="remove every container, network and volume of the lab")
    down.add_argument(
        "--all",
        action="store_true",
        help="remove every named lab on this machine (labs started with --name, and only those)",
    )
    down.set_defaults(handler=cmd_down)

    status = commands.add_parser(
        "status", help="hosts, IPs, processes, port tables, links and routes"
    )
    status.add_argument("--json", action="store_true", help="print JSON instead of tables")
    status.set_defaults(handler=cmd_status)

    ls = commands.add_parser(
        "ls",
        help="the named labs on this machine: owner, subnet, ports, state, age",
        description="Every lab started with `lab up --name` on this Docker Engine, whoever "
        "started it, read from the labels on its network and containers.",
    )
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ls.set_defaults(handler=cmd_ls)


def cmd_up(s: Invocation, args: argparse.Namespace) -> int:
    from lab.views import render

    names = s.names
    if len(names) > 1:
        return up_several(s, names, args.timeout)
    reporter = s.reporter()
    with reporter.running("starting the lab"):
        chosen = s.lab.up(timeout=args.timeout, progress=reporter)
    s.print(
        f"[green]lab is up[/] (project {s.lab.project}; "
        f"base image {chosen.image}, {chosen.path} path)"
    )
    if s.lab.name:
        s.print(named_line(s, s.lab.name))
    if s.lab.builtin:
        s.print(f"(the default lab, carried in the package: `{s.prog} init` makes a copy to edit)")
    s.print(*render.status_tables(s.lab.status()))
    return 0


def cmd_init(s: Invocation, args: argparse.Namespace) -> int:
    written = bundle.init(args.folder)
    for path in written:
        s.print(f"wrote {path}{'/' if path.is_dir() else ''}", plain=True)
    where = "" if args.folder == Path(".") else f"cd {args.folder} && "
    s.print(f"next: {where}{s.prog} up   (this folder's compose.yaml is the lab from now on)")
    return 0


def up_several(s: Invocation, names: list[str], timeout: float) -> int:
    """One after another (the image built once); each its own subnet and ports."""
    from lab.engine import named

    for name in names:
        named.check_name(name)
    if len(set(names)) < len(names):
        raise UsageError("a name is given twice")
    reporter = s.reporter()
    for i, name in enumerate(names):
        net = s.open(name)
        with reporter.running(f"starting lab {name} ({i + 1} of {len(names)})"):
            net.up(timeout=timeout, progress=reporter, build=i == 0)
        s.print(f"[green]lab {name} is up[/]: " + named_line(s, name).split(": ", 1)[1])
    return cmd_ls(s, argparse.Namespace(json=False))


def named_line(s: Invocation, name: str) -> str:
    from lab.engine import named

    record = named.find(s.lab.backend.client if s.opened is None else s.opened.backend.client, name)
    if record is None:
        return f"lab {name}: no record"
    ports = ", ".join(f"{label} {port}" for label, port in record.ports.items())
    return (
        f"lab {name}: project {record.project}, subnet {record.subnet}, "
        f"ports on 127.0.0.1: {ports or 'none'}"
    )


def cmd_down(s: Invocation, args: argparse.Namespace) -> int:
    from lab.views import render

    if args.all:
        if s.names:
            raise UsageError("--all removes every named lab: give it without --name")
        return down_all(s)
    if len(s.names) > 1:
        for name in s.names:
            s.print(f"lab {name}: " + render.removed_text(s.open(name).down()))
        return 0
    s.print(render.removed_text(s.lab.down()))
    return 0


def down_all(s: Invocation) -> int:
    from lab.chaos import powerloss
    from lab.engine import named
    from lab.engine.docker_client import connect
    from lab.views import render

    client = connect()
    projects = named.projects(client)
    if not projects:
        s.print("no named labs on this machine")
        return 0
    for project in projects:
        removed = named.sweep(client, project)
        powerloss.sweep(project)
        named.forget(project.removeprefix(named.PROJECT_PREFIX))
        s.print(f"lab {project.removeprefix(named.PROJECT_PREFIX)}: {render.removed_text(removed)}")
    return 0


def cmd_status(s: Invocation, args: argparse.Namespace) -> int:
    from lab.views import render

    report = s.lab.status()
    if args.json:
        print(json.dumps(render.status_json(report), indent=2))
    else:
        if s.lab.name:
            s.print(named_line(s, s.lab.name))
        s.print(*render.status_tables(report))
    return 0


def cmd_ls(s: Invocation, args: argparse.Namespace) -> int:
    from rich.table import Table

    from lab.engine import named
    from lab.engine.docker_client import connect

    rows = named.listing(connect(), datetime.datetime.now(datetime.UTC))
    if args.json:
        data = [{**asdict(row), "project": row.project} for row in rows]
        print(json.dumps(data, indent=2))
        return 0
    if not rows:
        s.print("no named labs on this machine (start one with `lab up --name NAME`)")
        return 0
    table = Table(title=f"{len(rows)} named labs", title_justify="left")
    for column in ("name", "owner", "state", "subnet", "ports on 127.0.0.1", "age"):
        table.add_column(column)
    for row in rows:
        ports = ", ".join(f"{label} {port}" for label, port in row.ports.items())
        age = named.age_text(row.age_s) if row.age_s is not None else "?"
        table.add_row(row.name, row.owner, row.state, row.subnet, ports, age)
    s.print(table)
    return 0
