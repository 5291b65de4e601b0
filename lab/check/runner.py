"""`check`: run a learner's server in the lab, probe it, judge what the kernel did.

The server takes the place of one of the lab's processes (its host and port). Each
probe finds it running (it is started again if a probe before ended it, and a probe
it cannot be started for is not judged), sends its script from the server's own host
(or, for reachability, from the client host), and records the server's side: its
traced socket calls where a property needs them, its sockets, whether it still runs.
The judgement (lab.check.judge) reads only what was recorded, so a saved result can
be judged again.
"""

from __future__ import annotations

import datetime
import hashlib
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.check import evidence
from lab.check import judge as judging
from lab.check.battery import Battery, Plan
from lab.check.properties import Property
from lab.check.server import InPlaceOf, Server, ServerFailed
from lab.check.spec import RESULT_PREFIX, Assignment
from lab.errors import TraceError, UsageError
from lab.experiments.model import Check, Observations, Result, lab_snapshot
from lab.progress import Progress, silent
from lab.syscalls.strace import Syscall
from lab.syscalls.trace import tracing_pid
from lab.traffic.script import Events

if TYPE_CHECKING:
    from lab.api import Lab

TRACED = ("split-character", "slow-reader", "reset")  # probes whose server calls are judged
LAST = ("restart",)  # probes that leave the port held (TIME_WAIT) run last
SETTLE = 3.0  # seconds to wait for closed connections to leave the kernel's table


class Checking:
    """One check run: the server, the probes, and what they recorded."""

    def __init__(
        self, lab: Lab, server: Server, assignment: Assignment, progress: Progress
    ) -> None:
        self.lab = lab
        self.server = server
        self.assignment = assignment
        self.progress = progress
        self.t0 = time.monotonic()
        self.events = Events()
        self.expect: dict[str, Any] = {}
        self.sides: dict[str, dict[str, Any]] = {}
        self.target = ""
        self.battery: Battery | None = None

    # --- the server between probes ------------------------------------------------------

    def _ready(self, probe: str) -> bool:
        """The server running for ``probe``: started again if it ended; False if it cannot be."""
        if self.server.alive():
            return True
        try:
            self.server.start()
        except ServerFailed as exc:
            self.sides[probe] = {
                "unavailable": f"the server could not be started again: {exc.what}"
            }
            return False
        return True

    def _after(self, probe: str) -> None:
        side = self.sides.setdefault(probe, {})
        alive = self.server.alive()
        side["alive"] = alive
        if not alive:
            side["ending"] = self.server.ending() or "closed its socket"
            lines = self.server.output().strip().splitlines()
            side["last_line"] = lines[-1] if lines else ""

    def _run(self, probe: str, plan: Plan, on: str) -> None:
        self.expect[probe] = plan.expect
        if probe not in TRACED:
            self.events.extend(self.lab.run(plan.steps, on=on, t0=self.t0))
            return
        listening = self.server.listening
        assert listening is not None
        try:
            with tracing_pid(
                self.lab.backend, self.server.host, listening.pid, self.server.label, self.t0
            ) as trace:
                self.events.extend(self.lab.run(plan.steps, on=on, t0=self.t0))
            self.sides.setdefault(probe, {})["calls"] = calls_fact(trace.calls, probe)
        except TraceError as exc:  # judged without the server's calls: those parts not judged
            self.sides.setdefault(probe, {})["trace_error"] = exc.line()
            self.events.extend(self.lab.run(plan.steps, on=on, t0=self.t0))

    def _server_sockets(self) -> tuple[int, list[str]]:
        """How many sockets the server holds, and its connections in CLOSE_WAIT."""
        pid = self.server.listening.pid if self.server.listening else -1
        rows = self.lab.backend.sockets(self.server.host)
        mine = [r for r in rows if r.pid == pid]
        port = f":{self.server.port}"
        waiting = [
            f"{r.local} <- {r.remote}"
            for r in rows
            if r.state == "CLOSE_WAIT" and r.local.endswith(port)
        ]
        return len(mine), waiting

    # --- the probes ------------------------------------------------------------------

    def probe(self, prop: Property) -> None:
        probe = prop.id
        battery = self.battery
        assert battery is not None
        if not self._ready(probe):
            return
        self.progress(f"probing: {prop.text}")
        if probe == "reachable":
            client = self.lab.topology.client.name
            address = self.lab.topology.host_of(self.server.host).ip
            self._run(probe, battery.reachable(address), client)
        elif probe == "restart":
            self._restart(battery)
            return
        elif probe == "half-close":
            before, _ = self._server_sockets()
            self._run(probe, battery.stream(probe), self.server.host)
            after, waiting = self._settled(before)
            self.sides.setdefault(probe, {}).update(
                sockets_before=before, sockets_after=after, close_wait=waiting
            )
        else:
            plan = battery.stream(probe) if self.assignment.stream else battery.datagram(probe)
            self._run(probe, plan, self.server.host)
        self._after(probe)

    def _settled(self, before: int) -> tuple[int, list[str]]:
        deadline = time.monotonic() + SETTLE
        while True:
            count, waiting = self._server_sockets()
            if (count <= before and not waiting) or time.monotonic() > deadline:
                return count, waiting
            time.sleep(0.2)

    def _restart(self, battery: Battery) -> None:
        """Kill it with a client connected, start it again at once, ask again."""
        side = self.sides.setdefault("restart", {})
        self.expect["restart"] = battery.restart_expect()
        host, port = self.server.host, self.server.port
        with self.lab.session(host, self.t0) as session:
            for step in battery.restart_before():
                self.events.extend(session.step(**step))
            self.server.kill()
            side["killed"] = True
            side["left"] = [
                f"{r.state} {r.local} <- {r.remote}"
                for r in self.lab.backend.sockets(host)
                if r.local.endswith(f":{port}") and r.state not in ("LISTEN", "UNCONN")
            ]
            try:
                self.server.start(timeout=5.0)
                side["listened"] = True
            except ServerFailed as exc:
                side["listened"] = False
                side["ending"] = self.server.ending()
                side["last_line"] = exc.what
            for step in battery.restart_after():
                self.events.extend(session.step(**step))


