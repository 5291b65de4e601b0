"""lab grade on results this version cannot judge: skipped with the reason, never stopping
the report; and ``collect.read``, the same judgement of a document kept outside a file."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lab.errors import ExperimentError
from lab.experiments import EXPERIMENTS
from lab.experiments.model import SCHEMA_ID, Observations, passed
from lab.grading import aggregate, collect, report

pytestmark = pytest.mark.pure

RESULTS = Path(__file__).parent / "fixtures" / "results"
UNKNOWN = "claims this version of the lab does not know: {} (written by another version, or edited)"


def recorded(name: str = "dispatch") -> dict[str, Any]:
    data: dict[str, Any] = json.loads((RESULTS / f"{name}.json").read_text())
    return data


def predicted(data: dict[str, Any], by: str) -> dict[str, Any]:
    """The result with predictions whose every number follows from its checks: right on
    every claim but the first."""
    held = {c["id"]: c["held"] for c in data["checks"]}
    answers = {claim: h if i else not h for i, (claim, h) in enumerate(held.items())}
    by_claim = {claim: answers[claim] == held[claim] for claim in answers}
    data["predictions"] = {
        "by": by,
        "answers": answers,
        "right": sum(by_claim.values()),
        "total": len(by_claim),
        "by_claim": by_claim,
    }
    data["passed"] = passed(data["checks"])
    return data


def renamed(data: dict[str, Any], ids: dict[int, str]) -> dict[str, Any]:
    """The result with some checks' ids changed (as an older version, or a hand, wrote them)."""
    for index, new in ids.items():
        data["checks"][index]["id"] = new
    return data


def write(folder: Path, name: str, data: object) -> Path:
    path = folder / name
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("ids", "named"),
    [
        ({0: "made-up"}, "made-up"),
        ({3: "zz-old", 1: "made-up"}, "made-up, zz-old"),  # each named, sorted
    ],
)
def test_a_result_with_claims_this_version_does_not_judge_is_skipped_not_fatal(
    tmp_path: Path, ids: dict[int, str], named: str
) -> None:
    write(tmp_path, "ada.json", predicted(recorded(), "Ada"))
    bad = write(tmp_path, "bob.json", predicted(renamed(recorded(), ids), "Bob"))

    got = collect.collect([tmp_path])

    assert [s.student for s in got.submissions] == ["Ada"]
    assert got.skipped == [collect.Skipped(str(bad), UNKNOWN.format(named))]
    students = aggregate.students(got.submissions)
    paths = report.write(tmp_path / "out", "t", got, students, aggregate.claims(got.submissions))
    assert [p.name for p in paths] == ["students.csv", "claims.csv", "report.html"]
    assert "made-up" in paths[2].read_text()  # the skip and its reason are on the page


def test_a_result_of_an_older_version_with_fewer_claims_is_still_judged() -> None:
    # Judged claims the result does not record are no reason to skip it.
    data = recorded()
    del data["checks"][-1]
    data = predicted(data, "Ada")
    assert collect.read("db:run/3", data)[1] is None


@pytest.mark.parametrize("name", sorted(p.stem for p in RESULTS.glob("*.json")))
def test_read_gives_what_load_gives_but_for_the_path(tmp_path: Path, name: str) -> None:
    data = predicted(recorded(name), "Ada")
    loaded, reason = collect.load(write(tmp_path, f"{name}.json", data))
    assert reason is None
    assert isinstance(loaded, collect.Submission)
    assert collect.read("db:run/1", data) == (
        dataclasses.replace(loaded, path="db:run/1"),
        None,
    )


def nested(depth: int) -> dict[str, Any]:
    data = recorded()
    deep: list[Any] = []
    for _ in range(depth):
        deep = [deep]
    data["question"] = deep  # deeper than any parser of text would have let through
    return data


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (recorded(), (None, None)),  # valid, but no predictions: nobody to grade
        ([1], (None, "not an experiment result (not a JSON object)")),
        ("text", (None, "not an experiment result (not a JSON object)")),
        (
            {"schema": "other/1"},
            (None, f"not an experiment result (schema is 'other/1', not {SCHEMA_ID!r})"),
        ),
        (nested(5000), (None, "not JSON this report can read (nested too deeply)")),
    ],
)
def test_read_skips_a_document_with_the_reason_load_gives(
    data: Any, expected: tuple[None, str | None]
) -> None:
    assert collect.read("db:run/2", data) == expected


def raising(exc: Exception) -> Callable[[Observations], Any]:
    def judge(seen: Observations) -> Any:
        raise exc

    return judge


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (RuntimeError("boom"), "this version cannot judge it: RuntimeError: boom"),
        (
            ExperimentError("broken", "run it again"),
            "this version cannot judge it: ExperimentError: broken; run it again",
        ),
    ],
)
def test_a_judgement_that_fails_on_a_file_skips_that_file_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exc: Exception, reason: str
) -> None:
    monkeypatch.setattr(EXPERIMENTS["dispatch"], "judge", raising(exc))
    write(tmp_path, "ada.json", predicted(recorded("sockets"), "Ada"))
    bad = write(tmp_path, "bob.json", predicted(recorded(), "Bob"))

    got = collect.collect([tmp_path])

    assert [s.student for s in got.submissions] == ["Ada"]
    assert got.skipped == [collect.Skipped(str(bad), reason)]


def test_a_check_result_whose_judgement_fails_is_skipped_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lab.check.runner

    def rejudge(data: dict[str, Any]) -> Any:
        raise ExperimentError("no such property")

    monkeypatch.setattr(lab.check.runner, "rejudge", rejudge)
    data = json.loads((Path(__file__).parent / "fixtures" / "check-tcp-reset.json").read_text())
    assert collect.read("db:run/4", data) == (
        None,
        "this version cannot judge it: ExperimentError: no such property",
    )
