"""The class's grades from the server's own records: the same rows as `lab grade`.

Each stored result is read through the very checks `lab grade` makes of a file
(lab.grading.collect.read), then attributed to the student whose session asked for
the run: the server knows who ran it, whatever a result says about itself.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict
from typing import Any

from lab.classroom.store import Store
from lab.grading import aggregate, checks, collect, report

TITLE = "Predictions of the class"


def collected(store: Store) -> collect.Collected:
    submissions: list[collect.Submission] = []
    runs: list[checks.CheckRun] = []
    skipped: list[collect.Skipped] = []
    unpredicted: list[str] = []
    for run, student, data in store.results():
        source = f"run {run} ({student})"
        found, reason = collect.read(source, data)
        if reason is not None:
            skipped.append(collect.Skipped(source, reason))
        elif isinstance(found, checks.CheckRun):
            runs.append(dataclasses.replace(found, student=student))
        elif isinstance(found, collect.Submission):
            submissions.append(dataclasses.replace(found, student=student))
        else:
            unpredicted.append(source)
    return collect.Collected(submissions, skipped, unpredicted, runs)


def files(store: Store, title: str = TITLE) -> dict[str, str]:
    """students.csv, claims.csv, checks.csv and report.html, as `lab grade` writes them."""
    found = collected(store)
    students = aggregate.students(found.submissions)
    claims = aggregate.claims(found.submissions)
    return {
        "students.csv": report.students_csv(students),
        "claims.csv": report.claims_csv(claims),
        "checks.csv": checks.checks_csv(found.checks),
        "report.html": report.html_page(title, found, students, claims),
    }


def overview(store: Store) -> dict[str, Any]:
    """The teacher's live view: per student, per claim, per check property."""
    found = collected(store)
    rows = {r.student: r for r in aggregate.students(found.submissions)}
    students = []
    for s in store.students():
        row = rows.get(s.id)
        runs = store.runs(s.id, limit=1000)
        students.append(
            {
                "id": s.id,
                "name": s.name,
                "active": s.active,
                "has_token": s.has_token,
                "runs": len(runs),
                "waiting": sum(r.state in ("queued", "running") for r in runs),
                "right": row.right if row else 0,
                "total": row.total if row else 0,
                "wrong": list(row.wrong) if row else [],
                "not_held": list(row.not_held) if row else [],
            }
        )
    claims = [
        {**asdict(c), "share": round(c.share, 3)} for c in aggregate.claims(found.submissions)
    ]
    properties = [
        {
            "student": r.student,
            "role": r.role,
            "file": r.file,
            "checked_at": r.started_at,
            "verdicts": r.verdicts,
        }
        for r in checks.latest(found.checks)
    ]
    skipped = [asdict(s) for s in found.skipped]
    return {"students": students, "claims": claims, "checks": properties, "skipped": skipped}
