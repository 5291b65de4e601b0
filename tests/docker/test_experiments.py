"""Every experiment on the real stack: each claim holds (three runs in a row, the slow ones
once here and once more in `run --all`), and results validate.

The claims are checked by the experiments against observed events; this test
asserts the observations agree with the textbook, run after run.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

import lab as socklab
from lab.experiments import EXPERIMENTS, predictions
from lab.experiments.model import run_experiment
from tests.docker.conftest import PROJECT, ROOT, run_lab_cli

SCHEMA = json.loads((ROOT / "lab/experiments/result.schema.json").read_text())
# Three runs in a row catch a claim that holds only by luck; the slow experiments (a
# minute or more each) run once here and once more in `lab run --all` below, so the
# tier stays well inside CI's time.
SLOW = {"failures", "db-kill", "impaired-delivery"}


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_every_claim_holds_run_after_run(net: socklab.Lab, name: str) -> None:
    for run in range(1, (1 if name in SLOW else 3) + 1):
        result = run_experiment(EXPERIMENTS[name], net)
        failed = {c.id: c.observed for c in result.checks if not c.held}
        assert not failed, f"run {run} of {name}: claims that did not hold: {failed}"
        assert result.events, "an experiment that sent nothing observed nothing"
        jsonschema.validate(json.loads(json.dumps(result.to_json())), SCHEMA)


def test_example_predictions_are_scored_against_what_happened(net: socklab.Lab) -> None:
    claims = {name: [c.id for c in e.claims_for(net.topology)] for name, e in EXPERIMENTS.items()}
    guess = predictions.load(ROOT / "examples/predictions/tcp-vs-udp.yaml", claims)
    result = run_experiment(EXPERIMENTS["tcp-vs-udp"], net, guess.answers, guess.by)
    assert result.predictions is not None
    held = {c.id: c.held for c in result.checks}
    expected_right = sum(guess.answers[k] == held[k] for k in guess.answers)
    assert (result.predictions["right"], result.predictions["total"]) == (
        expected_right,
        len(guess.answers),
    )
    # The example guesses "each send is one message": every claim held, so that guess is wrong.
    assert result.predictions["by_claim"]["tcp-no-boundaries"] is False


def test_lab_run_all_writes_valid_results_and_exits_zero(net: socklab.Lab, tmp_path: Path) -> None:
    proc = run_lab_cli(
        "-p",
        PROJECT,
        "run",
        "--all",
        "--no-timeline",
        "--results",
        str(tmp_path),
        "--predict",
        "examples/predictions/dispatch.yaml",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    files = sorted(tmp_path.glob("*.json"))
    assert [json.loads(f.read_text())["experiment"] for f in files] == sorted(EXPERIMENTS)
    for f in files:
        data = json.loads(f.read_text())
        jsonschema.validate(data, SCHEMA)
        assert data["passed"] is True
    dispatch = json.loads(next(f for f in files if f.name.startswith("dispatch")).read_text())
    assert dispatch["predictions"]["by"] == "example student"
    assert "your predictions:" in proc.stdout
