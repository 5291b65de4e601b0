"""The ``lab`` command. The one place where errors become a line of text and an exit code."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import docker
import docker.errors
from rich.console import Console

from lab import render, topology
from lab.compose import Compose
from lab.errors import DockerUnavailable, LabError, UsageError
from lab.stack import Lab

DEFAULT_PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_SOCKET = "unix:///var/run/docker.sock"

DESCRIPTION = """\
A containerised networking lab. Two hosts run four real processes on one
Docker network: apphost runs http (TCP 80) and db (TCP 6379, Redis protocol);
shouthost runs tcp-shout (TCP 8080) and udp-shout (UDP 8080). A client host
sends experiments' traffic from inside the network.
"""

EPILOG = """\
examples:
  lab up                          build, start, wait until every service is healthy
  lab status                      each host's IP, processes and port table
  lab send tcp "hello"            TCP round trip to tcp-shout via its published port
  lab send udp "hello" --from client
                                  the same over UDP, from the client host inside the network
  lab send http GET /             which process answered, and the peer address it saw
  lab send db SET greeting hi     a Redis-protocol command to db
  lab down                        remove every container, network and volume of the lab

exit codes: 0 ok, 1 lab error, 2 usage, 3 Docker or Compose missing, 4 port taken,
5 a service never turned healthy, 130 interrupted
"""

# (service, port inside its host, protocol) for each `lab send` kind
TARGETS = {
    "tcp": ("tcp-shout", 8080, "tcp"),
    "udp": ("udp-shout", 8080, "udp"),
    "http": ("http", 80, "tcp"),
    "db": ("db", 6379, "tcp"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lab",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--project-dir",
        type=Path,
        default=None,
        help="folder holding compose.yaml (default: this checkout)",
    )
    parser.add_argument(
        "-p",
        "--project",
        default=None,
        help="Compose project name (default: COMPOSE_PROJECT_NAME, else `name:` in compose.yaml)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser("up", help="build, start and wait until healthy")
    up.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="seconds to wait for every service to be healthy (default 120)",
    )

    commands.add_parser("down", help="remove every container, network and volume of the lab")

    status = commands.add_parser("status", help="hosts, IPs, processes and port tables")
    status.add_argument("--json", action="store_true", help="print JSON instead of tables")

    send = commands.add_parser(
        "send",
        help="one-shot client: tcp|udp|http|db",
        description="Send one message and show every socket operation and its outcome.",
    )
    send.add_argument("kind", choices=sorted(TARGETS))
    send.add_argument(
        "words",
        nargs="+",
        metavar="ARG",
        help="tcp/udp: MESSAGE; http: [METHOD] PATH; db: COMMAND [ARG...]",
    )
    send.add_argument(
        "--from",
        dest="origin",
        choices=("host", "client"),
        default="host",
        help="host: the Docker host, through the published port (default); "
        "client: the client host, inside the lab network, by service name",
    )
    send.add_argument("--data", default="", help="http: request body")
    send.add_argument(
        "--unconnected",
        action="store_true",
        help="udp: use sendto/recvfrom on an unconnected socket",
    )
    send.add_argument("--json", action="store_true", help="print the transcript as JSON")
    return parser


def docker_client() -> docker.DockerClient:
    """Connect to Docker Engine, or say in one line why not."""
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        text = str(exc)
        if "Permission denied" in text or "PermissionError" in text:
            raise DockerUnavailable(
                "no permission to use the Docker socket",
                "run as root, or add your user to the docker group and log in again",
            ) from None
        raise DockerUnavailable(
            f"Docker Engine is not reachable at {os.environ.get('DOCKER_HOST', DEFAULT_SOCKET)}",
            "start it (`sudo systemctl start docker` or `sudo dockerd &`) or run `make setup`",
        ) from None
    return client


def make_lab(args: argparse.Namespace, client: docker.DockerClient) -> Lab:
    project_dir = (args.project_dir or DEFAULT_PROJECT_DIR).resolve()
    topo = topology.load(project_dir, os.environ, args.project)
    return Lab(client, topo, Compose(project_dir, topo.project, {}), project_dir)


def cmd_up(lab: Lab, args: argparse.Namespace, console: Console) -> int:
    Compose.version()
    reporter = render.Reporter(console)
    with reporter.running("starting the lab"):
        chosen = lab.up(reporter, timeout=args.timeout)
    console.print(
        f"[green]lab is up[/] (project {lab.topology.project}; "
        f"base image {chosen.image}, {chosen.path} path)"
    )
    for table in render.status_tables(lab.status()):
        console.print(table)
    return 0


def cmd_down(lab: Lab, args: argparse.Namespace, console: Console) -> int:
    console.print(render.removed_text(lab.down()))
    return 0


def cmd_status(lab: Lab, args: argparse.Namespace, console: Console) -> int:
    report = lab.status()
    if args.json:
        print(json.dumps(render.status_json(report), indent=2))
        return 0
    for table in render.status_tables(report):
        console.print(table)
    return 0


def cmd_send(lab: Lab, args: argparse.Namespace, console: Console) -> int:
    from services import probe  # the same client code that runs inside the client host

    service, port, protocol = TARGETS[args.kind]
    if args.origin == "client":
        host, port = service, port
    else:
        host, port = "127.0.0.1", lab.published_port(service, port, protocol)
    argv = [args.kind, host, str(port), *probe_args(args)]
    if args.origin == "client":
        transcript: dict[str, Any] = lab.exec_probe(argv)
    else:
        transcript = probe.run(argv).to_json()
    if args.json:
        print(json.dumps(transcript, indent=2))
    else:
        console.print(render.transcript_table(transcript))
        if transcript["error"]:
            console.print(f"[red]error:[/] {transcript['error']}")
        else:
            console.print(transcript["reply"], markup=False, highlight=False)
    return 0 if not transcript["error"] else 1


def probe_args(args: argparse.Namespace) -> list[str]:
    words: list[str] = args.words
    if args.kind in ("tcp", "udp"):
        if len(words) != 1:
            raise UsageError(f"send {args.kind} takes one MESSAGE (quote it)")
        return [words[0], *(["--unconnected"] if args.unconnected and args.kind == "udp" else [])]
    if args.kind == "http":
        if len(words) == 1:
            words = ["GET", words[0]]
        if len(words) != 2 or not words[1].startswith("/"):
            raise UsageError(
                "send http takes [METHOD] PATH, e.g. `lab send http PUT /kv/a --data 1`"
            )
        return [*words, args.data] if args.data else words
    return words


COMMANDS = {"up": cmd_up, "down": cmd_down, "status": cmd_status, "send": cmd_send}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console()
    try:
        lab = make_lab(args, docker_client())
        return COMMANDS[args.command](lab, args, console)
    except LabError as exc:
        return fail(exc.line(), exc.exit_code)
    except docker.errors.DockerException as exc:
        return fail(f"Docker said: {' '.join(str(exc).split())}", 1)
    except KeyboardInterrupt:
        # `up` has already removed what it started; nothing else leaves state behind.
        return fail("interrupted", 130)


def fail(line: str, code: int) -> int:
    """The one line a user gets for any error: never wrapped, never a traceback."""
    print(f"lab: {line}", file=sys.stderr)
    return code
