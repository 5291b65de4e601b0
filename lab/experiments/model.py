"""What an experiment is, what it records, how it is judged, and what it produces.

An experiment asks one question and states its claims (the textbook behaviour)
before it runs. It is split in two, so that every verdict can be re-checked:

  run(ctx)        sends real traffic and records what happened: socket events
                  (``ctx.on``), readings and anything else (``ctx.facts``);
  judge(seen)     a pure function of those recorded observations: for every
                  claim, whether it held and what was observed that decided it.

The result keeps the observations, so ``judge`` can be run again on a saved
result (``judge_result``), and tested on one where a claim must not hold.
"""

from __future__ import annotations

import datetime
import json
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab import journal
from lab.errors import ExperimentError, NothingJudged, UsageError
from lab.experiments import clocks
from lab.names import PROJECT
from lab.services.probes.sockscript import Event, Step
from lab.topology import Port, Topology
from lab.traffic.script import Events, Script, steps_of

if TYPE_CHECKING:
    from rich.console import RenderableType

    from lab.api import Lab, SocketSession
    from lab.packets.dissect import Frame
    from lab.syscalls.strace import Syscall

SCHEMA_ID = f"{PROJECT}.experiment-result/1"


@dataclass(frozen=True)
class Claim:
    id: str
    text: str


@dataclass(frozen=True)
class Verdict:
    """A claim judged: whether it held, and what was observed that decided it."""

    held: bool
    observed: str
    judged: bool = True  # False: the evidence to decide is missing (``observed`` says why)


@dataclass(frozen=True)
class Check:
    id: str
    claim: str
    held: bool
    observed: str
    # False: the run lacked the evidence to decide (``observed`` says what was missing).
    # Such a check never counts as held, nor as failed.
    judged: bool = True


def _mark(c: Check) -> str:
    return "x" if c.held else (" " if c.judged else "?")


def _word(c: Check, no: str = "NO") -> str:
    """A check's verdict in a word: one the run could not judge is not a "no"."""
    return "yes" if c.held else (no if c.judged else "not judged")


def passed(checks: list[Check] | list[dict[str, Any]]) -> bool:
    """A result passes when something was judged and every judged check held."""
    rows = [c if isinstance(c, dict) else asdict(c) for c in checks]
    judged = [c for c in rows if c.get("judged", True)]
    return bool(judged) and all(c["held"] for c in judged)


@dataclass(frozen=True)
class Needs:
    """What an experiment needs of the topology: processes with ports, and hosts.

    ``processes`` maps a name to the ports it must declare (``"8080/tcp"``);
    checked before anything is sent, so a topology that lacks one is told so
    in one line (exit 2), not halfway through a run.
    """

    processes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    hosts: tuple[str, ...] = ()
    client: bool = True
    one_machine: bool = False  # it captures on the bridges of one Docker host

    def missing(self, topology: Topology) -> list[str]:
        lacking = []
        if self.one_machine and len(set(topology.machines.values())) > 1:
            lacking.append("its hosts on one machine (it captures on that Docker host's bridges)")
        if self.client and not any(h.role == "client" for h in topology.hosts.values()):
            lacking.append("a client host (socklab.role: client)")
        lacking += [f"host {h}" for h in self.hosts if h not in topology.hosts]
        for name, ports in self.processes.items():
            process = topology.processes.get(name)
            for text in ports:
                want = Port.parse(text)
                has = process is not None and any(
                    (p.number, p.transport) == (want.number, want.transport) for p in process.ports
                )
                if not has:
                    lacking.append(f"process {name} on {want.number}/{want.transport}")
            if process is None and not ports:
                lacking.append(f"process {name}")
        return lacking


