"""lab bench: the lab's services measured against real peers, side by side, on this machine."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import platform
import shlex
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lab import bench as bench_module
from lab.bench import report, stamp
from lab.cli.context import Invocation
from lab.errors import NotRunning, UsageError
from lab.names import PROJECT


def register(commands: Any) -> None:
    bench = commands.add_parser(
        "bench",
        help="benchmarks against real peers: redis, c10k, udp, packets, up, curriculum, "
        "check, scale, start; cold (deletes images), density (labs per machine) and class "
        "on request",
        description=bench_module.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"benchmarks to run (default: {', '.join(bench_module.DEFAULT)}); "
        f"one of: {', '.join(bench_module.BENCHES)}",
    )
    bench.add_argument("--tiny", action="store_true", help="tiny sizes: checks that each runs")
    bench.add_argument(
        "--labs", type=int, metavar="K", help="density: the largest number of labs (default 30)"
    )
    bench.add_argument(
        "--keep",
        action="store_true",
        help="density: leave its labs up (see them with `lab ls`; `lab down --all` removes them)",
    )
    bench.add_argument(
        "--budget",
        type=float,
        metavar="SECONDS",
        help="density: its own time limit (default 2400)",
    )
    bench.add_argument(
        "--out",
        type=Path,
        help="folder for the JSON and pictures (default: benchmarks/results; with --tiny, "
        "a folder under /tmp, so that tiny figures never replace real ones)",
    )
    bench.add_argument(
        "--markdown",
        type=Path,
        metavar="FILE",
        help="also write the page (BENCHMARKS.md) rendered from the JSON (refused from a "
        "tree with uncommitted changes: each row names the commit that made it)",
    )
    bench.set_defaults(handler=cmd_bench)


def cmd_bench(s: Invocation, args: argparse.Namespace) -> int:
    names = args.names or list(bench_module.DEFAULT)
    unknown = [n for n in names if n not in bench_module.BENCHES]
    if unknown:
        raise UsageError(
            f"no benchmark {', '.join(unknown)}", f"one of: {', '.join(bench_module.BENCHES)}"
        )
    from rich.table import Table

    sizes = bench_module.Sizes.tiny() if args.tiny else bench_module.Sizes()
    if args.out is None:
        tiny = Path(tempfile.gettempdir()) / f"{PROJECT}-bench-tiny"
        args.out = tiny if args.tiny else Path("benchmarks/results")
    if args.labs is not None:
        sizes = dataclasses.replace(sizes, labs=args.labs)
    if args.keep:
        sizes = dataclasses.replace(sizes, keep=True)
    if args.budget is not None:
        sizes = dataclasses.replace(sizes, budget_seconds=args.budget)
    # Before anything runs: a page must name the commit whose code made its rows.
    outputs = [args.out, *([args.markdown] if args.markdown else [])]
    code = stamp.of_code(outputs)
    if args.markdown:
        stamp.check_page(code)
    lab = s.lab
    if any(n not in bench_module.NEED_NO_LAB for n in names):
        if not lab.is_running():
            raise NotRunning(f"the lab (project {lab.project})")
        lab.wait_healthy(timeout=30)
    results = []
    reporter = s.reporter()
    try:
        for name in names:
            with reporter.running(f"benchmark {name}"):
                extra = {"plot": args.out / "udp-loss.png"} if name == "udp" else {}
                results.append(bench_module.load(name)(lab, sizes, reporter, **extra))
    finally:
        bench_module.cleanup(lab.backend)
    table = Table(title="benchmarks", title_justify="left", show_lines=True)
    for column in ("benchmark", "target", "met", "measured"):
        table.add_column(column)
    for b in results:
        table.add_row(
            b.name, b.target, {True: "[green]yes", False: "[red]no", None: "-"}[b.met], b.summary
        )
    s.print(table)
    code = stamp.across(code, stamp.of_code(outputs))  # the tree may change during a run
    command = shlex.join(["lab", *sys.argv[1:]])  # exactly as typed: options included
    measured = {
        "command": command,
        "machine": machine_line(),
        "date": datetime.date.today().isoformat(),
        "commit": code.commit,
        "dirty": code.dirty,
    }
    out = args.out / "latest.json"
    previous = None
    with contextlib.suppress(OSError, ValueError):
        loaded = json.loads(out.read_text())
        previous = loaded if isinstance(loaded, dict) else None
    fresh = [{**asdict(b), "measured": measured} for b in results]
    run = {
        "json": str(out),
        "benchmarks": report.merge(previous, fresh, list(bench_module.BENCHES)),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(run, indent=2) + "\n")
    s.print(f"JSON in {out} (the other benchmarks' latest rows kept)")
    if args.markdown:
        stamp.check_page(code)
        args.markdown.write_text(report.render(run))
        s.print(f"page written to {args.markdown}")
    return 0


def machine_line() -> str:
    """What the numbers were measured on."""
    memory = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kb / 1024 / 1024:.0f} GiB"
    return (
        f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs{memory}, "
        f"Python {platform.python_version()}"
    )
