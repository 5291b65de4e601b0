"""lab chaos, lab link: break something by hand and leave it, mend it, impair a link."""

from __future__ import annotations

import argparse
from typing import Any

from lab.chaos import impairment
from lab.cli.context import Invocation
from lab.errors import UsageError


def register(commands: Any) -> None:
    chaos = commands.add_parser(
        "chaos",
        help="break something by hand: kill|stop|pause|resume|cut|heal|restart|restore "
        "(across machines also isolate|rejoin|sever|mend)",
        description="Inject one fault by hand and leave it in place, to explore what clients "
        "see (try `lab send` meanwhile). `lab chaos restore` mends everything: whatever "
        "differs from the topology (a process down, a host off its network or without its "
        "DNS names, a route or link not as declared) is put back.",
    )
    # Checked when it runs, not by a `choices` list: the faults' module loads the Docker
    # SDK, and building the parser must not (the list is in the help above).
    chaos.add_argument(
        "action",
        metavar="ACTION",
        help="kill, stop, pause, resume, cut, heal, restart or restore; across machines "
        "also isolate, rejoin, sever, mend",
    )
    chaos.add_argument(
        "target",
        nargs="?",
        default="",
        help="a process or a host of the topology (`lab status` lists them); "
        "cut and heal take a host; on a lab across machines, isolate/rejoin act on the "
        "host's whole machine and sever/mend on the link between its machine and the "
        "client's (docs/scale-out.md)",
    )
    chaos.set_defaults(handler=cmd_chaos)

    link = commands.add_parser(
        "link",
        help="impair a host's link: loss, rate, delay, jitter, duplicate, corrupt, reorder",
        description=impairment.HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  lab link shouthost loss 10%\n  lab link shouthost loss 5% "
        "rate 1mbit\n  lab link shouthost reset\n  lab link              (every host's link)\n"
        "The impairment stays until reset, `lab chaos restore` or `lab down`; reset and "
        "restore go back to what the topology declares (socklab.link), a clean link if nothing.",
    )
    link.add_argument("host", nargs="?", default="", help="a host of the topology")
    link.add_argument(
        "spec",
        nargs="*",
        metavar="KIND VALUE",
        help="what to impose (replaces what was there), or `reset`",
    )
    link.set_defaults(handler=cmd_link)


def cmd_chaos(s: Invocation, args: argparse.Namespace) -> int:
    from lab.chaos.faults import KINDS, UNDO

    if args.action not in (*KINDS, "restore"):
        raise UsageError(f"no chaos action {args.action!r}", f"one of: {', '.join(KINDS)}, restore")
    if args.action == "restore":
        done = s.lab.restore(s.reporter())
        s.print("restored: " + ", ".join(done) if done else "nothing needed mending")
        return 0
    if not args.target:
        raise UsageError(f"chaos {args.action} needs a TARGET")
    s.lab.chaos(args.action, args.target, s.reporter())
    if args.action in UNDO:  # a fault, not a mending (resume, heal) or a restart
        s.print(
            f"{args.action} {args.target}: done. The fault stays until you undo it "
            f"({UNDO[args.action]} {args.target}) or run `lab chaos restore`."
        )
    else:
        s.print(f"{args.action} {args.target}: done.")
    return 0


def cmd_link(s: Invocation, args: argparse.Namespace) -> int:
    lab = s.lab
    hosts = [lab.topology.host(args.host).name] if args.host else list(lab.topology.hosts)
    if args.spec == ["reset"]:
        lab.unlink(args.host)
        declared = lab.topology.hosts[args.host].link
        s.print(f"{args.host}: link reset" + (f" to {declared} (declared)" if declared else ""))
        return 0
    if args.spec:
        how = lab.link(args.host, impairment.parse(args.spec))
        s.print(
            f"{args.host}: {impairment.parse(args.spec).text()}{f' ({how})' if how else ''}. "
            f"It stays until `lab link {args.host} reset`."
        )
        return 0
    for host in hosts:
        declared = lab.topology.hosts[host].link
        s.print(f"[bold]{host}[/]" + (f"  (declared: {declared})" if declared else ""))
        s.print(lab.link_state(host).rstrip(), plain=True)
    return 0
