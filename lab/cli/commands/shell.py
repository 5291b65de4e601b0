"""socklab shell: a shell in a lab host, as the lab's unprivileged user."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from lab.cli import console
from lab.cli.console import quiet_stdout
from lab.cli.context import Invocation
from lab.errors import UsageError
from lab.interrupts import ctrl_c_ignored, ended_as_ctrl_c


def register(commands: Any) -> None:
    shell = commands.add_parser(
        "shell",
        help="a shell in a host's namespaces, as the lab's unprivileged user",
        description="An interactive shell (bash) in a host: its network namespace (its "
        "addresses, routes, port table, neighbour table) and its processes, as the "
        "unprivileged user every lab host runs as (uid 10001, no capabilities, only /tmp "
        "writable), with the workbench tools: curl, nc, ss, ip, python3. The class "
        "server's browser terminal is the same shell. Leaving it (exit, Ctrl-D) ends "
        "everything it started. A process's name opens its host's shell.",
    )
    shell.add_argument(
        "host", nargs="?", metavar="HOST", help="a host or process (default: the client)"
    )
    shell.add_argument(
        "-c",
        dest="line",
        metavar="COMMAND",
        help="run COMMAND in that shell instead, print its output and exit with its status",
    )
    shell.set_defaults(handler=cmd_shell)


def cmd_shell(s: Invocation, args: argparse.Namespace) -> int:
    with ended_as_ctrl_c():
        return _shell(s, args)


def _shell(s: Invocation, args: argparse.Namespace) -> int:
    lab = s.lab
    if args.line is not None:
        command = lab.command(args.line, args.host)
        try:
            for out, err in command.output():
                sys.stdout.buffer.write(out)
                sys.stdout.buffer.flush()
                sys.stderr.buffer.write(err)
                sys.stderr.buffer.flush()
            return command.exit_code()
        except BrokenPipeError:  # the reader (head, grep -q) has had enough
            quiet_stdout()
            return 0
        finally:
            with ctrl_c_ignored():
                command.close()
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError(
            "an interactive shell needs a terminal",
            f'run one command with -c: {s.prog} shell {args.host or "client"} -c "ss -tan"',
        )
    terminal = lab.terminal(args.host)
    try:
        console.join(terminal)
    finally:
        with ctrl_c_ignored():
            terminal.close()
    return 0
