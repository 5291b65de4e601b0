"""A saved result as the page replays it: hosts, and every happening on one time line.

Needs no Docker: a result JSON (and the pcap saved beside it, when there is one)
carries the lab's hosts and addresses, every socket call with its time, the faults
of a failure matrix, and the frames. Times are seconds since the experiment began.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lab.errors import UsageError
from lab.packets import report as packet_report


def load(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path} is not a result file: {exc}") from None
    if not isinstance(data, dict) or "events" not in data or "lab" not in data:
        raise UsageError(f"{path} is not a result of `lab run` (no events or lab)")
    return data


def summary(index: int, path: Path, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": index,
        "file": str(path),
        "experiment": data.get("experiment", "?"),
        "started_at": data.get("started_at", ""),
        "passed": data.get("passed"),
        "captured": path.with_suffix(".pcap").exists(),
    }


def topology_of(data: dict[str, Any]) -> dict[str, Any]:
    """The hosts a result recorded, in the shape the page draws (no port tables live)."""
    hosts = []
    networks: list[str] = []
    for name, host in data["lab"]["hosts"].items():
        ips = host.get("ips") or {"lab": host.get("ip", "")}
        networks += [n for n in ips if n not in networks]
        hosts.append(
            {
                "name": name,
                "role": host.get("role", "client" if name == "client" else "host"),
                "interfaces": [{"network": n, "ip": ip, "aliases": []} for n, ip in ips.items()],
                "processes": list(host.get("processes", [])),
                "ports": _ports(data, name),
                "published": [],
                "link": "",
                "routes": [],
                "state": "running",
            }
        )
    return {
        "project": data["lab"].get("project", ""),
        "networks": [{"name": n, "subnet": ""} for n in networks],
        "hosts": hosts,
        "processes": [
            {"name": p, "host": h["name"], "ports": [], "state": "running"}
            for h in hosts
            for p in h["processes"]
        ],
    }


def _ports(data: dict[str, Any], host: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (data.get("facts") or {}).get("port_tables", {}).get(host, [])
    return rows


def timeline(path: Path, data: dict[str, Any]) -> list[dict[str, Any]]:
    """Socket calls, frames and faults, in time order (seconds since the experiment began)."""
    items: list[dict[str, Any]] = [
        {"t": e.t, "kind": "socket", "event": e.__dict__} for e in packet_report.events_of(data)
    ]
    items += [{"t": t, "kind": "fault", "text": text} for t, text in packet_report.faults_of(data)]
    pcap = path.with_suffix(".pcap")
    if pcap.exists():
        from lab.packets import dissect
        from lab.packets import view as packet_view

        capture = data.get("capture") or {}
        offset = float(capture.get("clock_offset", 0.0))
        t0 = float(data.get("t0_monotonic", 0.0))
        names = capture.get("names", {})
        for frame in dissect.read(pcap):
            items.append(
                {
                    "t": frame.time - offset - t0,
                    "kind": "frame",
                    "frame": frame_summary(frame, names),
                    "detail": packet_view.frame_json(frame),
                }
            )
    items.sort(key=lambda item: float(item["t"]))
    return items


def frame_summary(frame: Any, names: dict[str, str]) -> dict[str, Any]:
    """What the page draws of a frame: who to whom, and what it is."""
    return {
        "number": frame.number,
        "src": frame.src,
        "dst": frame.dst,
        "from": names.get(frame.src, frame.src),
        "to": names.get(frame.dst, frame.dst),
        "summary": frame.summary,
        "checksums": [{"layer": c.layer, "verdict": c.verdict.value} for c in frame.checksums],
    }


def replayable(index: int, path: Path) -> dict[str, Any]:
    data = load(path)
    ladder: list[str] = []
    pcap = path.with_suffix(".pcap")
    if pcap.exists():
        from lab.packets import dissect

        ladder = packet_report.ladder_of(dissect.read(pcap), data)
    return {
        **summary(index, path, data),
        "question": data.get("question", ""),
        "topology": topology_of(data),
        "timeline": timeline(path, data),
        "checks": data.get("checks", []),
        "cells": (data.get("facts") or {}).get("cells", []),
        "ladder": ladder,
    }
