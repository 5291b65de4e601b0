"""A capture joined to the experiment it was taken during: names, counts, the ladder."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.backends.engine import Engine
from lab.errors import PacketError
from lab.packets import ladder
from lab.packets.capture import CaptureInfo
from lab.packets.ladder import PacketMark
from lab.packets.view import checksum_counts
from lab.services.probes.sockscript import Event

if TYPE_CHECKING:
    from lab.packets.dissect import Frame

DOCKER_HOST = "docker-host"


def host_names(backend: Engine) -> dict[str, str]:
    """IP address -> host name (every address of every host), the Docker host (the
    client's gateway) included."""
    names = {i.ip: h.name for h in backend.topology.hosts.values() for i in h.interfaces}
    names[backend.gateway()] = DOCKER_HOST
    return names


def client_of(hosts: dict[str, Any]) -> str:
    """The client host's name in a result's ``lab.hosts`` (by its role)."""
    for name, host in hosts.items():
        if host.get("role") == "client":
            return name
    return "client"  # results saved before roles were recorded


def summary(info: CaptureInfo, frames: list[Frame], names: dict[str, str]) -> dict[str, Any]:
    """What a result keeps about its capture (schema: result.schema.json, ``capture``)."""
    return {
        **info.to_json(),
        "frames": len(frames),
        "checksums": checksum_counts(frames),
        "names": names,
    }


def result_beside(pcap: Path) -> dict[str, Any] | None:
    """The experiment result saved next to a capture (same name, .json), if there is one."""
    path = pcap.with_suffix(".json")
    if not path.exists():
        return None
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PacketError(f"cannot read {path}: {exc}") from None
    return data


def ladder_of(frames: list[Frame], result: dict[str, Any]) -> list[str]:
    """The text ladder for a captured experiment result (as saved in JSON)."""
    capture = result.get("capture") or {}
    names = capture.get("names", {})
    items = ladder.rungs(
        frames,
        events_of(result),
        names,
        t0=float(result.get("t0_monotonic", 0.0)),
        clock_offset=float(capture.get("clock_offset", 0.0)),
        faults=faults_of(result),
    )
    hosts = (result.get("lab") or {}).get("hosts", {})
    client = client_of(hosts)
    order = [client, *(h for h in hosts if h != client), DOCKER_HOST]
    return ladder.text(items, ladder.columns_of(items, order))


def events_of(result: dict[str, Any]) -> list[Event]:
    """Every socket call, on the experiment's time line (a failure-matrix row keeps its own)."""
    cells = (result.get("facts") or {}).get("cells")
    if not cells:
        return [Event(**e) for e in result.get("events", [])]
    t0 = float(result.get("t0_monotonic", 0.0))
    out: list[Event] = []
    for cell in cells:
        shift = float(cell.get("t0", t0)) - t0
        out.extend(replace(Event(**e), t=e["t"] + shift) for e in cell["events"])
    return out


def span_packets(
    events: list[Event],
    t0: float,
    frames: list[Frame],
    capture: dict[str, Any],
    hosts: dict[str, Any],
) -> list[PacketMark]:
    """The frames to and from the client host's sockets in ``events`` while they ran,
    on their clock (``t0``: the CLOCK_MONOTONIC time their ``t`` counts from)."""
    client_ip = hosts.get(client_of(hosts), {}).get("ip", "")
    end = max((e.t + e.dt for e in events), default=0.0)
    ports = local_ports(events)
    marks = []
    for f in frames:
        t = f.time - float(capture.get("clock_offset", 0.0)) - t0
        if not 0 <= t <= end or client_ip not in (f.src, f.dst) or not f.layer("IPv4"):
            continue
        client_port = port_of(f, client_ip)
        if client_port is None or client_port not in ports:
            continue
        marks.append(PacketMark(t, f.summary, outgoing=f.src == client_ip))
    return marks


def port_of(frame: Frame, ip: str) -> int | None:
    """The port at ``ip``'s end of a TCP or UDP frame (for ICMP: of the datagram it quotes)."""
    for name in ("TCP", "UDP"):
        layer = frame.layer(name)
        if layer:
            side = "src_port" if frame.src == ip else "dst_port"
            return int(layer.fields[side])
    quoted = frame.payload  # an ICMP error quotes the IP header and 8 bytes of what it refused
    if frame.layer("ICMP") and len(quoted) >= 20 and len(quoted) >= (quoted[0] & 0x0F) * 4 + 2:
        at = (quoted[0] & 0x0F) * 4
        return int.from_bytes(quoted[at : at + 2], "big")  # its source port: the client's
    return None


def local_ports(events: list[Event]) -> set[int]:
    """The local ports of the sockets in ``events`` (each socket's own conversation)."""
    ports = set()
    for e in events:
        if e.local and ":" in e.local:
            tail = e.local.rsplit(":", 1)[1]
            if tail.isdigit() and tail != "0":
                ports.add(int(tail))
    return ports


def faults_of(result: dict[str, Any]) -> list[tuple[float, str]]:
    """The failure matrix's faults and recoveries, on the experiment's time line."""
    t0 = float(result.get("t0_monotonic", 0.0))
    out = []
    rows: set[str] = set()
    for cell in (result.get("facts") or {}).get("cells", []):
        if cell["row"] in rows:
            continue  # the clients of a row share its fault: mark it once
        rows.add(cell["row"])
        base = float(cell.get("t0", t0)) - t0
        out.append((base + cell["fault_at"], f"{cell['row']} begins"))
        out.append((base + cell["recovered_at"], f"{cell['row']} undone"))
    return out
