"""The ``lab`` command: a thin layer over the Python API (``lab.api``).

Each group of commands is a module under ``lab.cli.commands`` that registers its
parsers and handlers. This module is the one boundary where errors become a
line of text and an exit code (``lab.errors.ExitCode``).

Building the parser imports no Docker SDK, HTTP client or experiment: each command
imports what it uses when it runs, so that ``--help`` and a quick command start fast
(tests/pure/test_lazy_imports.py holds this).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from lab.cli.commands import GROUPS
from lab.cli.context import Invocation
from lab.errors import ExitCode, LabError
from lab.interrupts import ctrl_c_ignored
from lab.names import NAME_ENV

DESCRIPTION = """\
socklab (also installed as `lab`): a containerised networking lab. Hosts that own
IP addresses run real processes (an HTTP server, a Redis-protocol db, TCP and UDP
shout servers, or your own); it starts and stops the lab, shows which process owns
which port on which host, sends traffic whose every socket call is recorded as the
kernel answered it, breaks things on purpose, and runs experiments whose claims are
judged from what was observed. The topology is the Compose files (compose.yaml and
compose.override.yaml, or -f / COMPOSE_FILE), read as Compose resolves them; in a
folder with none, the default lab the package carries (`init` copies it to edit).
"""

EXAMPLES = """\
examples:
  lab up                          build, start, wait until every service is healthy
  lab init mylab                  an editable copy of the default lab: compose.yaml, services/
  lab status                      each host's IPs, processes, port table, link and routes
  lab sockets shouthost           every TCP and UDP socket: state, queues, owner and its fd
  lab trace tcp-shout --for 20    its socket system calls, live, beside what the lab sends
  lab send tcp hi --syscalls      ...and the client's own system calls, from the client host
  lab send tcp "hello"            TCP round trip to tcp-shout via its published port
  lab send udp "hello" --from client
                                  the same over UDP, from the client host inside the network
  lab send http GET /             which process answered, and the peer address it saw
  lab send db SET greeting hi     a Redis-protocol command to db
  lab send shouthost:8080/udp hi --from apphost
                                  any port of any host, from any host
  lab list                        the experiments and their questions (yours too)
  lab run dispatch                run one experiment: claims, observations, timeline
  lab run --all                   run every built-in experiment; results as JSON under results/
  lab run experiments/mine.py     run an experiment file of your own (docs/scripting.md)
  lab run dispatch --ask          predict each claim first, then see how you did
  lab run failures                the failure matrix, with one timeline picture per cell
  lab run sockets                 sockets as fds: accept, TIME_WAIT, CLOSE_WAIT, EPIPE, reuse
  lab run failures --schedule examples/schedules/one-at-a-time.yaml
  lab run tcp-vs-udp --capture    ...and capture its frames: a ladder diagram, checksums, a pcap
  lab packets results/X.pcap -f 4 frame 4 layer by layer: fields, checksums, marked-up hex
  lab capture shouthost -w - | wireshark -k -i -
                                  shouthost's frames, live, into Wireshark (Ctrl-C ends it)
  lab capture labnet -c 20        twenty frames of network labnet, one line each
  lab shell client                a shell in the client host, as the lab's unprivileged user
  lab shell client -c "ss -tan"   ...or one command in it
  lab check server.py --as tcp-shout
                                  your own server in tcp-shout's place: each property judged
  lab check server.py --as udp-shout --explain --watch
                                  ...with the evidence and the fix, again on every save
  lab chaos kill tcp-shout        break something by hand (the fault stays)
  lab chaos restore               mend whatever differs from the topology (links too)
  lab link shouthost loss 10%     drop a tenth of the frames arriving at shouthost
  lab web                         the lab in a browser: topology, traffic, faults, replays
  lab fuzz --inputs 500           malformed input at every declared port; all must survive
  lab bench --tiny                benchmarks against real peers, on tiny sizes (BENCHMARKS.md)
  lab -f examples/topologies/router/compose.yaml up
                                  another topology: two networks joined by a router host
  lab up --name ada --name bob    labs side by side: own project, subnet and ports each
  lab send tcp hi --name ada      any command, on one named lab (or LAB_NAME=ada)
  lab ls                          the named labs on this machine: owner, subnet, ports, state, age
  lab grade results/ shared/      predictions of the whole class: CSV and one HTML page
  lab class serve --roster class.csv
                                  a class in the browser: a lab, a terminal and grades each
  lab bench density               how many labs this machine holds (memory, CPU, dispatch)
  lab down                        remove every container, network and volume of the lab
  lab down --all                  remove every named lab (and nothing else)
  lab cluster make 3              three Docker Engines in containers here, one swarm
  lab --cluster test up           the lab across them (socklab.machine, or spread)
