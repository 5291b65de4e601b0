"""The ``lab`` command. The one place where errors become a line of text and an exit code."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import docker
import docker.errors
from rich.console import Console
from rich.prompt import Confirm
from rich.table import Table

from lab import bench as bench_module
from lab import fuzz as fuzzer
from lab import topology
from lab.chaos import links
from lab.chaos.faults import KINDS, UNDO, Chaos, restore
from lab.engine import helpers
from lab.engine.compose import Compose
from lab.engine.stack import Lab, ctrl_c_ignored
from lab.errors import DockerUnavailable, LabError, NotRunning, UsageError
from lab.experiments import EXPERIMENTS, predictions
from lab.experiments.builtin.failures import Cell, Failures, load_schedule
from lab.experiments.model import Result, run_experiment
from lab.packets import report as packet_report
from lab.packets import view as packet_view
from lab.packets.capture import capturing
from lab.progress import silent
from lab.traffic import clients as send
from lab.views import render
from services.probes.sockscript import Runner

if TYPE_CHECKING:  # scapy loads slowly: imported where a capture is read
    from lab.packets.dissect import Frame

DEFAULT_PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_SOCKET = "unix:///var/run/docker.sock"
LADDER_LINES = 400  # beyond this, `lab packets FILE --ladder` shows the whole conversation

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
  lab list                        the experiments and their questions
  lab run dispatch                run one experiment: claims, observations, timeline
  lab run --all                   run every experiment; results as JSON under results/
  lab run dispatch --ask          predict each claim first, then see how you did
  lab run dispatch --predict examples/predictions/dispatch.yaml
  lab run failures                the failure matrix, with one timeline picture per cell
  lab run tcp-vs-udp --capture    ...and capture its frames: a ladder diagram, checksums, a pcap
  lab packets results/X.pcap -f 4 frame 4 layer by layer: fields, checksums, marked-up hex
  lab chaos kill tcp-shout        break something by hand (the fault stays)
  lab chaos restore               mend whatever is broken (links too)
  lab link shouthost loss 10%     drop a tenth of the frames arriving at shouthost
  lab fuzz --inputs 500           malformed input at every service; they must all survive
  lab bench --tiny                benchmarks against real peers, on tiny sizes (see BENCHMARKS.md)
  lab down                        remove every container, network and volume of the lab

exit codes: 0 ok, 1 lab error, 2 usage, 3 Docker or Compose missing, 4 port taken,
5 a service never turned healthy, 6 an experiment's claim did not hold, 130 interrupted
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

    commands.add_parser("list", help="the experiments and the question each answers")

    fuzz = commands.add_parser(
        "fuzz",
        help="throw malformed input at the services and check they survive",
        description="Fuzz campaigns through the published ports: random bytes, truncated and "
        "oversized frames, invalid UTF-8, NUL bytes, endless lines, resets, "
        "half-open and slow connections, bursts. Exit 1 if a service crashed.",
    )
    fuzz.add_argument(
        "services",
        nargs="*",
        metavar="SERVICE",
        help="tcp-shout, udp-shout, db, http (default: all)",
    )
    fuzz.add_argument("--inputs", type=int, default=200, help="inputs per service (default 200)")
    fuzz.add_argument("--seed", type=int, default=1, help="seed of the input generator")

    bench = commands.add_parser(
        "bench",
        help="benchmarks against real peers: redis, c10k, udp, cycle",
        description=bench_module.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"benchmarks to run (default: all): {', '.join(bench_module.BENCHES)}",
    )
    bench.add_argument("--tiny", action="store_true", help="tiny sizes: checks that each runs")
    bench.add_argument(
        "--out",
        type=Path,
        default=Path("benchmarks/results"),
        help="folder for JSON and pictures (default: benchmarks/results)",
    )
    bench.add_argument(
        "--markdown",
        type=Path,
        metavar="FILE",
        help="also write the table as Markdown (BENCHMARKS.md)",
    )

    chaos = commands.add_parser(
        "chaos",
        help="break something by hand: kill|stop|pause|resume|cut|heal|restart|restore",
        description="Inject one fault by hand and leave it in place, to explore what clients "
        "see (try `lab send` meanwhile). `lab chaos restore` mends everything.",
    )
    chaos.add_argument("action", choices=(*KINDS, "restore"))
    chaos.add_argument(
        "target",
        nargs="?",
        default="",
        help="a process (http, db, tcp-shout, udp-shout) or a host "
        "(apphost, shouthost, client); cut and heal take a host",
    )

    link = commands.add_parser(
        "link",
        help="impair a host's link: loss, rate, delay, jitter, duplicate, corrupt, reorder",
        description=links.HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  lab link shouthost loss 10%\n  lab link shouthost loss 5% "
        "rate 1mbit\n  lab link shouthost reset\n  lab link              (every host's link)\n"
        "The impairment stays until reset, `lab chaos restore` or `lab down`.",
    )
    link.add_argument("host", nargs="?", default="", help="apphost, shouthost or client")
    link.add_argument(
        "spec",
        nargs="*",
        metavar="KIND VALUE",
        help="what to impose (replaces what was there), or `reset`",
    )

    run = commands.add_parser(
        "run",
        help="run experiments: claims checked against what the kernel did",
        description="Run experiments. Each states its claims, sends real traffic from the "
        "client host (and the Docker host where publishing is the lesson), and "
        "reports each claim as held or not, with what was observed.",
    )
    run.add_argument("names", nargs="*", metavar="NAME", help="experiments to run (see lab list)")
    run.add_argument("--all", action="store_true", help="run every experiment")
    run.add_argument(
        "--predict",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="a YAML predictions file (repeatable, one per experiment)",
    )
    run.add_argument(
        "--ask", action="store_true", help="ask for a prediction of each claim before running"
    )
    run.add_argument("--by", default="", help="whose predictions these are (saved with them)")
    run.add_argument(
        "--results",
        type=Path,
        default=Path("results"),
        help="folder for the JSON results (default: ./results)",
    )
    run.add_argument("--no-timeline", action="store_true", help="leave the timeline out")
    run.add_argument("--json", action="store_true", help="print results as JSON, not tables")
    run.add_argument(
        "--capture",
        action="store_true",
        help="capture every frame on the lab network while it runs (a pcap beside the result; "
        "see `lab packets`)",
    )
    run.add_argument(
        "--offload",
        action="store_true",
        help="with --capture: leave the hosts' checksum offload on (their TCP and UDP "
        "checksums are then left unfinished, and shown as offloaded)",
    )
    run.add_argument(
        "--schedule",
        type=Path,
        metavar="FILE",
        help="failures: a YAML fault schedule to run instead of the default matrix",
    )
    packets = commands.add_parser(
        "packets",
        help="take a capture apart: frames, layers, checksums, hex, ladder diagram",
        description="Read a pcap file (from `lab run --capture`, tcpdump or Wireshark) and show "
        "each frame layer by layer: Ethernet, ARP or IPv4, TCP, UDP or ICMP, and the "
        "application bytes, with every checksum recomputed. Needs no Docker.",
    )
    packets.add_argument("file", type=Path, metavar="FILE", help="a pcap file")
    packets.add_argument(
        "-f",
        "--frame",
        action="append",
        type=int,
        default=[],
        metavar="N",
        help="show frame N layer by layer, with a hex view (repeatable)",
    )
    packets.add_argument("--all", action="store_true", help="show every frame layer by layer")
    packets.add_argument(
        "--ladder",
        action="store_true",
        help="the conversation as a ladder diagram, with the experiment's socket calls "
        "and faults (from the result saved beside the capture)",
    )
    packets.add_argument("--json", action="store_true", help="print frames as JSON")
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
    service, port, protocol = TARGETS[args.kind]
    if args.origin == "client":
        host = service  # by name, through Docker's DNS, inside the lab network
    else:
        host, port = "127.0.0.1", lab.published_port(service, port, protocol)
    steps = send.script(
        args.kind, host, port, args.words, data=args.data, unconnected=args.unconnected
    )
    if args.origin == "client":
        events = lab.run_script(lab.topology.client.name, steps)
    else:
        events = Runner().run(steps)
    error = send.failure(events)
    if args.json:
        print(json.dumps({"events": [asdict(e) for e in events], "error": error}, indent=2))
    else:
        console.print(render.events_table(events, f"{args.kind} → {host}:{port}"))
        if error:
            console.print(f"[red]failed:[/] {error}")
        console.print(send.reply_text(args.kind, events), markup=False, highlight=False)
    return 1 if error else 0


def cmd_chaos(lab: Lab, args: argparse.Namespace, console: Console) -> int:
    if args.action == "restore":
        done = restore(lab, render.Reporter(console))
        done += [f"removed {name}" for name in helpers.remove_all(lab)]
        for host in lab.topology.hosts:
            links.reset(lab, host)  # cheap, and a link left impaired looks like anything else
        console.print("restored: " + ", ".join(done) if done else "nothing needed mending")
        return 0
    if not args.target:
        raise UsageError(f"chaos {args.action} needs a TARGET")
    Chaos(lab).apply(args.action, args.target)
    if args.action in UNDO:  # a fault, not a mending (resume, heal) or a restart
        console.print(
            f"{args.action} {args.target}: done. The fault stays until you undo it "
            f"({UNDO[args.action]} {args.target}) or run `lab chaos restore`."
        )
    else:
        console.print(f"{args.action} {args.target}: done.")
    return 0


def cmd_link(lab: Lab, args: argparse.Namespace, console: Console) -> int:
    hosts = [args.host] if args.host else list(lab.topology.hosts)
    if args.host and args.host not in lab.topology.hosts:
        raise UsageError(f"{args.host} is not a host; one of: {', '.join(lab.topology.hosts)}")
    if args.spec == ["reset"]:
        links.reset(lab, args.host)
        console.print(f"{args.host}: link reset, nothing imposed")
        return 0
    if args.spec:
        impairment = links.parse(args.spec)
        how = links.apply(lab, args.host, impairment)
        console.print(
            f"{args.host}: {impairment.text()}{f' ({how})' if how else ''}. "
            f"It stays until `lab link {args.host} reset`."
        )
        return 0
    for host in hosts:
        console.print(f"[bold]{host}[/]")
        console.print(links.show(lab, host).rstrip(), markup=False, highlight=False)
    return 0


def cmd_fuzz(lab: Lab, args: argparse.Namespace, console: Console) -> int:
    services = args.services or list(fuzzer.PORTS)
    unknown = [s for s in services if s not in fuzzer.PORTS]
    if unknown:
        raise UsageError(f"cannot fuzz {', '.join(unknown)}; one of: {', '.join(fuzzer.PORTS)}")
    failed = 0
    for service in services:
        reporter = render.Reporter(console)
        with reporter.running(f"fuzzing {service}"):
            campaign = fuzzer.run_campaign(lab, service, args.inputs, args.seed, reporter)
        console.print(campaign.line(), highlight=False)
        failed += campaign.crashes > 0 or not campaign.healthy_after
    return 1 if failed else 0


def cmd_bench(lab: Lab, args: argparse.Namespace, console: Console) -> int:
    names = args.names or list(bench_module.DEFAULT)
    unknown = [n for n in names if n not in bench_module.BENCHES]
    if unknown:
        raise UsageError(
            f"no benchmark {', '.join(unknown)}; one of: {', '.join(bench_module.BENCHES)}"
        )
    sizes = bench_module.Sizes.tiny() if args.tiny else bench_module.Sizes()
    if not lab.states():
        raise NotRunning(f"the lab (project {lab.topology.project})")
    lab.wait_healthy(silent, timeout=30)
    results = []
    reporter = render.Reporter(console)
    try:
        for name in names:
            with reporter.running(f"benchmark {name}"):
                extra = {"plot": args.out / "udp-loss.png"} if name == "udp" else {}
                results.append(bench_module.BENCHES[name](lab, sizes, reporter, **extra))
    finally:
        bench_module.cleanup(lab)
    table = Table(title="benchmarks", title_justify="left", show_lines=True)
    for column in ("benchmark", "target", "met", "measured"):
        table.add_column(column)
    for b in results:
        table.add_row(
            b.name, b.target, {True: "[green]yes", False: "[red]no", None: "-"}[b.met], b.summary
        )
    console.print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(bench_module.to_json(results), indent=2))
    console.print(f"JSON in {args.out / 'latest.json'}")
    if args.markdown:
        command = "lab bench" + "".join(f" {n}" for n in args.names) + (" --tiny" * args.tiny)
        args.markdown.write_text(bench_module.markdown(results, machine_line(), command))
        console.print(f"table written to {args.markdown}")
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


def cmd_list(lab: Lab | None, args: argparse.Namespace, console: Console) -> int:
    table = Table(title="experiments", title_justify="left")
    table.add_column("name", no_wrap=True)
    table.add_column("question")
    table.add_column("claims", justify="right")
    for name, experiment in EXPERIMENTS.items():
        table.add_row(name, experiment.question, str(len(experiment.claims)))
    console.print(table)
    return 0


def cmd_run(lab: Lab, args: argparse.Namespace, console: Console) -> int:
    names = list(EXPERIMENTS) if args.all else args.names
    if not names:
        raise UsageError("name an experiment (see `lab list`) or give --all")
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        raise UsageError(f"no experiment {', '.join(unknown)}; known: {', '.join(EXPERIMENTS)}")
    experiments = dict(EXPERIMENTS)
    if args.schedule:
        rows, seed = load_schedule(args.schedule)
        experiments["failures"] = Failures(tuple(rows), seed)
    loaded = {p.experiment: p for p in (predictions.load(f, experiments) for f in args.predict)}
    if not lab.states():
        raise NotRunning(f"the lab (project {lab.topology.project})")
    lab.wait_healthy(silent, timeout=30)
    failed = 0
    for name in names:
        experiment = experiments[name]
        guess = loaded.get(name)
        if args.ask:
            guess = predictions.ask(experiment, lambda claim: _confirm(console, claim), args.by)
            saved = save_predictions(guess, args.results)
            console.print(f"predictions saved to {saved}")
        reporter = render.Reporter(console)
        with reporter.running(f"running {name}"), contextlib.ExitStack() as stack:
            pcap = args.results / f"{name}.capturing.pcap"
            info = (
                stack.enter_context(capturing(lab, pcap, offload=args.offload, progress=reporter))
                if args.capture
                else None
            )
            result = run_experiment(
                experiment, lab, guess.answers if guess else None, guess.by if guess else ""
            )
        path = result_path(result, args.results)
        frames: list[Frame] = []
        if info is not None:
            from lab.packets import dissect

            info.path = pcap.replace(path.with_suffix(".pcap"))
            frames = dissect.read(info.path)
            result.capture = packet_report.summary(info, frames, packet_report.host_names(lab))
        save_result(result, args.results)
        pictures = draw_pictures(result, path.with_suffix(""), frames)
        failed += not result.passed
        if args.json:
            print(json.dumps(result.to_json(), indent=2))
            continue
        show_result(console, lab, result, timeline=not args.no_timeline)
        if result.capture:
            show_capture(console, result, frames)
        console.print(f"result written to {path}")
        if pictures:
            console.print(
                f"{len(pictures)} pictures in {pictures[0].parent}/"
                if len(pictures) > 1
                else f"picture: {pictures[0]}"
            )
    if failed:
        console.print(
            f"[bold red]{failed} of {len(names)} experiments had a claim that did not hold"
        )
        return 6
    return 0


def _confirm(console: Console, claim: str) -> bool:
    return Confirm.ask(f"[bold]Will this hold?[/] {claim}", console=console)


def show_result(console: Console, lab: Lab, result: Result, *, timeline: bool) -> None:
    console.print(render.checks_table(result))
    if result.predictions:
        console.print(
            f"your predictions: {result.predictions['right']} of "
            f"{result.predictions['total']} right"
        )
    if "port_tables" in result.facts:
        for table in render.status_tables(lab.status()):
            if table.title and str(table.title).split()[0] in result.facts["port_tables"]:
                console.print(table)
    if "response" in result.facts:
        console.print("the raw request and response, line ends shown:")
        console.print(render.wire_text(result.facts["request"]))
        console.print(render.wire_text(result.facts["response"]))
    if "cells" in result.facts:
        verdicts = {c.id: c.held for c in result.checks}
        console.print(render.matrix_table(result.facts["cells"], verdicts))
        timeline = False  # hundreds of events: the pictures tell it better
    if "deliveries" in result.facts:
        console.print(render.deliveries_table(result.facts["deliveries"]))
        timeline = False  # thousands of numbered messages: the table and picture say it
    if timeline and result.events:
        console.print(render.timeline_table(result.events))


def show_capture(console: Console, result: Result, frames: list[Frame]) -> None:
    capture = result.capture or {}
    names = capture.get("names", {})
    if "cells" not in result.facts:  # the matrix's packets are in its pictures
        console.print("the conversation, frame by frame (time in ms since the experiment began):")
        data = result.to_json()
        lines = packet_report.ladder_of(frames, data)
        for line in lines[:LADDER_LINES]:
            console.print(line, highlight=False, markup=False, soft_wrap=True)
        if len(lines) > LADDER_LINES:
            console.print(
                f"... {len(lines) - LADDER_LINES} more lines: "
                f"`lab packets {capture.get('file')} --ladder`"
            )
    start = frames[0].time if frames else 0.0
    for frame in packet_view.examples(frames):
        console.print(packet_view.frame_detail(frame, names, start))
    for summary_line in packet_view.checksum_summary(frames, names):
        console.print(summary_line)
    console.print(
        f"{len(frames)} frames captured in {capture.get('file')}; layer by layer: "
        f"`lab packets {capture.get('file')} --frame N`, or open it in Wireshark"
    )


def draw_pictures(result: Result, folder: Path, frames: list[Frame] | None = None) -> list[Path]:
    """The pictures an experiment's facts call for, as PNG files in ``folder``."""
    if "deliveries" in result.facts:
        from lab.views import plots  # matplotlib loads slowly; only these experiments need it

        return [plots.delivery(result.facts["deliveries"], folder / "delivery.png")]
    return draw_cells(result, folder, frames)


