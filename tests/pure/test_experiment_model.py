"""The experiment machinery without a lab: claims, scoring, predictions files, schema, display."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import jsonschema
import pytest
import yaml

from lab.errors import ExperimentError, NothingJudged, PredictionsError
from lab.experiments import EXPERIMENTS, predictions
from lab.experiments.model import (
    Check,
    Claim,
    Context,
    Experiment,
    Observations,
    Result,
    Verdict,
    Verdicts,
    judge_checks,
    score,
)
from lab.services.probes.sockscript import Event
from lab.topology import from_config
from lab.traffic.script import Events, Script
from lab.views.render import collapse

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "lab/experiments/result.schema.json").read_text())
TOPOLOGY = from_config(json.loads((ROOT / "tests/pure/fixtures/compose/default.json").read_text()))
CLAIMS = {name: [c.id for c in e.claims_for(TOPOLOGY)] for name, e in EXPERIMENTS.items()}


def event(op: str, outcome: str = "ok", nbytes: int | None = None, sock: str = "s") -> Event:
    return Event(0.0, "client", sock, "tcp", op, "10.0.0.1:1", "10.0.0.2:2", outcome, nbytes)


def test_every_experiment_has_a_question_and_unique_claim_ids() -> None:
    assert list(EXPERIMENTS) == [
        "dispatch",
        "cross-host",
        "tcp-vs-udp",
        "http-bytes",
        "journey",
        "failures",
        "db-kill",
        "impaired-delivery",
        "sockets",
    ]
    for name, experiment in EXPERIMENTS.items():
        claims = experiment.claims_for(TOPOLOGY)
        ids = [c.id for c in claims]
        assert experiment.name == name
        assert experiment.question.endswith("?")
        assert ids, name
        assert len(ids) == len(set(ids)), name
        assert all(c.text for c in claims)
        assert experiment.needs.missing(TOPOLOGY) == [], name


def test_score_counts_only_predicted_claims() -> None:
    checks = [Check("a", "A", True, ""), Check("b", "B", False, ""), Check("c", "C", True, "")]
    s = score({"a": True, "b": True}, checks)
    assert (s.right, s.total, s.by_claim) == (1, 2, {"a": True, "b": False})
    assert s.text == "1 of 2 predictions right"


def test_a_claim_the_run_could_not_judge_scores_no_prediction() -> None:
    """Predicting "fails" is not right about a claim nothing was seen to fail."""
    checks = [Check("a", "A", False, "no receive in the window", judged=False)]
    s = score({"a": False}, checks)
    assert (s.right, s.total) == (0, 0)
    shown = repr(Result("x", "q?", "2026-01-01T00:00:00+00:00", 0.1, {}, checks, [], {}))
    assert "[?] a" in shown


def test_result_passes_only_when_every_check_held() -> None:
    held = Result(
        "x", "q?", "2026-01-01T00:00:00+00:00", 0.1, {}, [Check("a", "A", True, "")], [], {}
    )
    failed = Result(
        "x",
        "q?",
        "2026-01-01T00:00:00+00:00",
        0.1,
        {},
        [Check("a", "A", True, ""), Check("b", "B", False, "")],
        [],
        {},
    )
    nothing = Result("x", "q?", "2026-01-01T00:00:00+00:00", 0.1, {}, [], [], {})
    assert held.passed
    assert not failed.passed
    assert not nothing.passed  # no check at all is never a pass


def test_a_result_validates_against_the_published_schema() -> None:
    result = Result(
        experiment="dispatch",
        question="q?",
        started_at="2026-11-27T02:58:28+00:00",
        duration_s=1.2,
        lab={
            "project": "socklab",
            "hosts": {"apphost": {"ip": "10.203.0.10", "processes": ["http", "db"]}},
        },
        checks=[Check("same-ip", "claim", True, "observed")],
        events=[event("connect"), event("recv", "eof", 0)],
        facts={"port_tables": {}},
        predictions={
            "by": "ada",
            "answers": {"same-ip": True},
            "right": 1,
            "total": 1,
            "by_claim": {"same-ip": True},
        },
    )
    jsonschema.validate(json.loads(json.dumps(result.to_json())), SCHEMA)
    broken = result.to_json() | {"passed": "yes"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCHEMA)


def test_extend_renames_every_socket_of_the_steps_it_adds() -> None:
    steps = [{"op": "resolve", "host": "x"}, {"op": "socket", "sock": "c", "type": "tcp"}]
    assert Script().extend(steps, rename="z").steps == [
        {"op": "resolve", "host": "x"},
        {"op": "socket", "sock": "z", "type": "tcp"},
    ]


def test_the_script_builder_writes_the_steps_sockscript_reads() -> None:
    script = Script()
    c = script.tcp("c", timeout=2.0)
    c.connect("tcp-shout", 8080).sendall("hi").shutdown().recv_all().close()
    u = script.udp("u")
    u.sendto("udp-shout", 8080, b"\x00\xff").recvfrom(1000)
    u.send(fill=("x", 3))
    assert script.steps == [
        {"op": "socket", "sock": "c", "type": "tcp", "timeout": 2.0},
        {"op": "connect", "sock": "c", "host": "tcp-shout", "port": 8080},
        {"op": "sendall", "sock": "c", "data": "hi"},
        {"op": "shutdown", "sock": "c", "how": "wr"},
        {"op": "recv_all", "sock": "c", "size": 65536},
        {"op": "close", "sock": "c"},
        {"op": "socket", "sock": "u", "type": "udp"},
        {"op": "sendto", "sock": "u", "host": "udp-shout", "port": 8080, "hex": "00ff"},
        {"op": "recvfrom", "sock": "u", "size": 1000},
        {"op": "send", "sock": "u", "fill": {"byte": "x", "count": 3}},
    ]


def test_events_answer_the_questions_judgements_ask() -> None:
    events = Events(
        [
            event("connect", sock="a"),
            Event(0.1, "client", "a", "tcp", "recv", "", "", "ok", 2, "HI"),
            Event(0.2, "client", "b", "tcp", "recv", "", "", "ok", 3, "YOU"),
            event("send", "EPIPE", sock="a"),
        ]
    )
    assert events.received("a") == b"HI"
    assert events.received() == b"HIYOU"
    assert events.first("a", "connect").op == "connect"
    assert len(events.every("a", "recv")) == 1
    assert events.failure() == "send: EPIPE"
    with pytest.raises(LookupError, match="no close on socket a"):
        events.first("a", "close")


class Tiny(Experiment):
    name = "tiny"
    question = "Does judging work?"
    claims = (Claim("one", "the first"), Claim("two", "the second"))

    def run(self, ctx: Context) -> None:
        raise AssertionError("not run here")

    def judge(self, seen: Observations) -> Verdicts:
        v = Verdicts()

        @v.claim("one")
        def _() -> tuple[bool, str]:
            return seen.facts["x"] == 1, f"x is {seen.facts['x']}"

        @v.claim("two")
        def _() -> tuple[bool, str]:
            got = seen.events.first("s", "recv")  # absent: the claim fails, it does not crash
            return True, got.outcome

        return v


def test_a_judgement_is_checks_in_claim_order_and_missing_evidence_fails_the_claim() -> None:
    seen = Observations(Events(), {"x": 1}, {})
    checks = judge_checks(Tiny(), Tiny.claims, seen)
    assert [(c.id, c.held) for c in checks] == [("one", True), ("two", False)]
    assert checks[1].observed == "not observed: no recv on socket s was recorded"
    assert not judge_checks(Tiny(), Tiny.claims, Observations(Events(), {"x": 2}, {}))[0].held


def test_an_experiment_that_judges_nothing_is_an_error_not_a_pass() -> None:
    with pytest.raises(NothingJudged, match="judged nothing"):
        judge_checks(Tiny(), (), Observations(Events(), {"x": 1}, {}))
    assert NothingJudged("x").exit_code == 6


def test_an_unjudged_claim_is_an_error() -> None:
    class Forgetful(Tiny):
        def judge(self, seen: Observations) -> Verdicts:
            v = Verdicts()
            v["one"] = Verdict(True, "")
            return v

    with pytest.raises(ExperimentError, match="did not judge two"):
        judge_checks(Forgetful(), Tiny.claims, Observations(Events(), {"x": 1}, {}))


def test_collapse_folds_runs_of_alike_reads() -> None:
    events = [
        event("connect"),
        *(event("recv_all", nbytes=10) for _ in range(5)),
        event("recv_all", "eof", 0),
        event("close"),
    ]
    rows = [(e.op, e.outcome, count, total) for e, count, total in collapse(events)]
    assert rows == [
        ("connect", "ok", 1, 0),
        ("recv_all", "ok", 5, 50),
        ("recv_all", "eof", 1, 0),
        ("close", "ok", 1, 0),
    ]


@pytest.mark.parametrize("path", sorted((ROOT / "examples/predictions").glob("*.yaml")))
def test_shipped_prediction_files_are_valid_and_complete(path: Path) -> None:
    guess = predictions.load(path, CLAIMS)
    assert set(guess.answers) == set(CLAIMS[guess.experiment])


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "expected a mapping"),
        ({"experiment": "nope", "predictions": {"a": True}}, "unknown experiment 'nope'"),
        ({"experiment": "dispatch"}, "no predictions"),
        ({"experiment": "dispatch", "predictions": {"made-up": True}}, "has no claim made-up"),
        ({"experiment": "dispatch", "predictions": {"same-ip": "yes"}}, "must be true or false"),
    ],
)
def test_bad_prediction_files_say_what_is_wrong(document: object, message: str) -> None:
    with pytest.raises(PredictionsError, match=message):
        predictions.parse(document, "f.yaml", CLAIMS)


def test_asking_covers_every_claim_and_round_trips_through_yaml() -> None:
    experiment = EXPERIMENTS["http-bytes"]
    asked: list[str] = []

    def confirm(claim: str) -> bool:
        asked.append(claim)
        return len(asked) % 2 == 1

    guess = predictions.ask(experiment.name, experiment.claims, confirm, "ada")
    assert asked == [c.text for c in experiment.claims]
    again = predictions.parse(yaml.safe_load(guess.to_yaml()), "saved", CLAIMS)
    assert asdict(again) == asdict(guess)


def test_a_yaml_boolean_key_is_reported_not_crashed_on() -> None:
    # YAML 1.1 reads a bare `no:` as the boolean false.
    with pytest.raises(PredictionsError, match="has no claim False"):
        predictions.parse(
            yaml.safe_load("experiment: db-kill\npredictions:\n  no: true\n"), "f.yaml", CLAIMS
        )
