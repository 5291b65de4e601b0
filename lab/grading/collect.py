"""Collecting a class's results: every result file under some folders, checked, or skipped.

A result is kept only if it is valid against the published schema
(lab/experiments/result.schema.json) *and* agrees with itself: its prediction score
is what its answers and its checks give, and ``passed`` is what its checks give. A
file that fails either (truncated, not JSON, another kind of JSON, a score edited by
hand) is skipped with the reason. So is one this version cannot judge (claims it does
not know, written by another version or edited; or a judgement that fails on it): no
file's content ever stops the report. ``read`` judges a document already parsed (a
result kept elsewhere than in a file), ``load`` a file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from lab.errors import LabError, UsageError
from lab.experiments.model import SCHEMA_ID, passed
from lab.grading import checks

MAX_BYTES = 50 * 1024 * 1024  # a result with a capture summary is a few MB at most


@dataclass(frozen=True)
class Submission:
    """One valid result with predictions: who predicted what, and what held on their lab."""

    path: str
    student: str
    experiment: str
    started_at: str
    project: str  # the lab it ran on
    claims: dict[str, str]  # claim id -> its text, in the experiment's order
    held: dict[str, bool]  # claim id -> whether it held on this lab
    answers: dict[str, bool]  # claim id -> predicted to hold


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclass(frozen=True)
class Collected:
    submissions: list[Submission]
    skipped: list[Skipped]
    unpredicted: list[str]  # valid results that carry no predictions: nobody to grade
    checks: list[checks.CheckRun] = field(default_factory=list)  # `socklab check` results


@cache
def validator() -> Draft202012Validator:
    text = resources.files("lab.experiments").joinpath("result.schema.json").read_text()
    return Draft202012Validator(json.loads(text))


def result_files(folders: Iterable[Path]) -> Iterator[Path]:
    """Every *.json under the folders (or the files themselves), each once, in order."""
    seen: set[Path] = set()
    for folder in folders:
        if not folder.exists():
            raise UsageError(f"{folder}: no such file or folder")
        found = [folder] if folder.is_file() else sorted(folder.rglob("*.json"))
        for path in found:
            key = path.resolve()
            if key not in seen and path.is_file():
                seen.add(key)
                yield path


def problem(data: Any) -> str | None:
    """Why a parsed document is not a result this report can trust; None when it is."""
    if not isinstance(data, dict):
        return "not an experiment result (not a JSON object)"
    if data.get("schema") != SCHEMA_ID:
        return f"not an experiment result (schema is {data.get('schema')!r}, not {SCHEMA_ID!r})"
    error = best_match(validator().iter_errors(data))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "the top level"
        return f"invalid against the result schema at {where}: {error.message}"
    return inconsistent(data)


def inconsistent(data: Mapping[str, Any]) -> str | None:
    """A schema-valid result whose numbers do not follow from its own checks, or, for a
    built-in experiment, whose checks do not follow from its observations: edited."""
    held = {c["id"]: c["held"] for c in data["checks"]}
    if data["passed"] != passed(data["checks"]):
        return "edited: `passed` does not follow from its checks"
    if checks.is_check(data):
        return rejudged_check(data)
    rejudged, reason = rejudge(data)
    if reason is not None:
        return reason
    if rejudged is not None and rejudged != held:
        changed = sorted(k for k in held if rejudged.get(k) != held[k])
        return f"edited: its observations do not give its checks ({', '.join(changed)})"
    predictions = data.get("predictions")
    if predictions is None:
        return None
    answers = predictions["answers"]
    unknown = sorted(set(answers) - set(held))
    if unknown:
        return f"edited: predictions for claims it did not check ({', '.join(unknown)})"
    judged = {c["id"] for c in data["checks"] if c.get("judged", True)}
    by_claim = {claim: answers[claim] == held[claim] for claim in answers if claim in judged}
    if predictions["by_claim"] != by_claim:
        return "edited: predictions.by_claim does not follow from its answers and checks"
    right = sum(by_claim.values())
    if (predictions["right"], predictions["total"]) != (right, len(by_claim)):
        return (
            f"edited: predictions say {predictions['right']} of {predictions['total']} right, "
            f"its answers and checks give {right} of {len(by_claim)}"
        )
    return None


def rejudged_check(data: Mapping[str, Any]) -> str | None:
    """A check result judged again: each property's held and judged as its observations
    give them (a failure turned "not judged" by hand is an edit too)."""
    from lab.check.runner import rejudge as rejudge_check

    recorded = {c["id"]: (c["held"], c.get("judged", True)) for c in data["checks"]}
    try:
        again = {c.id: (c.held, c.judged) for c in rejudge_check(dict(data))}
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        return "not a check result this report can read (its observations are incomplete)"
    except LabError as exc:
        return cannot_judge(exc)
    changed = sorted(k for k in recorded if again.get(k) != recorded[k])
    if changed:
        return f"edited: its observations do not give its checks ({', '.join(changed)})"
    return None


def rejudge(data: Mapping[str, Any]) -> tuple[dict[str, bool] | None, str | None]:
    """A built-in experiment's checks judged again from the observations the file records
    (the same pure judgements the run used), or the reason they cannot be; no checks for
    an experiment of one's own (its code is not here to judge with)."""
    from lab.experiments import EXPERIMENTS
    from lab.experiments.model import Observations, judge_result

    experiment = EXPERIMENTS.get(str(data.get("experiment")))
    if experiment is None:
        return None, None
    try:
        return {c.id: c.held for c in judge_result(experiment, data)}, None
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        return {c["id"]: False for c in data["checks"]}, None  # unreadable: nothing holds
    except LabError as exc:
        failure = exc
    # Judged again only now that it failed, to name the claims it does not judge (an
    # experiment's declared claims are not always the ids its judgement gives).
    try:
        ids = set(experiment.judge(Observations.from_result(data)))
    except Exception:  # the first failure is the one to report
        ids = None
    unknown = sorted({c["id"] for c in data["checks"]} - ids) if ids is not None else []
    if unknown:
        return None, (
            f"claims this version of the lab does not know: {', '.join(unknown)} "
            "(written by another version, or edited)"
        )
    return None, cannot_judge(failure)