def draw_cells(result: Result, folder: Path, frames: list[Frame] | None = None) -> list[Path]:
    """One PNG timeline per failure-matrix cell (with its frames, when captured)."""
    if "cells" not in result.facts:
        return []
    from lab.views import plots

    paths = []
    capture = result.capture or {}
    for data in result.facts["cells"]:
        cell = Cell.from_dict(data)
        marks = (
            packet_report.cell_packets(cell, frames, capture, result.lab["hosts"]) if frames else []
        )
        paths.append(plots.cell_timeline(cell, folder / f"{cell.row}-{cell.client}.png", marks))
    return paths


def result_path(result: Result, folder: Path) -> Path:
    stamp = result.started_at.replace(":", "").replace("-", "").replace("+0000", "Z")
    return folder / f"{result.experiment}-{stamp}.json"


def save_result(result: Result, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = result_path(result, folder)
    path.write_text(json.dumps(result.to_json(), indent=2) + "\n")
    return path


def cmd_packets(lab: Lab | None, args: argparse.Namespace, console: Console) -> int:
    from lab.packets import dissect

    frames = dissect.read(args.file)
    result = packet_report.result_beside(args.file)
    names = ((result or {}).get("capture") or {}).get("names", {})
    start = frames[0].time if frames else 0.0
    if args.json:
        print(json.dumps([packet_view.frame_json(f) for f in frames], indent=2))
        return 0
    chosen = frames if args.all else [f for f in frames if f.number in args.frame]
    missing = sorted(set(args.frame) - {f.number for f in frames})
    if missing:
        raise UsageError(f"{args.file} has {len(frames)} frames; no frame {missing[0]}")
    if args.ladder:
        if result is None:
            raise UsageError(
                f"--ladder needs the experiment result beside the capture "
                f"({args.file.with_suffix('.json')})"
            )
        for line in packet_report.ladder_of(frames, result):
            console.print(line, highlight=False, markup=False, soft_wrap=True)
    elif not chosen:
        console.print(packet_view.overview(frames, names, start))
    for frame in chosen:
        console.print(packet_view.frame_detail(frame, names, start))
    for summary_line in packet_view.checksum_summary(frames, names):
        console.print(summary_line)
    return 0


def save_predictions(guess: predictions.Predictions, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    who = "".join(ch for ch in guess.by if ch.isalnum() or ch in "-_") or "anonymous"
    path = folder / f"{guess.experiment}-predictions-{who}.yaml"
    path.write_text(guess.to_yaml())
    return path


COMMANDS = {
    "up": cmd_up,
    "down": cmd_down,
    "status": cmd_status,
    "send": cmd_send,
    "list": cmd_list,
    "run": cmd_run,
    "chaos": cmd_chaos,
    "fuzz": cmd_fuzz,
    "bench": cmd_bench,
    "link": cmd_link,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Piped output (CI logs, files) gets room for the timeline rather than rich's 80 columns.
    width = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "150"))
    console = Console(width=width)
    lab: Lab | None = None
    try:
        if args.command == "list":  # needs no Docker
            return cmd_list(None, args, console)
        if args.command == "packets":  # reads a file; needs no Docker either
            return cmd_packets(None, args, console)
        check_usage(args)  # before Docker is asked anything
        lab = make_lab(args, docker_client())
        return COMMANDS[args.command](lab, args, console)
    except LabError as exc:
        return fail(exc.line(), exc.exit_code)
    except docker.errors.DockerException as exc:
        return fail(f"Docker said: {' '.join(str(exc).split())}", 1)
    except KeyboardInterrupt:
        # `up` has already removed what it started; faults, links and captures are
        # undone by their own blocks; a helper caught half-started is removed below.
        return fail("interrupted", 130)
    finally:
        if lab is not None:
            with ctrl_c_ignored(), contextlib.suppress(docker.errors.DockerException):
                helpers.remove_mine(lab)


def check_usage(args: argparse.Namespace) -> None:
    """What argparse cannot say: options that only make sense together."""
    if args.command == "run" and args.offload and not args.capture:
        raise UsageError("--offload says how to capture: give --capture too")


def fail(line: str, code: int) -> int:
    """The one line a user gets for any error: never wrapped, never a traceback."""
    print(f"lab: {line}", file=sys.stderr)
    return code
