"""The experiment machinery without a lab: claims, scoring, predictions files, schema, display."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import jsonschema
import pytest
import yaml

from lab.experiments import EXPERIMENTS, predictions
from lab.experiments.model import Check, Result, rename, score
from lab.views.render import collapse
from services.probes.sockscript import Event

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "lab/experiments/result.schema.json").read_text())


def event(op: str, outcome: str = "ok", nbytes: int | None = None, sock: str = "s") -> Event:
    return Event(0.0, "client", sock, "tcp", op, "10.0.0.1:1", "10.0.0.2:2", outcome, nbytes)


def test_every_experiment_has_a_question_and_unique_claim_ids() -> None:
    assert list(EXPERIMENTS) == [
        "dispatch",
        "cross-host",
        "tcp-vs-udp",
        "http-bytes",
        "failures",
        "db-kill",
        "impaired-delivery",
    ]
    for name, experiment in EXPERIMENTS.items():
        ids = [c.id for c in experiment.claims]
        assert experiment.name == name
        assert experiment.question.endswith("?")
        assert len(ids) == len(set(ids)), name
        assert all(c.text for c in experiment.claims)


def test_score_counts_only_predicted_claims() -> None:
    checks = [Check("a", "A", True, ""), Check("b", "B", False, ""), Check("c", "C", True, "")]
    s = score({"a": True, "b": True}, checks)
    assert (s.right, s.total, s.by_claim) == (1, 2, {"a": True, "b": False})
    assert s.text == "1 of 2 predictions right"


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
    assert held.passed
    assert not failed.passed


def test_a_result_validates_against_the_published_schema() -> None:
    result = Result(
        experiment="dispatch",
        question="q?",
        started_at="2026-11-27T02:58:28+00:00",
        duration_s=1.2,
        lab={
            "project": "netlab",
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


def test_rename_gives_every_step_the_new_socket_name() -> None:
    steps = [{"op": "resolve", "host": "x"}, {"op": "socket", "sock": "c", "type": "tcp"}]
    assert rename(steps, "z") == [
        {"op": "resolve", "host": "x"},
        {"op": "socket", "sock": "z", "type": "tcp"},
    ]


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
    guess = predictions.load(path, EXPERIMENTS)
    assert set(guess.answers) == {c.id for c in EXPERIMENTS[guess.experiment].claims}


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
    with pytest.raises(predictions.PredictionsError, match=message):
        predictions.parse(document, "f.yaml", EXPERIMENTS)


def test_asking_covers_every_claim_and_round_trips_through_yaml() -> None:
    experiment = EXPERIMENTS["http-bytes"]
    asked: list[str] = []

    def confirm(claim: str) -> bool:
        asked.append(claim)
        return len(asked) % 2 == 1

    guess = predictions.ask(experiment, confirm, "ada")
    assert asked == [c.text for c in experiment.claims]
    again = predictions.parse(yaml.safe_load(guess.to_yaml()), "saved", EXPERIMENTS)
    assert asdict(again) == asdict(guess)


def test_a_yaml_boolean_key_is_reported_not_crashed_on() -> None:
    # YAML 1.1 reads a bare `no:` as the boolean false.
    with pytest.raises(predictions.PredictionsError, match="has no claim False"):
        predictions.parse(
            yaml.safe_load("experiment: db-kill\npredictions:\n  no: true\n"), "f.yaml", EXPERIMENTS
        )
