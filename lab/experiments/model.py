"""What an experiment is, what it produces, and how predictions are scored.

An experiment asks one question, states its claims (the textbook behaviour)
before it runs, sends real traffic through socket scripts, and then checks each
claim against what was observed. Claims and observations are kept apart: a
claim is text written in advance; a check is a claim plus ``held`` and the
observation that decided it, computed only from recorded events and readings.
"""

from __future__ import annotations

import datetime
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any

from lab.engine.stack import Lab
from lab.errors import LabError
from services.probes.sockscript import Event, Runner, Step

SCHEMA_ID = "netlab.experiment-result/1"


@dataclass(frozen=True)
class Claim:
    id: str
    text: str


@dataclass(frozen=True)
class Check:
    id: str
    claim: str
    held: bool
    observed: str


class ExperimentError(LabError):
    """An experiment could not be carried out (not: a claim did not hold)."""


class Context:
    """What an experiment may use: the lab, and recorders on its hosts and on the Docker host."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.events: list[Event] = []
        self.facts: dict[str, Any] = {}
        self.t0 = self.clock()  # every script's event times count from here

    def on(self, host: str, steps: list[Step]) -> list[Event]:
        """Run a socket script inside a lab host; its events are also kept for the result."""
        events = self.lab.run_script(host, steps, self.t0)
        self.events.extend(events)
        return events

    def on_docker_host(self, steps: list[Step]) -> list[Event]:
        runner = Runner(hostname="docker-host")
        runner.started = self.t0
        events = runner.run(steps)
        self.events.extend(events)
        return events

    def ip(self, host: str) -> str:
        return self.lab.topology.host_of(host).ip

    @staticmethod
    def clock() -> float:
        """CLOCK_MONOTONIC: the same clock the hosts' socket sessions time their events by."""
        return time.monotonic()

    @staticmethod
    def wait(seconds: float) -> None:
        """A deliberate pause that is part of the experiment (a fault schedule's timing)."""
        if seconds > 0:
            time.sleep(seconds)


class Experiment(ABC):
    name: str
    question: str
    claims: tuple[Claim, ...]

    @abstractmethod
    def run(self, ctx: Context) -> dict[str, tuple[bool, str]]:
        """Send the traffic; return, for every claim id, (held, what was observed)."""

    def claim(self, claim_id: str) -> Claim:
        for c in self.claims:
            if c.id == claim_id:
                return c
        raise KeyError(claim_id)


@dataclass
class Score:
    right: int
    total: int
    by_claim: dict[str, bool]  # claim id -> was the prediction right

    @property
    def text(self) -> str:
        return f"{self.right} of {self.total} predictions right"


def score(predictions: dict[str, bool], checks: list[Check]) -> Score:
    """Compare predictions (claim id -> expected to hold) with what held.

    A claim without a prediction is not counted.
    """
    by_claim = {c.id: predictions[c.id] == c.held for c in checks if c.id in predictions}
    return Score(sum(by_claim.values()), len(by_claim), by_claim)


@dataclass
class Result:
    experiment: str
    question: str
    started_at: str
    duration_s: float
    lab: dict[str, Any]
    checks: list[Check]
    events: list[Event]
    facts: dict[str, Any]
    t0_monotonic: float = 0.0  # CLOCK_MONOTONIC when it started: events' t counts from here
    predictions: dict[str, Any] | None = None
    capture: dict[str, Any] | None = None  # the pcap taken with --capture, and its clock
    schema: str = SCHEMA_ID
    passed: bool = field(init=False)

    def __post_init__(self) -> None:
        self.passed = all(c.held for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def run_experiment(
    experiment: Experiment,
    lab: Lab,
    predictions: dict[str, bool] | None = None,
    predicted_by: str = "",
) -> Result:
    ctx = Context(lab)
    started_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    findings = experiment.run(ctx)
    duration = time.monotonic() - ctx.t0
    missing = [c.id for c in experiment.claims if c.id not in findings]
    if missing:
        raise ExperimentError(f"experiment {experiment.name} did not check {', '.join(missing)}")
    checks = [
        Check(c.id, c.text, bool(findings[c.id][0]), findings[c.id][1]) for c in experiment.claims
    ]
    states = lab.states()
    result = Result(
        experiment=experiment.name,
        question=experiment.question,
        started_at=started_at,
        duration_s=round(duration, 3),
        lab={
            "project": lab.topology.project,
            "hosts": {
                h.name: {
                    "ip": states[h.name].ip if h.name in states else h.ip,
                    "processes": list(h.processes),
                }
                for h in lab.topology.hosts.values()
            },
        },
        checks=checks,
        events=ctx.events,
        facts=ctx.facts,
        t0_monotonic=ctx.t0,
    )
    if predictions is not None:
        s = score(predictions, checks)
        result.predictions = {
            "by": predicted_by,
            "answers": predictions,
            "right": s.right,
            "total": s.total,
            "by_claim": s.by_claim,
        }
    return result


# --- helpers for writing experiments -------------------------------------------------


def first(events: list[Event], sock: str, op: str) -> Event:
    """The first event of ``op`` on socket ``sock``; ExperimentError if the script had none."""
    for e in events:
        if e.sock == sock and e.op == op:
            return e
    raise ExperimentError(f"no {op} on socket {sock} was recorded")


def every(events: list[Event], sock: str, op: str) -> list[Event]:
    return [e for e in events if e.sock == sock and e.op == op]


def rename(steps: list[Step], sock: str) -> list[Step]:
    """The same script with its socket (and any reference to one) given another name."""
    return [{**s, "sock": sock} if "sock" in s else dict(s) for s in steps]


def ip_of(address: str) -> str:
    return address.rsplit(":", 1)[0]
