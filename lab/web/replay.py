"""A saved result as the page replays it: hosts, and every happening on one time line.

Needs no Docker: a result JSON (and the pcap saved beside it, when there is one)
carries the lab's hosts and addresses, every socket call with its time, the faults
of a failure matrix, and the frames (from the pcap, or the result's own
``facts["frames"]`` where a run kept them so). Each frame comes with its fields' bytes
and what its receiver decided (:mod:`lab.packets.decisions`): the page steps through
the time line one happening at a time. Times are seconds since the experiment began.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.errors import UsageError
from lab.packets import report as packet_report

if TYPE_CHECKING:
    from lab.packets.dissect import Frame


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
        "captured": path.with_suffix(".pcap").exists() or bool(_facts(data).get("frames")),
        "stepped": bool(_facts(data).get("stepped")),
    }


def _facts(data: dict[str, Any]) -> dict[str, Any]:
    facts: dict[str, Any] = data.get("facts") or {}
    return facts


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
    rows: list[dict[str, Any]] = _facts(data).get("port_tables", {}).get(host, [])
    return rows


def names_of(data: dict[str, Any]) -> dict[str, str]:
    """Host names by address: the capture's, else every address the lab's hosts had."""
    names: dict[str, str] = dict((data.get("capture") or {}).get("names") or {})
    for name, host in (data.get("lab") or {}).get("hosts", {}).items():
        for ip in (host.get("ips") or {"": host.get("ip", "")}).values():
            if ip:
                names.setdefault(ip, name)
    return names


def frames_of(path: Path, data: dict[str, Any]) -> tuple[list[Frame], dict[int, str]]:
    """The run's frames, taken apart: from the pcap saved beside the result, else from
    the result's own ``facts["frames"]`` (raw bytes in hex, each with its time since the
    experiment began and where it was captured). Times are put on the capture's clock,
    as a pcap's are, so that one time line and the ladder serve both. Also: where each
    frame was captured, by number, when the result says."""
    from lab.packets import dissect

    pcap = path.with_suffix(".pcap")
    if pcap.exists() and not _facts(data).get("frames"):  # a run's own frames know their wire
        return dissect.read(pcap), {}
    base = float(data.get("t0_monotonic", 0.0)) + _offset(data)
    frames, where = [], {}
    for i, item in enumerate(_facts(data).get("frames") or [], 1):
        try:
            raw = bytes.fromhex(str(item["hex"]))
            number = int(item.get("number", i))
            t = float(item.get("t", 0.0))
        except (KeyError, TypeError, ValueError):
            continue  # one unreadable frame must not hide the others
        frames.append(dissect.dissect(raw, base + t, number))
        if item.get("capture"):
            where[number] = str(item["capture"])
    frames.sort(key=lambda f: f.time)  # what each receiver decided depends on the order
    return frames, where


def _offset(data: dict[str, Any]) -> float:
    return float((data.get("capture") or {}).get("clock_offset", 0.0))


def macs_of(data: dict[str, Any]) -> dict[str, str]:
    """MAC -> host name, where a result recorded its hosts' interfaces (`ip -j addr`)."""
    links = _facts(data).get("links") or {}
    return {
        str(link["address"]): host
        for host, found in links.items()
        if isinstance(found, list)
        for link in found
        if isinstance(link, dict) and link.get("address") and link.get("ifname") != "lo"
    }


def timeline(
    path: Path,
    data: dict[str, Any],
    read: tuple[list[Frame], dict[int, str]] | None = None,
) -> list[dict[str, Any]]:
    """Socket calls, frames and faults, in time order (seconds since the experiment began).
    Each frame carries what its receiver decided, where anything recorded says. ``read``:
    what :func:`frames_of` gave, when it was already asked."""
    from lab.packets import view as packet_view
    from lab.packets.decisions import decisions

    items: list[dict[str, Any]] = [
        {"t": e.t, "kind": "socket", "event": e.__dict__} for e in packet_report.events_of(data)
    ]
    items += [{"t": t, "kind": "fault", "text": text} for t, text in packet_report.faults_of(data)]
    frames, where = frames_of(path, data) if read is None else read
    if frames:
        base = _offset(data) + float(data.get("t0_monotonic", 0.0))
        names = names_of(data)
        decided = decisions(frames, _facts(data).get("port_tables") or {}, names, macs_of(data))
        for frame, decision in zip(frames, decided, strict=True):
            shown = frame_summary(frame, names)
            if frame.number in where:
                shown["capture"] = where[frame.number]
            items.append(
                {
                    "t": frame.time - base,
                    "kind": "frame",
                    "frame": shown,
                    "detail": packet_view.frame_json(frame),
                    "decision": decision,
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


def replayable(index: int, path: Path, data: dict[str, Any] | None = None) -> dict[str, Any]:
    data = load(path) if data is None else data
    read = frames_of(path, data)
    frames = read[0]
    return {
        **summary(index, path, data),
        "question": data.get("question", ""),
        "topology": topology_of(data),
        "names": names_of(data),
        "timeline": timeline(path, data, read),
        "checks": data.get("checks", []),
        "cells": _facts(data).get("cells", []),
        "ladder": packet_report.ladder_of(frames, data) if frames else [],
    }
