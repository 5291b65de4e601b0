"""Predict, then observe: a student's expectations for each claim, before the run.

A predictions file is YAML an instructor can hand out and collect:

    experiment: dispatch
    by: Ada
    predictions:
      same-ip: true
      tcp-refused: false

Each prediction says whether the claim will hold. After the run each is scored
against what was observed.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lab.errors import PredictionsError
from lab.experiments.model import Claim


@dataclass(frozen=True)
class Predictions:
    experiment: str
    by: str
    answers: dict[str, bool]

    def to_yaml(self) -> str:
        return yaml.safe_dump(
            {"experiment": self.experiment, "by": self.by, "predictions": self.answers},
            sort_keys=False,
        )


def parse(document: Any, source: str, experiments: Mapping[str, Collection[str]]) -> Predictions:
    """A predictions document checked against ``experiments``: name -> its claim ids."""
    if not isinstance(document, dict):
        raise PredictionsError(f"{source}: expected a mapping with experiment and predictions")
    name = document.get("experiment")
    if name not in experiments:
        raise PredictionsError(
            f"{source}: unknown experiment {name!r}", f"one of: {', '.join(experiments)}"
        )
    answers = document.get("predictions")
    if not isinstance(answers, dict) or not answers:
        raise PredictionsError(f"{source}: no predictions (a mapping of claim id to true/false)")
    known = set(experiments[str(name)])
    unknown = sorted(map(str, set(answers) - known))  # str: YAML reads a bare `no` as False
    if unknown:
        raise PredictionsError(
            f"{source}: {name} has no claim {', '.join(unknown)}",
            f"its claims are: {', '.join(sorted(known))}",
        )
    not_bool = sorted(k for k, v in answers.items() if not isinstance(v, bool))
    if not_bool:
        raise PredictionsError(
            f"{source}: predictions must be true or false: {', '.join(not_bool)}"
        )
    return Predictions(str(name), str(document.get("by") or ""), dict(answers))


def load(path: Path, experiments: Mapping[str, Collection[str]]) -> Predictions:
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise PredictionsError(f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise PredictionsError(f"{path} is not valid YAML: {exc}") from None
    return parse(document, str(path), experiments)


def ask(
    experiment: str, claims: Collection[Claim], confirm: Callable[[str], bool], by: str
) -> Predictions:
    """Ask for each claim in turn; ``confirm`` shows a claim and returns the answer."""
    return Predictions(experiment, by, {c.id: confirm(c.text) for c in claims})


def save(guess: Predictions, folder: Path) -> Path:
    """Write predictions where an instructor collects them:
    FOLDER/EXPERIMENT-predictions-BY.yaml."""
    folder.mkdir(parents=True, exist_ok=True)
    who = "".join(ch for ch in guess.by if ch.isalnum() or ch in "-_") or "anonymous"
    path = folder / f"{guess.experiment}-predictions-{who}.yaml"
    path.write_text(guess.to_yaml())
    return path
