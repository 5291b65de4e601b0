"""Check results of a class, per student and per property (`socklab grade` writes checks.csv).

A check result records who wrote the server (``facts.check.by``) and one verdict per
property. A student's latest check for each role counts; each row says how that check
judged one property: held, failed or not judged.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lab.check.spec import RESULT_PREFIX
from lab.grading.cells import cell


@dataclass(frozen=True)
class CheckRun:
    path: str
    student: str
    role: str
    file: str
    started_at: str
    verdicts: dict[str, str]  # property -> held, failed, not judged


def is_check(data: Mapping[str, Any]) -> bool:
    return str(data.get("experiment", "")).startswith(RESULT_PREFIX)


def of(path: str, data: Mapping[str, Any]) -> CheckRun:
    """A valid check result as a row source."""
    facts = data["facts"].get("check", {})
    verdicts = {
        c["id"]: ("not judged" if not c.get("judged", True) else "held" if c["held"] else "failed")
        for c in data["checks"]
    }
    return CheckRun(
        path,
        str(facts.get("by") or "").strip() or "(anonymous)",
        str(facts.get("role", data["experiment"][len(RESULT_PREFIX) :])),
        str(facts.get("file", "")),
        str(data["started_at"]),
        verdicts,
    )


def latest(runs: Iterable[CheckRun]) -> list[CheckRun]:
    """Each student's latest check of each role, by student then role."""
    newest: dict[tuple[str, str], CheckRun] = {}
    for run in runs:
        key = (run.student, run.role)
        if key not in newest or run.started_at > newest[key].started_at:
            newest[key] = run
    return [newest[k] for k in sorted(newest)]


def checks_csv(runs: Iterable[CheckRun]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["student", "role", "file", "property", "verdict", "checked_at"])
    for run in latest(runs):
        for prop, verdict in run.verdicts.items():
            row = [run.student, run.role, run.file, prop, verdict, run.started_at]
            writer.writerow([cell(v) for v in row])  # names from students' files: no formulas
    return out.getvalue()
