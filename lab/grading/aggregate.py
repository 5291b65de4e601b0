"""A class's predictions, aggregated: one row per student, one row per claim. Pure.

A student's prediction of an experiment is the one they made first (the earliest
result of theirs for it): predictions are made before the result is seen, and a second
run after seeing it says less. Every run still counts as an experiment run, and a claim
that did not hold on a student's lab in any run is named on their row.

The per-claim rows put the misconceptions first: the lowest share of the class that
predicted the claim right, then the most students asked.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from lab.grading.collect import Submission


@dataclass(frozen=True)
class StudentRow:
    student: str
    runs: int  # result files with their predictions
    experiments: int  # distinct experiments among them
    right: int  # predictions right, over their first run of each experiment
    total: int
    wrong: tuple[str, ...]  # EXPERIMENT/CLAIM predicted wrong
    not_held: tuple[str, ...]  # EXPERIMENT/CLAIM that did not hold on their lab, any run

    @property
    def share(self) -> float | None:
        return self.right / self.total if self.total else None


@dataclass(frozen=True)
class ClaimRow:
    experiment: str
    claim: str
    text: str
    students: int  # how many predicted it
    right: int  # how many of them were right
    expected_hold: int  # how many predicted it would hold
    held: int  # on how many of their labs it held

    @property
    def share(self) -> float:
        return self.right / self.students if self.students else 0.0

    @property
    def key(self) -> str:
        return f"{self.experiment}/{self.claim}"


def first_runs(submissions: Iterable[Submission]) -> dict[tuple[str, str], Submission]:
    """(student, experiment) -> their earliest result (ties: the path, for a stable order)."""
    first: dict[tuple[str, str], Submission] = {}
    for s in sorted(submissions, key=lambda s: (s.started_at, s.path)):
        first.setdefault((s.student, s.experiment), s)
    return first


def students(submissions: list[Submission]) -> list[StudentRow]:
    graded = first_runs(submissions)
    runs: dict[str, list[Submission]] = defaultdict(list)
    for s in submissions:
        runs[s.student].append(s)
    rows = []
    for student, theirs in runs.items():
        firsts = [g for (who, _), g in graded.items() if who == student]
        wrong = sorted(
            f"{g.experiment}/{claim}"
            for g in firsts
            for claim, answer in g.answers.items()
            if answer != g.held[claim]
        )
        total = sum(len(g.answers) for g in firsts)
        not_held = sorted(
            {f"{s.experiment}/{claim}" for s in theirs for claim, ok in s.held.items() if not ok}
        )
        rows.append(
            StudentRow(
                student=student,
                runs=len(theirs),
                experiments=len({s.experiment for s in theirs}),
                right=total - len(wrong),
                total=total,
                wrong=tuple(wrong),
                not_held=tuple(not_held),
            )
        )
    return sorted(rows, key=lambda r: (r.student.casefold(), r.student))


def claims(submissions: list[Submission]) -> list[ClaimRow]:
    tally: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    texts: dict[tuple[str, str], str] = {}
    order: dict[tuple[str, str], int] = {}
    for g in first_runs(submissions).values():
        for i, claim in enumerate(g.claims):
            order.setdefault((g.experiment, claim), i)
        for claim, answer in g.answers.items():
            key = (g.experiment, claim)
            texts.setdefault(key, g.claims[claim])
            counts = tally[key]
            counts[0] += 1
            counts[1] += answer == g.held[claim]
            counts[2] += answer
            counts[3] += g.held[claim]
    rows = [
        ClaimRow(experiment, claim, texts[(experiment, claim)], *counts)
        for (experiment, claim), counts in tally.items()
    ]
    return sorted(
        rows, key=lambda r: (r.share, -r.students, r.experiment, order[(r.experiment, r.claim)])
    )
