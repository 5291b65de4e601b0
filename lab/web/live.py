"""The running lab as the page sees it, and what the page may do to it.

``Live`` wraps a ``lab.Lab``: the topology with every host's state and port table
(read again within half a second of Docker reporting a change), the journal of
happenings from every driver process, frames from a live capture, and the
actions (send, faults, links, restore, experiments). Every fault and impairment
set from the page is remembered and undone by ``close`` (on stop and on Ctrl-C),
as the command line's blocks do.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from lab import journal
from lab.api import Lab
from lab.backends.model import ServiceState
from lab.chaos import impairment
from lab.chaos.faults import KINDS, UNDO
from lab.engine import helpers
from lab.errors import LabError, UsageError
from lab.experiments import EXPERIMENTS
from lab.experiments.model import Experiment, run_experiment
from lab.packets.pcap import PcapStream
from lab.web.replay import frame_summary

FRAMES_KEPT = 5000

Broadcast = Callable[[dict[str, Any]], None]


def state_text(state: ServiceState | None) -> str:
    return "absent" if state is None else state.word


class Live:
    def __init__(self, lab: Lab, broadcast: Broadcast) -> None:
        self.lab = lab
        self.broadcast = broadcast
        self.chaos = lab.breaker()  # what the page broke, to undo
        self.impaired: set[str] = set()  # hosts whose link the page changed
        self.frames: deque[dict[str, Any]] = deque(maxlen=FRAMES_KEPT)
        self.capture: helpers.Helper | None = None
        self.running: str = ""  # the experiment running from the page, if any
        self._lock = threading.Lock()
        # Connections the page holds open across faults (the seed's BrokenPipeError needs
        # one): (origin, target) -> the session's context and the session.
        self.held: dict[tuple[str, str], tuple[Any, Any]] = {}

    # --- what the page draws ---

    def topology(self) -> dict[str, Any]:
        topo = self.lab.topology
        states = self.lab.states()
        hosts = []
        for host in topo.hosts.values():
            state = states.get(host.name)
            ports: list[dict[str, Any]] = []
            if state is not None and state.status == "running":
                try:
                    ports = [asdict(r) for r in self.lab.host(host.name).port_table()]
                except LabError:
                    ports = []
            bound = {}
            if state is not None and state.status == "running":
                for p in host.published:
                    try:
                        bound[(p.container_port, p.protocol)] = self.lab.published_port(
                            host.name, p.container_port, p.protocol
                        )
                    except LabError:
                        continue
            hosts.append(
                {
                    "name": host.name,
                    "role": host.role,
                    "interfaces": [asdict(i) for i in host.interfaces],
                    "attached": sorted(state.attached) if state else [],
                    "processes": list(host.processes),
                    "published": [
                        {**asdict(p), "bound": bound.get((p.container_port, p.protocol))}
                        for p in host.published
                    ],
                    "link": host.link,
                    "routes": [str(r) for r in host.routes],
                    "forwarding": host.forwarding,
                    "state": state_text(state),
                    "ports": ports,
                }
            )
        return {
            "project": topo.project,
            "networks": [asdict(n) for n in topo.networks.values()],
            "hosts": hosts,
            "processes": [
                {
                    "name": p.name,
                    "host": p.host,
                    "ports": [asdict(port) for port in p.ports],
                    "state": state_text(states.get(p.name)),
                }
                for p in topo.processes.values()
            ],
            "endpoints": [
                {"label": e.label, "host": e.host, "process": e.process, **asdict(e.port)}
                for e in topo.endpoints()
            ],
            "shortcuts": topo.shortcuts,
            "faults": list(KINDS),
            "impaired": sorted(self.impaired),
            "capturing": self.capture is not None,
            "running": self.running,
        }

    def states(self) -> dict[str, str]:
        """Every service's state in one word: what changes within a second of Docker."""
        states = self.lab.states()
        out = {name: state_text(states.get(name)) for name in self.lab.topology.services}
        for name, host in self.lab.topology.hosts.items():
            state = states.get(name)
            if state is not None and state.status == "running":
                missing = [i.network for i in host.interfaces if i.network not in state.attached]
                if missing:
                    out[name] = "cut off"
        return out

    def experiments(self) -> list[dict[str, Any]]:
        return [
            {
                "name": e.name,
                "question": e.question,
                "claims": [asdict(c) for c in e.claims_for(self.lab.topology)],
                "lacking": e.needs.missing(self.lab.topology),
            }
            for e in EXPERIMENTS.values()
        ]

    # --- what the page does ---

    def send(self, target: str, words: list[str], origin: str, data: str) -> dict[str, Any]:
        sent = self.lab.send(target, *words, origin=origin or None, data=data)
        return {
            "target": sent.endpoint.label,
            "address": sent.address,
            "origin": sent.origin,
            "events": [asdict(e) for e in sent.events],
            "reply": sent.reply,
            "error": sent.error,
        }

    def hold(self, target: str, message: str, origin: str) -> dict[str, Any]:
        """Say ``message`` on a TCP connection the page keeps open: the first time it is
        opened; afterwards the very same socket is used, whatever happened meanwhile."""
        endpoint = self.lab.topology.endpoint(target)
        if endpoint.port.transport != "tcp":
            raise UsageError("only a TCP connection can be held: a datagram has none")
        origin = origin or self.lab.topology.client.name
        key = (origin, target)
        events: list[Any] = []
        if key not in self.held:
            context = self.lab.session(origin)
            session = context.__enter__()
            self.held[key] = (context, session)
            address = self.lab.topology.hosts[endpoint.host].ip
            events += session.step(op="socket", sock="held", type="tcp", timeout=1.5)
            events += session.step(
                op="connect", sock="held", host=address, port=endpoint.port.number
            )
        session = self.held[key][1]
        events += session.step(op="send", sock="held", data=message)
        events += session.step(op="recv", sock="held")
        failed = next((e.outcome for e in events if e.outcome not in ("ok",)), "")
        return {
            "target": target,
            "origin": origin,
            "events": [asdict(e) for e in events],
            "reply": "".join(e.data or "" for e in events if e.op == "recv" and e.outcome == "ok"),
            "error": f"{next(e.op for e in events if e.outcome == failed)}: {failed}"
            if failed
            else "",
        }

    def release(self) -> str:
        """Close every held connection."""
        count = len(self.held)
        for context, _ in self.held.values():
            with contextlib.suppress(LabError, OSError):
                context.__exit__(None, None, None)
        self.held.clear()
        return f"{count} held connections closed"

    def fault(self, action: str, target: str) -> str:
        if action not in (*KINDS, "start"):
            raise UsageError(f"no fault {action!r}")
        with self._lock:
            self.chaos.apply(action, target)
            if action not in UNDO:  # a mending: the page no longer owes its undoing
                self.chaos.undo = [u for u in self.chaos.undo if u[1] != target]
        return f"{action} {target}: done"

    def link(self, host: str, spec: str) -> str:
        if spec.strip() == "reset":
            self.lab.unlink(host)
            self.impaired.discard(host)
            return f"{host}: link as declared again"
        how = self.lab.link(host, impairment.parse(spec.split()))
        self.impaired.add(host)
        return f"{host}: {spec}" + (f" ({how})" if how else "")

    def restore(self) -> list[str]:
        with self._lock:
            self.chaos.undo.clear()
        self.impaired.clear()
        return self.lab.restore()

    def run(self, name: str, predictions: dict[str, bool] | None, by: str) -> dict[str, Any]:
        experiment: Experiment = EXPERIMENTS[name]
        self.running = name
        try:
            result = run_experiment(experiment, self.lab, predictions, by)
        finally:
            self.running = ""
        data = result.to_json()
        return {
            "experiment": result.experiment,
            "passed": result.passed,
            "checks": data["checks"],
            "predictions": data["predictions"],
            "cells": data["facts"].get("cells", []),
            "t0": result.t0_monotonic,
        }

    # --- frames, live ---

    def start_capture(self) -> None:
        if self.capture is not None:
            return
        self.capture = self.lab.frames_live()
        threading.Thread(target=self._read_frames, args=(self.capture,), daemon=True).start()

    def stop_capture(self) -> None:
        helper, self.capture = self.capture, None
        if helper is not None:
            helper.remove()

    def _read_frames(self, helper: helpers.Helper) -> None:
        from lab.packets import dissect

        names = self.lab.address_names()
        stream = PcapStream()
        offset = time.time() - time.monotonic()
        number = 0
        try:
            for chunk in helper.stream():
                for wall, raw in stream.feed(chunk):
                    number += 1
                    frame = dissect.dissect(raw, wall, number)
                    item = {
                        "kind": "frame",
                        "at": wall - offset,
                        "frame": frame_summary(frame, names),
                    }
                    self.frames.append({"number": number, "frame": frame})
                    self.broadcast(item)
        except ValueError:  # a stream cut mid-record (the capture was stopped)
            return

    def frame_detail(self, number: int) -> dict[str, Any]:
        from lab.packets import view as packet_view

        for item in self.frames:
            if item["number"] == number:
                detail: dict[str, Any] = packet_view.frame_json(item["frame"])
                return detail
        raise UsageError(f"no captured frame {number} (the last {FRAMES_KEPT} are kept)")

    # --- the end ---

    def close(self) -> list[str]:
        """Undo what the page did: faults, impaired links, the capture."""
        done = []
        self.release()
        self.stop_capture()
        with self._lock:
            if self.chaos.undo:
                done.append("faults undone")
                self.chaos.undo_all()
        for host in sorted(self.impaired):
            try:
                self.lab.unlink(host)
                done.append(f"{host}'s link reset")
            except LabError:
                continue
        self.impaired.clear()
        self.lab.remove_my_helpers()
        return done


def tail_journal(project: str, broadcast: Broadcast, stop: threading.Event) -> None:
    """Every happening any driver process writes, passed on as it comes."""
    tail = journal.Tail(journal.path_for(project))
    while not stop.wait(0.1):
        for happening in tail.read():
            broadcast(happening)