"""

log = logging.getLogger("lab")
# commands no --name applies to
WITHOUT_A_LAB = ("list", "packets", "ls", "grade", "cluster", "init", "class")


def command_name() -> str:
    """The name the user typed: ``socklab``, or its short second name ``lab`` (also what
    ``python -m lab`` answers to)."""
    typed = Path(sys.argv[0]).stem  # socklab.exe where pipx installs it on Windows
    return "socklab" if typed == "socklab" else "lab"


def _examples(prog: str) -> str:
    """EXAMPLES under the name typed, the second column kept in line where there is one."""
    extra = len(prog) - len("lab")

    def renamed(line: str) -> str:
        if not line.startswith("  lab "):
            return line
        rest = re.sub(
            r"( {2,})(?=\S)",
            lambda m: " " * max(2, len(m[1]) - extra),
            line[len("  lab ") :],
            count=1,
        )
        return f"  {prog} {rest}"

    return "\n".join(renamed(line) for line in EXAMPLES.split("\n"))


def build_parser(prog: str = "lab") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=DESCRIPTION,
        epilog=_examples(prog) + "\nexit codes: " + ExitCode.table() + "\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--project-dir",
        type=Path,
        default=None,
        help="where Compose runs (default: this folder if it holds Compose files or -f "
        "names some, else the default lab the package carries)",
    )
    parser.add_argument(
        "-f",
        "--file",
        action="append",
        type=Path,
        metavar="FILE",
        help="a Compose file, as `docker compose -f` (repeatable; COMPOSE_FILE works too)",
    )
    parser.add_argument(
        "-p",
        "--project",
        default=None,
        help="Compose project name (default: COMPOSE_PROJECT_NAME, else `name:` in the files)",
    )
    parser.add_argument(
        "--cluster",
        default=None,
        metavar="MACHINES",
        help="the lab across several machines in one Docker Swarm: `test` (made by `lab "
        "cluster make N`), or m1=URL,m2=URL or Docker context names (default $LAB_CLUSTER; "
        "docs/scale-out.md)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="say what the driver does (Compose commands, helpers, faults); -vv: more",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.register(commands)
    for command, sub in commands.choices.items():
        if command not in WITHOUT_A_LAB:
            several = command in ("up", "down")
            sub.add_argument(
                "--name",
                dest="lab_names",
                action="append",
                metavar="NAME",
                help="a named lab, one of many side by side (docs/classroom.md)"
                + ("; repeatable" if several else "")
                + f"; default ${NAME_ENV}, else the Compose files' own project",
            )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    prog = command_name()
    args = build_parser(prog).parse_args(argv)
    args.prog = prog
    if args.verbose:
        logging.basicConfig(
            stream=sys.stderr,
            level=logging.DEBUG if args.verbose > 1 else logging.INFO,
            format=f"{prog}: %(message)s",
        )
    invocation = Invocation(args)
    try:
        return int(args.handler(invocation, args))
    except LabError as exc:
        log.debug("failed", exc_info=True)
        return fail(exc.line(), exc.exit_code, prog)
    except KeyboardInterrupt:
        # `up` has already removed what it started; faults, links and captures are
        # undone by their own blocks; a helper caught half-started is removed below.
        return fail("interrupted", ExitCode.INTERRUPTED, prog)
    except Exception as exc:
        said = engine_failure(exc)
        if said is None:
            raise  # a bug in the lab itself: its traceback is wanted
        return fail(*said, prog)
    finally:
        if invocation.opened is not None:
            from lab.engine.docker_client import EngineError  # a lab was opened: loaded

            with ctrl_c_ignored(), contextlib.suppress(EngineError):
                invocation.opened.remove_my_helpers()


def engine_failure(exc: Exception) -> tuple[str, int] | None:
    """The line and exit code for an error the Docker SDK or its HTTP client raised; None
    for any other. A library never imported raised nothing, so neither is imported here
    unless a command already did."""
    if "docker" in sys.modules:
        from lab.engine.docker_client import EngineError

        if isinstance(exc, EngineError):
            return f"Docker said: {' '.join(str(exc).split())}", ExitCode.ERROR
    if "requests" in sys.modules:
        import requests

        if isinstance(exc, requests.RequestException):  # an engine lost or slow mid-command
            what = " ".join(str(exc).split())[:300]
            return f"a Docker Engine stopped answering: {what}", ExitCode.NO_DOCKER
    return None


def fail(line: str, code: int, prog: str = "lab") -> int:
    """The one line a user gets for any error: never wrapped, never a traceback."""
    print(f"{prog}: {line}", file=sys.stderr)
    return code
