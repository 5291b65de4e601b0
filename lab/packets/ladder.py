"""A ladder diagram: the conversation between hosts, frame by frame, on the events' time line.

Each host is a vertical line; each frame is an arrow from its sender to its
receiver, labelled SYN, ACK, data, FIN, RST, ICMP port unreachable... The
socket calls the experiment made, and the faults it injected, are put on the
same time line (every container shares the kernel's CLOCK_MONOTONIC, and a
capture's wall-clock times are moved onto it with the capture's clock
offset). So the RST that a BrokenPipeError answered is the arrow just above it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lab.services.probes.sockscript import Event

if TYPE_CHECKING:
    from lab.packets.dissect import Frame

COLUMN = 28  # characters between two hosts' lines


@dataclass(frozen=True)
class PacketMark:
    """A frame as a failure-matrix picture draws it: when, what, and which way it went."""

    t: float  # on the cell's clock
    label: str  # Frame.summary
    outgoing: bool  # sent by the client host

    @property
    def kind(self) -> str:
        for kind in ("RST", "ICMP", "SYN", "FIN"):
            if kind in self.label:
                return kind
        return "other"


@dataclass(frozen=True)
class Rung:
    t: float  # seconds since the experiment's t0
    kind: str  # "frame", "call" or "fault"
    src: str  # a host name (for a call or fault: where it happened; "" for everywhere)
    dst: str
    label: str
    count: int = 1  # alike frames folded into one rung


def rungs(
    frames: list[Frame],
    events: list[Event],
    names: dict[str, str],
    *,
    t0: float,
    clock_offset: float,
    faults: list[tuple[float, str]] | None = None,
) -> list[Rung]:
    """Frames, socket calls and faults, in time order; runs of alike frames folded."""
    out: list[Rung] = []
    for f in frames:
        if not f.src:
            continue  # not IPv4 or ARP: nothing to draw between hosts
        t = f.time - clock_offset - t0
        out.append(Rung(t, "frame", names.get(f.src, f.src), names.get(f.dst, f.dst), f.summary))
    for e in events:
        # At its end: when the call returned, with what the kernel had to say by then.
        outcome = "" if e.outcome == "ok" else f" -> {e.outcome}"
        out.append(Rung(e.t + e.dt, "call", e.host, "", f"{e.sock} {e.op}{outcome}"))
    out.extend(Rung(t, "fault", "", "", what) for t, what in faults or [])
    out.sort(key=lambda r: r.t)
    return fold(out)


def fold(items: list[Rung]) -> list[Rung]:
    """Runs of alike frames (a bulk transfer's data and ACKs) or calls become one rung."""
    folded: list[Rung] = []
    for r in items:
        last = folded[-1] if folded else None
        if (
            last is not None
            and r.kind == last.kind != "fault"
            and (r.src, r.dst, _shape(r.label)) == (last.src, last.dst, _shape(last.label))
        ):
            folded[-1] = Rung(last.t, r.kind, r.src, r.dst, last.label, last.count + 1)
            continue
        folded.append(r)
    return folded


def _shape(label: str) -> str:
    """A frame's label without its byte count: data segments of any size look alike."""
    return label.rsplit(" ", 2)[0] if label.endswith(" B") else label


def columns_of(items: list[Rung], preferred: list[str]) -> list[str]:
    """The hosts to draw, in the lab's own order, then any other seen (the Docker host)."""
    seen = {r.src for r in items if r.kind == "frame"} | {r.dst for r in items if r.kind == "frame"}
    ordered = [h for h in preferred if h in seen]
    return ordered + sorted(seen - set(ordered))


def text(items: list[Rung], columns: list[str]) -> list[str]:
    """The diagram as plain lines: time, one line per host, arrows between them."""
    index = {name: i for i, name in enumerate(columns)}
    width = COLUMN * (len(columns) - 1) + 1
    lines = [" " * 11 + "".join(name[: COLUMN - 2].ljust(COLUMN) for name in columns).rstrip()]
    for r in items:
        row = [" "] * width
        for i in range(len(columns)):
            row[i * COLUMN] = "|"
        stamp = f"{r.t * 1000:9.1f}  "
        if r.kind == "frame" and r.src in index and r.dst in index and r.src != r.dst:
            a, b = index[r.src] * COLUMN, index[r.dst] * COLUMN
            lo, hi = min(a, b), max(a, b)
            for x in range(lo + 1, hi):
                row[x] = "-"
            row[hi - 1 if b > a else lo + 1] = ">" if b > a else "<"
            label = r.label + (f" x{r.count}" if r.count > 1 else "")
            room = hi - lo - 3
            label = label[:room]
            at = lo + 1 + (hi - lo - 1 - len(label)) // 2
            row[at : at + len(label)] = list(label)
            lines.append(stamp + "".join(row).rstrip())
        elif r.kind == "call" and r.src in index:
            x = index[r.src] * COLUMN
            note = f"* {r.src}: {r.label}" + (f" x{r.count}" if r.count > 1 else "")
            lines.append(stamp + _note(row, x, note))
        elif r.kind == "fault":
            lines.append(stamp + f"=== fault: {r.label} ".ljust(width, "="))
    return lines


def _note(row: list[str], x: int, note: str) -> str:
    """A socket call written beside its host's line."""
    line = "".join(row)
    return (line[: x + 2] + note).rstrip() if x + 2 <= len(line) else line + " " + note
