"""lab grade: a class's predictions, collected from result files, as CSV and one HTML page."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from lab.cli.context import Invocation


def register(commands: Any) -> None:
    grade = commands.add_parser(
        "grade",
        help="collect the class's results: per student, per claim, as CSV and HTML",
        description="Read every result file (*.json) under the given folders: those "
        "written by `lab run --ask --by NAME` or `--predict FILE` carry who predicted "
        "what. Each is checked against the published schema and against itself (a "
        "malformed or hand-edited file is named and skipped). Writes students.csv (one "
        "row per student), claims.csv (one row per claim, the misconceptions first) and "
        "report.html (both, with a chart; one self-contained file); and checks.csv from "
        "`check` results (each student's latest per role, one row per property). Needs no "
        "Docker.",
    )
    grade.add_argument("folders", nargs="+", type=Path, metavar="DIR", help="where results are")
    grade.add_argument(
        "--out",
        type=Path,
        default=Path("grades"),
        help="folder for the CSVs and the page (default: ./grades)",
    )
    grade.add_argument("--title", default="Predictions of the class", help="the page's title")
    grade.set_defaults(handler=cmd_grade)


def cmd_grade(s: Invocation, args: argparse.Namespace) -> int:
    from lab.grading import aggregate, checks, collect, report  # jsonschema: only here

    collected = collect.collect(args.folders)
    students = aggregate.students(collected.submissions)
    claims = aggregate.claims(collected.submissions)
    paths = report.write(args.out, args.title, collected, students, claims)
    if collected.checks:
        written = args.out / "checks.csv"
        written.write_text(checks.checks_csv(collected.checks), encoding="utf-8")
        paths.append(written)
        s.print(
            f"{len(collected.checks)} check results from "
            f"{len({r.student for r in collected.checks})} students: checks.csv, one row per "
            "student, role and property",
            plain=True,
        )
    for skipped in collected.skipped:
        s.print(f"skipped {skipped.path}: {skipped.reason}", plain=True)
    s.print(
        f"{len(collected.submissions)} results with predictions from {len(students)} students, "
        f"{len(claims)} claims; {len(collected.unpredicted)} without predictions; "
        f"{len(collected.skipped)} skipped",
        plain=True,
    )
    if claims:
        worst = claims[0]
        s.print(
            f"most often predicted wrong: {worst.key} ({worst.right} of {worst.students} right)",
            plain=True,
        )
    s.print("written: " + ", ".join(str(p) for p in paths), plain=True)
    return 0
