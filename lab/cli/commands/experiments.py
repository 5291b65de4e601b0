"""lab list, lab run: experiments, built in or from files, with predictions and captures."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.cli.context import Invocation
from lab.errors import (
    ExitCode,
    ExperimentFileError,
    LabError,
    NotRunning,
    PicturesMissing,
    UsageError,
)
from lab.names import EXPERIMENTS_ENV, EXPERIMENTS_FOLDER

if TYPE_CHECKING:
    from lab.experiments import predictions
    from lab.experiments.model import Experiment, Result
    from lab.packets.dissect import Frame

# Named in lab.names, not lab.experiments.files: importing that loads every experiment.
FOLDER, FOLDER_ENV = EXPERIMENTS_FOLDER, EXPERIMENTS_ENV


def register(commands: Any) -> None:
    listing = commands.add_parser(
        "list",
        help="the experiments and the question each answers",
        description="The built-in experiments, and the experiment files in the experiments "
        f"folder of this directory (./{FOLDER}, or the folder ${FOLDER_ENV} "
        "names). Needs no Docker.",
    )
    listing.set_defaults(handler=cmd_list, needs_docker=False)

    run = commands.add_parser(
        "run",
        help="run experiments: claims checked against what the kernel did",
        description="Run experiments. Each states its claims, sends real traffic, and reports "
        "each claim as held or not, with what was observed. NAME is a built-in experiment "
        "(see `lab list`), the name of one in the experiments folder, or a file "
        "(path/to/experiment.py).",
    )
    run.add_argument("names", nargs="*", metavar="NAME|FILE", help="experiments to run")
    run.add_argument(
        "--all",
        action="store_true",
        help="run every built-in experiment this topology can run (the others are named, skipped)",
    )
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
        help="capture every frame on the lab networks while it runs (a pcap beside the "
        "result; see `lab packets`)",
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
    run.set_defaults(handler=cmd_run)


def cmd_list(s: Invocation, args: argparse.Namespace) -> int:
    from rich.table import Table

    from lab.experiments import EXPERIMENTS, files

    table = Table(title="built-in experiments", title_justify="left")
    table.add_column("name", no_wrap=True)
    table.add_column("question")
    table.add_column("claims", justify="right")
    for name, experiment in EXPERIMENTS.items():
        count = str(len(experiment.claims)) if experiment.claims else "per topology"
        table.add_row(name, experiment.question, count)
    s.print(table)
    found = files.discover()
    place = files.folder()
    if not found:
        s.print(
            f"no experiment files in {place}/ (run one with `lab run FILE.py`; "
            f"${files.FOLDER_ENV} names another folder)"
        )
        return 0
    mine = Table(title=f"experiment files in {place}/", title_justify="left")
    for column in ("name", "file", "question"):
        mine.add_column(column)
    for f in found:
        if f.experiment is None:
            mine.add_row("[red]cannot load", str(f.path), f.error)
        else:
            mine.add_row(f.experiment.name, str(f.path), f.experiment.question)
    s.print(mine)
    return 0


def chosen(args: argparse.Namespace) -> list[tuple[Experiment, Path | None]]:
    """The experiments asked for, each with the file it came from (None: built in)."""
    from lab.experiments import EXPERIMENTS, files
    from lab.experiments.builtin.failures import Failures, load_schedule

    if not args.names and not args.all:
        raise UsageError("name an experiment (see `lab list`), a file, or give --all")
    wanted = [*EXPERIMENTS] if args.all else args.names
    in_folder = {f.experiment.name: f.path for f in files.discover() if f.experiment is not None}
    out: list[tuple[Experiment, Path | None]] = []
    for name in wanted:
        if files.is_file_name(name):
            out.append((files.load(Path(name)), Path(name)))
        elif name in EXPERIMENTS:
            experiment = EXPERIMENTS[name]
            if name == "failures" and args.schedule:
                rows, seed = load_schedule(args.schedule)
                experiment = Failures(tuple(rows), seed)
            out.append((experiment, None))
        elif name in in_folder:
            out.append((files.load(in_folder[name]), in_folder[name]))
        else:
            known = [*EXPERIMENTS, *in_folder]
            raise UsageError(f"no experiment {name!r}", f"known: {', '.join(known)}; or a FILE.py")
    return out


def cmd_run(s: Invocation, args: argparse.Namespace) -> int:
    if args.offload and not args.capture:
        raise UsageError("--offload says how to capture: give --capture too")
    from lab.experiments import predictions

    experiments = chosen(args)
    lab = s.lab
    claims = {e.name: e.claims_for(lab.topology) for e, _ in experiments}
    known = {name: [c.id for c in cs] for name, cs in claims.items()}
    loaded = {p.experiment: p for p in (predictions.load(f, known) for f in args.predict)}
    if not lab.is_running():
        raise NotRunning(f"the lab (project {lab.project})")
    lab.wait_healthy(timeout=30)
    failed = 0
    for experiment, path in experiments:
        lacking = experiment.needs.missing(lab.topology)
        if args.all and lacking:  # every experiment this topology can run; the rest named
            print(
                f"{s.prog}: skipped {experiment.name}: it needs {', '.join(lacking)}",
                file=sys.stderr,
            )
            continue
        guess = loaded.get(experiment.name)
        if args.ask:
            guess = predictions.ask(
                experiment.name, claims[experiment.name], lambda c: _confirm(s, c), args.by
            )
            s.print(f"predictions saved to {predictions.save(guess, args.results)}")
        result, _ = run_one(s, args, experiment, path, guess)
        failed += not result.passed
    if failed:
        s.print(
            f"[bold red]{failed} of {len(experiments)} experiments had a claim that did not hold"
        )
        return ExitCode.CLAIM_FAILED
    return 0


def run_one(
    s: Invocation,
    args: argparse.Namespace,
    experiment: Experiment,
    path: Path | None,
    guess: predictions.Predictions | None,
) -> tuple[Result, list[Frame]]:
    from lab.experiments import files
    from lab.experiments.model import run_experiment
    from lab.packets import dissect
    from lab.packets import report as packet_report
    from lab.views.results import show_capture, show_result

    lab = s.lab
    reporter = s.reporter()
    pcap = args.results / f"{experiment.name}.capturing.pcap"
    with reporter.running(f"running {experiment.name}"), contextlib.ExitStack() as stack:
        info = (
            stack.enter_context(lab.capture(pcap, offload=args.offload, progress=reporter))
            if args.capture
            else None
        )
        try:
            result = run_experiment(
                experiment, lab, guess.answers if guess else None, guess.by if guess else ""
            )
        except (LabError, KeyboardInterrupt):
            raise
        except Exception as exc:
            if path is None:
                raise  # a bug in the lab itself: its traceback is wanted
            raise ExperimentFileError(files.where(exc, path)) from None
    frames: list[Frame] = []
    saved = result.save(args.results)
    if info is not None:
        info.path = pcap.replace(saved.with_suffix(".pcap"))
        frames = dissect.read(info.path)
        result.capture = packet_report.summary(info, frames, lab.address_names())
        result.save(args.results)
    try:
        pictures = experiment.pictures(result, saved.with_suffix(""), frames)
    except PicturesMissing as exc:  # the result stands; only its pictures are missing
        pictures = []
        print(f"{s.prog}: no pictures: {exc.line()}", file=sys.stderr)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
        return result, frames
    show_result(s.console, experiment, result, timeline=not args.no_timeline)
    if result.capture:
        show_capture(s.console, result, frames, ladder=experiment.timeline)
    s.print(f"result written to {saved}")
    if result.facts.get("stepped"):
        s.print(f"step through it, frame by frame: {s.prog} web {saved}", plain=True)
    if pictures:
        s.print(
            f"{len(pictures)} pictures in {pictures[0].parent}/"
            if len(pictures) > 1
            else f"picture: {pictures[0]}"
        )
    return result, frames


def _confirm(s: Invocation, claim: str) -> bool:
    from rich.prompt import Confirm

    return Confirm.ask(f"[bold]Will this hold?[/] {claim}", console=s.console)