def calls_fact(calls: list[Syscall], probe: str) -> list[dict[str, Any]]:
    """The server's socket calls as the result keeps them (the slow reader's: sends only)."""
    kept = []
    for c in calls:
        if c.kind != "call" or (probe == "slow-reader" and c.name not in evidence.SENDS):
            continue
        row: dict[str, Any] = {"name": c.name, "result": c.result, "errno": c.errno, "fd": c.fd}
        if c.name in evidence.SENDS:
            row["asked"] = evidence.asked(c.args)
        elif c.name in evidence.READS and probe != "slow-reader":
            row["data"] = c.data
        kept.append(row)
    return kept


def check(
    lab: Lab,
    path: Path,
    assignment: Assignment,
    *,
    progress: Progress = silent,
    by: str = "",
) -> Result:
    """Check the server in ``path`` against ``assignment``; the judged result."""
    processes = lab.topology.processes
    if assignment.in_place_of not in processes:
        raise UsageError(
            f"this topology has no process {assignment.in_place_of} for the server to stand in for",
            "name one with in-place-of: in an assignment file (docs/checking.md)",
        )
    try:
        source = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it ({exc.strerror})") from None
    host = processes[assignment.in_place_of].host
    server = Server(
        lab,
        host,
        path.name,
        source,
        assignment.protocol,
        assignment.port,
        assignment.argv(assignment.port),
    )
    started_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    properties = assignment.applicable()
    run = Checking(lab, server, assignment, progress)
    with InPlaceOf(lab, assignment.in_place_of, progress):
        try:
            progress(f"starting {path.name} on {host} ({assignment.port}/{assignment.protocol})")
            try:
                listening = server.start()
            except ServerFailed as exc:
                # An earlier run's connections in TIME_WAIT hold the port against a server
                # without SO_REUSEADDR: the check judges the server, not what ran before it.
                if "Address already in use" not in exc.output or not server.wait_port_free(
                    progress
                ):
                    raise
                listening = server.start()
            local = "127.0.0.1" if listening.address in ("0.0.0.0", "::", "") else listening.address
            run.target = f"{local}:{assignment.port}"
            run.battery = Battery(assignment, local, assignment.port)
            order = [p for p in properties if p.id not in LAST] + [
                p for p in properties if p.id in LAST
            ]
            for prop in order:
                if prop.id != "partial-send":  # judged from the slow reader's probe
                    run.probe(prop)
        finally:
            output = server.output()
            server.remove()
    facts = {
        "check": {
            "file": path.name,
            "sha256": hashlib.sha256(source).hexdigest(),
            "role": assignment.name,
            "assignment": assignment.source,
            "protocol": assignment.protocol,
            "port": assignment.port,
            "host": host,
            "address": listening.address,
            "target": run.target,
            "by": by,
            "starts": server.starts,
        },
        "expect": run.expect,
        "server": run.sides,
        "output": output[-4000:],
    }
    snapshot = lab_snapshot(lab)
    seen = Observations(run.events, facts, snapshot["hosts"])
    checks = judge_checks(seen, assignment.stream, properties)
    return Result(
        experiment=f"{RESULT_PREFIX}{assignment.name}",
        question=f"does {path.name} behave as a {assignment.name} server should?",
        started_at=started_at,
        duration_s=round(time.monotonic() - run.t0, 3),
        lab=snapshot,
        checks=checks,
        events=list(run.events),
        facts=facts,
        t0_monotonic=run.t0,
    )


def judge_checks(seen: Observations, stream: bool, properties: tuple[Property, ...]) -> list[Check]:
    verdicts = judging.judge(seen, stream, [p.id for p in properties])
    return [
        Check(p.id, p.text, verdicts[p.id].held, verdicts[p.id].observed, verdicts[p.id].judged)
        for p in properties
    ]


def rejudge(data: dict[str, Any]) -> list[Check]:
    """A saved check result's checks judged again from its observations."""
    from lab.check.properties import by_id

    stream = data["facts"]["check"]["protocol"] == "tcp"
    table = by_id(stream)
    properties = tuple(table[c["id"]] for c in data["checks"] if c["id"] in table)
    return judge_checks(Observations.from_result(data), stream, properties)