def cannot_judge(exc: Exception) -> str:
    detail = exc.line() if isinstance(exc, LabError) else str(exc)
    return f"this version cannot judge it: {type(exc).__name__}: {detail}"


def load(path: Path) -> tuple[Submission | checks.CheckRun | None, str | None]:
    """A file as a submission (None if it has no predictions) or a check's run, or the
    reason to skip it."""
    try:
        if path.stat().st_size > MAX_BYTES:
            return None, f"larger than {MAX_BYTES // 2**20} MiB"
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        return None, f"cannot be read: {exc.strerror}"
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    except json.JSONDecodeError as exc:
        return None, f"not JSON ({exc.msg}, line {exc.lineno})"
    except RecursionError:
        return None, "not JSON this report can read (nested too deeply)"
    return read(str(path), data)


def read(source: str, data: Any) -> tuple[Submission | checks.CheckRun | None, str | None]:
    """A parsed document as a submission (None if it has no predictions) or a check's
    run, or the reason to skip it; ``source`` is recorded as its path (a file, or where
    else it was kept). Never raises on account of the document's content."""
    try:
        return judge_document(source, data)
    except RecursionError:  # a document built deeper than text parsing allows
        return None, "not JSON this report can read (nested too deeply)"
    except Exception as exc:  # a judgement that fails on one document must not stop a report
        return None, cannot_judge(exc)


def judge_document(
    source: str, data: Any
) -> tuple[Submission | checks.CheckRun | None, str | None]:
    reason = problem(data)
    if reason is not None:
        return None, reason
    predictions = data["predictions"]
    if checks.is_check(data):
        return checks.of(source, data), None
    if predictions is None:
        return None, None
    return (
        Submission(
            path=source,
            student=predictions["by"].strip() or "(anonymous)",
            experiment=data["experiment"],
            started_at=data["started_at"],
            project=str(data["lab"]["project"]),
            claims={c["id"]: c["claim"] for c in data["checks"]},
            held={c["id"]: c["held"] for c in data["checks"]},
            answers=dict(predictions["answers"]),
        ),
        None,
    )


def collect(folders: Iterable[Path]) -> Collected:
    submissions: list[Submission] = []
    skipped: list[Skipped] = []
    unpredicted: list[str] = []
    runs: list[checks.CheckRun] = []
    for path in result_files(folders):
        submission, reason = load(path)
        if reason is not None:
            skipped.append(Skipped(str(path), reason))
        elif submission is None:
            unpredicted.append(str(path))
        elif isinstance(submission, checks.CheckRun):
            runs.append(submission)
        else:
            submissions.append(submission)
    return Collected(submissions, skipped, unpredicted, runs)
