"""lab fuzz: malformed input at every declared port; every process must survive it."""

from __future__ import annotations

import argparse
from typing import Any

from lab.cli.context import Invocation
from lab.errors import ExitCode


def register(commands: Any) -> None:
    fuzz = commands.add_parser(
        "fuzz",
        help="throw malformed input at the processes and check they survive",
        description="Fuzz campaigns through the published ports, shaped by the protocol each "
        "port declares (socklab.ports): random bytes, truncated and oversized frames, invalid "
        "UTF-8, NUL bytes, endless lines, resets, half-open and slow connections, bursts. "
        "Exit 1 if a process crashed or stopped answering.",
    )
    fuzz.add_argument(
        "services",
        nargs="*",
        metavar="PROCESS",
        help="processes (or PROCESS:PORT) to fuzz (default: every declared port)",
    )
    fuzz.add_argument("--inputs", type=int, default=200, help="inputs per port (default 200)")
    fuzz.add_argument("--seed", type=int, default=1, help="seed of the input generator")
    fuzz.set_defaults(handler=cmd_fuzz)


def cmd_fuzz(s: Invocation, args: argparse.Namespace) -> int:
    from lab import fuzz as fuzzer

    failed = 0
    for endpoint in fuzzer.targets(s.lab.topology, args.services):
        reporter = s.reporter()
        with reporter.running(f"fuzzing {endpoint.label}"):
            campaign = fuzzer.run_campaign(
                s.lab.backend, endpoint, args.inputs, args.seed, reporter
            )
        s.print(campaign.line(), plain=True)
        failed += campaign.crashes > 0 or not campaign.healthy_after
    return ExitCode.ERROR if failed else 0