@dataclass
class Observations:
    """What a run recorded: the only input a judgement has."""

    events: Events
    facts: dict[str, Any]
    hosts: dict[str, dict[str, Any]]  # the lab's hosts when it ran: ip, ips, processes, role

    @classmethod
    def from_result(cls, data: Mapping[str, Any]) -> Observations:
        """The observations inside a saved result (its JSON, as a dict)."""
        return cls(
            Events(Event(**e) for e in data["events"]),
            dict(data["facts"]),
            dict(data["lab"]["hosts"]),
        )

    def ip(self, host: str) -> str:
        return str(self.hosts.get(host, {}).get("ip", ""))

    @property
    def client(self) -> str:
        """The client host's name (the workbench), as the result recorded it."""
        for name, host in self.hosts.items():
            if host.get("role") == "client":
                return name
        return "client"  # results from before roles were recorded


class Context:
    """What an experiment's ``run`` may use: the lab, and recorders of what happens."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.events = Events()
        # Sessions may be driven from threads (the failure matrix's clients side by side,
        # db-kill's power rows): what they record is added under this lock.
        self._recording = threading.Lock()
        self.facts: dict[str, Any] = {}
        self.t0 = self.clock()  # every script's event times count from here

    def on(self, host: str, script: Script | list[Step]) -> Events:
        """Run a socket script inside a lab host; its events are kept for the result."""
        events = self.lab.run(steps_of(script), on=host, t0=self.t0)
        self.record(events)
        return events

    def on_docker_host(self, script: Script | list[Step]) -> Events:
        """The same on the Docker host itself (through published ports)."""
        events = self.lab.run(steps_of(script), on="docker-host", t0=self.t0)
        self.record(events)
        return events

    def session(
        self, host: str, t0: float | None = None, *, traced: bool = False
    ) -> RecordedSession:
        """A session on a host whose sockets outlive each step; its events are kept.
        Their times count from ``t0`` (default: the experiment's start). ``traced``: under
        strace; its system calls are in ``syscalls`` after the block."""
        return RecordedSession(self, host, self.t0 if t0 is None else t0, traced)

    def record(self, events: list[Event]) -> None:
        with self._recording:
            self.events.extend(events)

    def ip(self, host: str) -> str:
        return self.lab.topology.host_of(host).ip

    def one_clock(self, what: str, hosts: list[str]) -> None:
        """Refuse, in one line, ``what`` if it compares the driver's clock with a host's
        that runs on another kernel; records each kernel's boot id in ``facts["kernels"]``."""
        try:
            here = clocks.kernel_here()
        except OSError:  # no /proc here (macOS, Windows): the driver is on a kernel of its own
            raise ExperimentError(
                clocks.refusal(what, hosts), "run it from a Linux machine running the lab"
            ) from None
        there = {
            h: self.lab.backend.run_in(h, ["cat", clocks.BOOT_ID]).decode().strip()
            for h in dict.fromkeys(hosts)
        }
        self.facts["kernels"] = {"driver": here, **there}
        apart = clocks.strangers(here, there)
        if apart:
            raise ExperimentError(
                clocks.refusal(what, apart), "run it with these hosts on the driver's machine"
            )

    @staticmethod
    def clock() -> float:
        """CLOCK_MONOTONIC: the same clock the hosts' socket scripts time their events by."""
        return time.monotonic()

    @staticmethod
    def wait(seconds: float) -> None:
        """A deliberate pause that is part of the experiment (a fault schedule's timing)."""
        if seconds > 0:
            time.sleep(seconds)


class RecordedSession:
    """``with ctx.session("client") as s: s.step(op=..., ...)``: each step's events kept."""

    def __init__(self, ctx: Context, host: str, t0: float, traced: bool = False) -> None:
        self.ctx = ctx
        self.host = host
        self.t0 = t0
        self.traced = traced
        self._cm: Any = None
        self._session: SocketSession | None = None

    def __enter__(self) -> RecordedSession:
        self._cm = self.ctx.lab.session(self.host, self.t0, traced=self.traced)
        self._session = self._cm.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._cm.__exit__(*exc)

    @property
    def syscalls(self) -> list[Syscall]:
        """A traced session's system calls (once its block has ended)."""
        return list(self._session.syscalls) if self._session is not None else []

    def step(self, **step: Any) -> Events:
        assert self._session is not None, "use the session in a with block"
        events = self._session.step(**step)
        self.ctx.record(events)
        return events


class Experiment(ABC):
    """Subclass this for an experiment of your own (see docs/scripting.md)."""

    name: str
    question: str
    claims: tuple[Claim, ...] = ()
    needs: Needs = Needs()
    timeline = True  # show the socket events as a timeline after the checks

    def claims_for(self, topology: Topology) -> tuple[Claim, ...]:
        """The claims on a given topology (most experiments' do not depend on it)."""
        return self.claims

    @abstractmethod
    def run(self, ctx: Context) -> None:
        """Send the traffic and record what happened (``ctx.on``, ``ctx.facts``)."""

    @abstractmethod
    def judge(self, seen: Observations) -> Mapping[str, Verdict | tuple[bool, str]]:
        """For every claim id, whether it held and what was observed: from ``seen`` only."""

    def tables(self, result: Result) -> list[RenderableType]:
        """Extra tables to show after the checks (rich renderables)."""
        return []

    def pictures(
        self, result: Result, folder: Path, frames: list[Frame] | None = None
    ) -> list[Path]:
        """Pictures of the result, written into ``folder``."""
        return []


@dataclass
class Score:
    right: int
    total: int
    by_claim: dict[str, bool]  # claim id -> was the prediction right

    @property
    def text(self) -> str:
        return f"{self.right} of {self.total} predictions right"


def score(predictions: Mapping[str, bool], checks: list[Check]) -> Score:
    """Compare predictions (claim id -> expected to hold) with what held.

    A claim without a prediction is not counted, nor one the run could not judge (its
    ``held`` is False, but nothing was seen to fail: "predicted it fails" is not right).
    """
    by_claim = {
        c.id: predictions[c.id] == c.held for c in checks if c.id in predictions and c.judged
    }
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
        self.passed = passed(self.checks)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Result:
        fields = {k: v for k, v in data.items() if k != "passed"}
        fields["checks"] = [Check(**c) for c in data["checks"]]
        fields["events"] = [Event(**e) for e in data["events"]]
        return cls(**fields)

    @property
    def observations(self) -> Observations:
        return Observations(Events(self.events), self.facts, self.lab["hosts"])

    @property
    def stamp(self) -> str:
        return self.started_at.replace(":", "").replace("-", "").replace("+0000", "Z")

    def save(self, folder: Path | str) -> Path:
        """Write the result as JSON (the published schema) into ``folder``; its path."""
        path = Path(folder) / f"{self.experiment}-{self.stamp}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return path

    def __repr__(self) -> str:
        held = sum(c.held for c in self.checks)
        lines = [
            f"{self.experiment}: {held} of {len(self.checks)} claims held "
            f"({'passed' if self.passed else 'FAILED'}, {self.duration_s:.1f} s)"
        ]
        lines += [f"  [{_mark(c)}] {c.id}: {c.observed}" for c in self.checks]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from html import escape

        rows = "".join(
            f"<tr><td>{escape(c.claim)}</td><td>{_word(c, '<b>no</b>')}</td>"
            f"<td>{escape(c.observed)}</td></tr>"
            for c in self.checks
        )
        return (
            f"<p><b>{escape(self.experiment)}</b>: {escape(self.question)}</p>"
            f"<table><tr><th>claim</th><th>held</th><th>observed</th></tr>{rows}</table>"
        )


def judge_checks(
    experiment: Experiment, claims: tuple[Claim, ...], seen: Observations
) -> list[Check]:
    """Run the judgement and turn it into checks, one per claim, in the claims' order."""
    verdicts = experiment.judge(seen)
    missing = [c.id for c in claims if c.id not in verdicts]
    if missing:
        raise ExperimentError(f"experiment {experiment.name} did not judge {', '.join(missing)}")
    checks = []
    for claim in claims:
        verdict = verdicts[claim.id]
        held, observed = (
            (verdict.held, verdict.observed) if isinstance(verdict, Verdict) else verdict
        )
        judged = verdict.judged if isinstance(verdict, Verdict) else True
        checks.append(Check(claim.id, claim.text, bool(held) and judged, str(observed), judged))
    if not checks:
        raise NothingJudged(
            f"experiment {experiment.name} judged nothing: no claim was checked",
            "an experiment that checks nothing cannot pass",
        )
    return checks


def judge_result(experiment: Experiment, data: Mapping[str, Any]) -> list[Check]:
    """The checks a saved result's observations lead to (its claims as it recorded them)."""
    claims = tuple(Claim(c["id"], c["claim"]) for c in data["checks"])
    return judge_checks(experiment, claims, Observations.from_result(data))


def lab_snapshot(lab: Lab) -> dict[str, Any]:
    """The lab as a result records it: which host had which addresses, processes, role."""
    states = lab.states()
    hosts = {}
    for h in lab.topology.hosts.values():
        state = states.get(h.name)
        hosts[h.name] = {
            "ip": state.ip if state is not None and state.ip else h.ip,
            "ips": {i.network: i.ip for i in h.interfaces},
            "processes": list(h.processes),
            "role": h.role,
        }
    return {"project": lab.topology.project, "hosts": hosts}


def run_experiment(
    experiment: Experiment,
    lab: Lab,
    predictions: Mapping[str, bool] | None = None,
    predicted_by: str = "",
) -> Result:
    """Check what it needs, run it, judge what was recorded; the result."""
    lacking = experiment.needs.missing(lab.topology)
    if lacking:
        raise UsageError(
            f"experiment {experiment.name} needs {', '.join(lacking)}, which this topology lacks"
        )
    claims = experiment.claims_for(lab.topology)
    ctx = Context(lab)
    started_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    journal.publish(
        lab.project,
        "experiment",
        phase="start",
        name=experiment.name,
        t0=ctx.t0,
        claims=[asdict(c) for c in claims],
    )
    experiment.run(ctx)
    duration = time.monotonic() - ctx.t0
    snapshot = lab_snapshot(lab)
    checks = judge_checks(
        experiment, claims, Observations(ctx.events, ctx.facts, snapshot["hosts"])
    )
    result = Result(
        experiment=experiment.name,
        question=experiment.question,
        started_at=started_at,
        duration_s=round(duration, 3),
        lab=snapshot,
        checks=checks,
        events=list(ctx.events),
        facts=ctx.facts,
        t0_monotonic=ctx.t0,
    )
    journal.publish(
        lab.project,
        "experiment",
        phase="end",
        name=experiment.name,
        t0=ctx.t0,
        checks=[asdict(c) for c in checks],
        passed=result.passed,
    )
    if predictions is not None:
        s = score(predictions, checks)
        result.predictions = {
            "by": predicted_by,
            "answers": dict(predictions),
            "right": s.right,
            "total": s.total,
            "by_claim": s.by_claim,
        }
    return result


def ip_of(address: str) -> str:
    return address.rsplit(":", 1)[0]


Judgement = Callable[[], tuple[bool, str]]


class Verdicts(dict[str, Verdict]):
    """Judgements collected claim by claim; a claim whose evidence is missing from the
    observations (an event never recorded, a fact absent) did not hold, and says why.

        v = Verdicts()

        @v.claim("same-ip")
        def _() -> tuple[bool, str]:
            return a == b, f"{a} and {b}"
    """

    def claim(self, claim_id: str) -> Callable[[Judgement], Judgement]:
        def decorate(judgement: Judgement) -> Judgement:
            try:
                held, observed = judgement()
            except (LookupError, ValueError) as exc:
                held, observed = False, f"not observed: {exc}"
            self[claim_id] = Verdict(bool(held), str(observed))
            return judgement

        return decorate
