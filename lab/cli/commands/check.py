"""lab check: a server of one's own, run in the lab and judged by what the kernel did."""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.cli.context import Invocation
from lab.errors import ExitCode, LabError, UsageError

if TYPE_CHECKING:
    from lab.check import Assignment

WATCH_POLL = 0.5
OUTPUT_LINES = 20  # of a server that never listened: its traceback's end


def register(commands: Any) -> None:
    check = commands.add_parser(
        "check",
        help="run your own server in the lab and judge it by what the kernel did",
        description="Run FILE (a Python server) as a process of the lab, in place of the "
        "role's process, with the lab's image and hardening; probe it (one client after "
        "another, two at once, a reset, a half-close, a character split across reads, a "
        "slow reader, a restart, bytes that are not text...); judge each property from the "
        "client's socket calls, the server's traced system calls and its sockets. The "
        "server learns its port from $PORT. Exit 6 when a property fails (docs/checking.md).",
    )
    check.add_argument("server", type=Path, metavar="FILE.py", help="the server to check")
    check.add_argument(
        "--as",
        dest="role",
        default="tcp-shout",
        metavar="ROLE",
        # lab.check.ROLES, not listed: importing it loads the Docker SDK (a wrong name
        # is answered with the list)
        help="what it must do: a built-in role (default tcp-shout; a wrong name lists them), "
        "or an assignment file",
    )
    check.add_argument(
        "--port", type=int, default=None, help="where it listens (default: the role's)"
    )
    check.add_argument(
        "-v",
        "--explain",
        action="store_true",
        help="for each property, what was seen, why it matters, and the fix",
    )
    check.add_argument("--watch", action="store_true", help="check again each time FILE is saved")
    check.add_argument(
        "--results",
        type=Path,
        default=Path("results"),
        help="folder for the JSON result (default: ./results)",
    )
    check.add_argument(
        "--by", default=None, help="who wrote the server, as `lab grade` reports it (default: you)"
    )
    check.set_defaults(handler=cmd_check)


def cmd_check(s: Invocation, args: argparse.Namespace) -> int:
    from lab.check import resolve

    if not args.server.is_file():
        raise UsageError(f"{args.server}: no such file")
    assignment = resolve(args.role).with_port(args.port)
    if not args.watch:
        return _once(s, args, assignment)
    seen = None
    while True:
        try:
            stamp = args.server.stat().st_mtime_ns
        except FileNotFoundError:  # an editor saving by rename: it is back in a moment
            stamp = seen
        if stamp != seen:
            seen = stamp
            try:
                _once(s, args, assignment)
            except LabError as exc:  # this save does not run: say so and wait for the next
                print(f"{s.prog}: {exc.line()}", file=sys.stderr)
            s.print(f"watching {args.server}: each save is checked again (Ctrl-C ends)")
        time.sleep(WATCH_POLL)  # Ctrl-C ends the loop (exit 130)


def _once(s: Invocation, args: argparse.Namespace, assignment: Assignment) -> int:
    from lab.check import check
    from lab.check.server import ServerFailed
    from lab.check.view import lines, summary

    reporter = s.reporter()
    try:
        with reporter.running(f"checking {args.server.name} as {assignment.name}"):
            result = check(s.lab, args.server, assignment, progress=reporter, by=args.by or _user())
    except ServerFailed as exc:  # its own words first (a traceback), then the one line
        for line in exc.output.strip().splitlines()[-OUTPUT_LINES:]:
            print(f"  {args.server.name}: {line}", file=sys.stderr)
        raise
    for line in lines(result, explain=args.explain):
        s.print(line, plain=True)
    saved = result.save(args.results)
    s.print(f"{summary(result)}; result: {saved}", plain=True)
    failed = any(c.judged and not c.held for c in result.checks)
    if failed and not args.explain:
        s.print(
            f"`{s.prog} check {args.server} --as {args.role} --explain`: the evidence and the fix",
            plain=True,
        )
    # Nothing judged is never a pass (every verdict must be able to fail).
    return int(ExitCode.CLAIM_FAILED if failed or not result.passed else ExitCode.OK)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""
