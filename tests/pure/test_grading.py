"""lab grade's collection, checks, aggregation and files, on results made here."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from lab.experiments.model import Check, Result, score
from lab.grading import aggregate, collect, report

pytestmark = pytest.mark.pure

CLAIMS = {"same-ip": "one IP", "tcp-refused": "refused", "udp-silent": "silence"}


def a_result(
    by: str | None,
    answers: dict[str, bool],
    held: dict[str, bool] | None = None,
    experiment: str = "own-dispatch",  # a file of ones own: not judged again here
    started_at: str = "2026-01-01T10:00:00+00:00",
) -> dict[str, Any]:
    held = held or dict.fromkeys(CLAIMS, True)
    checks = [Check(c, CLAIMS[c], held[c], "seen") for c in CLAIMS]
    result = Result(experiment, "?", started_at, 1.0, {"project": "p", "hosts": {}}, checks, [], {})
    if by is not None:
        s = score(answers, checks)
        result.predictions = {
            "by": by,
            "answers": answers,
            "right": s.right,
            "total": s.total,
            "by_claim": s.by_claim,
        }
    data: dict[str, Any] = json.loads(json.dumps(result.to_json()))
    return data


def write(folder: Path, name: str, data: object) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


ALL_TRUE = dict.fromkeys(CLAIMS, True)


def test_a_valid_result_is_kept_and_every_bad_file_is_named_with_its_reason(
    tmp_path: Path,
) -> None:
    write(tmp_path, "ada/dispatch-1.json", a_result("Ada", ALL_TRUE))
    write(tmp_path, "bob/nested/dispatch-1.json", a_result("Bob", ALL_TRUE))
    write(tmp_path, "none.json", a_result(None, {}))
    write(tmp_path, "cut.json", json.dumps(a_result("Cy", ALL_TRUE))[:200])
    write(tmp_path, "bench.json", [{"name": "redis"}])
    write(tmp_path, "other.json", {"schema": "something/else"})
    missing = a_result("Di", ALL_TRUE)
    del missing["checks"]
    write(tmp_path, "missing.json", missing)
    inflated = a_result("Ed", {"same-ip": False, "tcp-refused": True})
    inflated["predictions"]["right"] = 2
    write(tmp_path, "inflated.json", inflated)
    flipped = a_result("Flo", {"same-ip": False})
    flipped["predictions"]["by_claim"]["same-ip"] = True
    flipped["predictions"]["right"] = 1
    write(tmp_path, "flipped.json", flipped)
    invented = a_result("Gus", ALL_TRUE)
    invented["predictions"]["answers"]["no-such"] = True
    write(tmp_path, "invented.json", invented)
    failing = a_result("Hal", ALL_TRUE)
    failing["passed"] = False
    write(tmp_path, "passed.json", failing)
    (tmp_path / "latin1.json").write_bytes(b'{"by": "\xe9"}')
    write(tmp_path, "notes.txt", "not a result")

    got = collect.collect([tmp_path])
    assert sorted(s.student for s in got.submissions) == ["Ada", "Bob"]
    assert got.unpredicted == [str(tmp_path / "none.json")]
    reasons = {Path(s.path).name: s.reason for s in got.skipped}
    assert reasons.keys() == {
        "cut.json",
        "bench.json",
        "other.json",
        "missing.json",
        "inflated.json",
        "flipped.json",
        "invented.json",
        "passed.json",
        "latin1.json",
    }
    assert reasons["cut.json"].startswith("not JSON")
    assert reasons["bench.json"] == "not an experiment result (not a JSON object)"
    assert "schema is 'something/else'" in reasons["other.json"]
    assert reasons["missing.json"] == (
        "invalid against the result schema at the top level: 'checks' is a required property"
    )
    assert reasons["inflated.json"] == (
        "edited: predictions say 2 of 2 right, its answers and checks give 1 of 2"
    )
    assert "by_claim does not follow" in reasons["flipped.json"]
    assert "claims it did not check (no-such)" in reasons["invented.json"]
    assert "`passed`" in reasons["passed.json"]
    assert reasons["latin1.json"] == "not UTF-8 text"


def test_a_folder_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    from lab.errors import UsageError

    with pytest.raises(UsageError, match="no such file or folder"):
        collect.collect([tmp_path / "nowhere"])


def submissions(tmp_path: Path) -> list[collect.Submission]:
    held = {"same-ip": True, "tcp-refused": True, "udp-silent": False}
    # Ada: all right on her first run; her second run (after seeing it) is only a run.
    write(tmp_path, "a1.json", a_result("Ada", {"same-ip": True, "udp-silent": False}, held))
    write(
        tmp_path,
        "a2.json",
        a_result("Ada", {"same-ip": False}, held, started_at="2026-01-01T11:00:00+00:00"),
    )
    # Bob and Cy both expect silence to hold; Bob also doubts the refusal.
    write(tmp_path, "b.json", a_result("Bob", {"udp-silent": True, "tcp-refused": False}, held))
    write(tmp_path, "c.json", a_result("Cy", {"udp-silent": True, "same-ip": True}, held))
    return collect.collect([tmp_path]).submissions


def test_students_are_graded_on_their_first_run_and_every_run_counts(tmp_path: Path) -> None:
    rows = {r.student: r for r in aggregate.students(submissions(tmp_path))}
    assert list(rows) == ["Ada", "Bob", "Cy"]
    ada = rows["Ada"]
    assert (ada.runs, ada.experiments, ada.right, ada.total, ada.wrong) == (2, 1, 2, 2, ())
    assert ada.not_held == ("own-dispatch/udp-silent",)
    assert rows["Bob"].wrong == ("own-dispatch/tcp-refused", "own-dispatch/udp-silent")
    assert (rows["Bob"].right, rows["Bob"].share) == (0, 0.0)
    assert (rows["Cy"].right, rows["Cy"].total) == (1, 2)


def test_claims_put_the_misconceptions_first(tmp_path: Path) -> None:
    rows = aggregate.claims(submissions(tmp_path))
    assert [(r.claim, r.students, r.right, r.expected_hold, r.held) for r in rows] == [
        ("tcp-refused", 1, 0, 0, 1),  # 0 %
        ("udp-silent", 3, 1, 2, 0),  # 33 %, asked of three
        ("same-ip", 2, 2, 2, 2),  # 100 %
    ]
    assert rows[1].text == "silence"


def test_no_submissions_gives_empty_rows() -> None:
    assert aggregate.students([]) == []
    assert aggregate.claims([]) == []


def test_csv_cells_that_a_spreadsheet_would_run_are_quoted(tmp_path: Path) -> None:
    write(tmp_path, "x.json", a_result('=HYPERLINK("http://x")', ALL_TRUE))
    got = collect.collect([tmp_path])
    text = report.students_csv(aggregate.students(got.submissions))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(report.STUDENT_COLUMNS)
    assert rows[1][0] == '\'=HYPERLINK("http://x")'
    assert rows[1][1:6] == ["1", "1", "3", "3", "1.00"]
    claims = list(csv.reader(io.StringIO(report.claims_csv(aggregate.claims(got.submissions)))))
    assert claims[0] == list(report.CLAIM_COLUMNS)
    assert [r[1] for r in claims[1:]] == ["same-ip", "tcp-refused", "udp-silent"]


def test_the_page_escapes_names_holds_its_chart_and_fetches_nothing(tmp_path: Path) -> None:
    write(tmp_path, "x.json", a_result("<script>alert(1)</script>", {"same-ip": False}))
    write(tmp_path, "y.json", "{")
    got = collect.collect([tmp_path])
    page = report.html_page(
        "Class <1>", got, aggregate.students(got.submissions), aggregate.claims(got.submissions)
    )
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<title>Class &lt;1&gt;</title>" in page
    assert 'id="per-claim"' in page
    assert 'id="per-student"' in page
    assert page.count("<rect ") == 1  # one claim predicted, one bar
    assert 'fill="#c0392b"' in page  # nobody right: red
    assert "y.json" in page
    assert "not JSON" in page
    for fetching in ("src=", "href=", "url(", "@import"):
        assert fetching not in page


def test_a_built_in_result_is_judged_again_from_its_observations() -> None:
    real = json.loads(
        (Path(__file__).parent / "fixtures/results/dispatch.json").read_text()
    )  # a recorded run of the built-in dispatch
    assert collect.inconsistent(real) is None
    # A student flips a claim and makes every number agree with the flip: still caught,
    # because dispatch's own judgement of the recorded observations says otherwise.
    flipped = json.loads(json.dumps(real))
    flipped["checks"][0]["held"] = False
    flipped["passed"] = False
    assert collect.inconsistent(flipped) == (
        "edited: its observations do not give its checks (same-ip)"
    )
