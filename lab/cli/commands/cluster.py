"""lab cluster make N, lab cluster status, lab cluster remove: a test cluster on this
machine (containers each running Docker Engine, one swarm), for `--cluster test`."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

from lab.cli.context import Invocation


def register(commands: Any) -> None:
    cluster = commands.add_parser(
        "cluster",
        help="a test cluster on this machine: N Docker Engines in containers, one swarm",
        description="Machines for a lab across machines, made here: each a container "
        "running Debian's docker.io engine on an underlay bridge (10.231.0.0/24), joined "
        "in one Docker Swarm (m1 manages it). Use it with `lab --cluster test up` "
        "(docs/scale-out.md).",
    )
    actions = cluster.add_subparsers(dest="action", required=True, metavar="ACTION")
    make = actions.add_parser("make", help="make N machines and form one swarm of them")
    # The limit is not named: it lives beside the Docker SDK, which the parser must not load.
    make.add_argument(
        "count", type=int, help="how many machines (a count out of range says the range)"
    )
    make.set_defaults(handler=cmd_make)
    remove = actions.add_parser(
        "remove", help="remove every machine, its disk and the underlay (the image stays)"
    )
    remove.set_defaults(handler=cmd_remove)
    status = actions.add_parser("status", help="each machine: address, state, swarm role")
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    status.set_defaults(handler=cmd_status)


def _client() -> Any:
    from lab.engine.docker_client import connect

    return connect()


def cmd_make(s: Invocation, args: argparse.Namespace) -> int:
    from lab.backends.swarm import machines

    reporter = s.reporter()
    client = _client()
    with reporter.running(f"making a test cluster of {args.count} machines"):
        made = machines.make(client, args.count, reporter)
    s.print(
        f"[green]test cluster up[/]: {', '.join(m.name for m in made)} in one swarm; "
        "use it with `lab --cluster test up`"
    )
    return cmd_status(s, argparse.Namespace(json=False))


def cmd_remove(s: Invocation, args: argparse.Namespace) -> int:
    from lab.backends.swarm import machines

    removed = machines.remove(_client(), s.reporter())
    s.print(f"removed: {', '.join(removed)}" if removed else "there was no test cluster")
    return 0


def cmd_status(s: Invocation, args: argparse.Namespace) -> int:
    from rich.table import Table

    from lab.backends.swarm import machines

    report = machines.status(_client())
    if args.json:
        print(json.dumps([asdict(r) for r in report], indent=2))
        return 0
    if not report:
        s.print("no test cluster (make one with `lab cluster make 3`)")
        return 0
    table = Table(title=f"test cluster: {len(report)} machines", title_justify="left")
    for column in ("machine", "address", "state", "swarm", "engine"):
        table.add_column(column)
    for r in report:
        table.add_row(r.name, r.address, r.state, r.swarm, r.url)
    s.print(table)
    return 0
