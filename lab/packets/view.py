"""Frames shown to a person: one line each, layer by layer, and as marked-up hex."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from lab.packets.dissect import Frame, Layer

from lab.packets.checksum import EXPLANATIONS, Verdict

STYLES = {
    "Ethernet": "cyan",
    "ARP": "magenta",
    "IPv4": "yellow",
    "TCP": "green",
    "UDP": "blue",
    "ICMP": "red",
    "data": "white",
}
VERDICT_STYLES = {
    Verdict.VALID: "green",
    Verdict.OFFLOADED: "yellow",
    Verdict.ABSENT: "dim",
    Verdict.INVALID: "bold red",
}
ETHER_TYPES = {0x0800: "IPv4", 0x0806: "ARP", 0x86DD: "IPv6"}
PROTOCOLS = {1: "ICMP", 6: "TCP", 17: "UDP"}


def name_of(ip: str, names: dict[str, str]) -> str:
    return names.get(ip, ip)


COLUMNS = ("#", "t (ms)", "from", "to", "what", "bytes", "checksums")
RIGHT = (True, True, False, False, False, True, False)  # numbers align right


def listing(frames: Sequence[Frame], names: dict[str, str], start: float) -> Iterator[str]:
    """One plain line per frame, in aligned columns, as `tshark -r` prints them: when, who
    to whom, what, how long, and whether its checksums hold. Plain text rather than a
    table widget: a capture of 100,000 frames must list as fast as tshark does (`lab bench
    packets`), and a pipe into grep or less wants lines."""
    words = _CHECKSUM_WORDS
    columns = (
        [str(f.number) for f in frames],
        [f"{(f.time - start) * 1000:.3f}" for f in frames],
        [names.get(a, a) for a in (f.src for f in frames)],
        [names.get(a, a) for a in (f.dst for f in frames)],
        [f.summary for f in frames],
        [str(len(f.raw)) for f in frames],
        [" ".join([words[c[0], c[3]] for c in f.checksums]) or "-" for f in frames],
    )
    widths = [
        max(len(title), *map(len, column)) for title, column in zip(COLUMNS, columns, strict=True)
    ]
    aligned = [
        f"{{:>{w}}}" if right else f"{{:<{w}}}" for w, right in zip(widths, RIGHT, strict=True)
    ]
    line = "  ".join(aligned[:-1]) + "  {}"  # the last column is not padded
    yield line.format(*COLUMNS).rstrip()
    for row in zip(*columns, strict=True):
        yield line.format(*row)


_CHECKSUM_WORDS = {
    (layer, v): f"{layer} {v.value}" for layer in ("IPv4", "TCP", "UDP", "ICMP") for v in Verdict
}


def layer_fields(layer: Layer) -> str:
    f = layer.fields
    if layer.name == "Ethernet":
        kind = int(f["type"])
        return f"{f['src']} → {f['dst']}  type 0x{kind:04x} ({ETHER_TYPES.get(kind, '?')})"
    if layer.name == "ARP":
        op = "who-has" if f["op"] == 1 else "is-at"
        return f"{op}: {f['sender_ip']} ({f['sender_mac']}) asks for {f['target_ip']}"
    if layer.name == "IPv4":
        proto = int(f["protocol"])
        return (
            f"{f['src']} → {f['dst']}  TTL {f['ttl']}  protocol {proto} "
            f"({PROTOCOLS.get(proto, '?')})  total length {f['total_length']}  id {f['id']}  "
            f"header checksum 0x{int(f['checksum']):04x}"
        )
    if layer.name == "TCP":
        return (
            f"port {f['src_port']} → {f['dst_port']}  [{f['flag_names']}]  seq {f['seq']}  "
            f"ack {f['ack']}  window {f['window']}  checksum 0x{int(f['checksum']):04x}"
        )
    if layer.name == "UDP":
        return (
            f"port {f['src_port']} → {f['dst_port']}  length {f['length']}  "
            f"checksum 0x{int(f['checksum']):04x}"
        )
    if layer.name == "ICMP":
        return f"type {f['type']} code {f['code']}  checksum 0x{int(f['checksum']):04x}"
    if layer.name == "VXLAN":
        valid = "I: the network id is valid" if int(f["flags"]) & 0x08 else "no I flag"
        return (
            f"flags 0x{int(f['flags']):02x} ({valid})  network id (VNI) {f['vni']}: "
            "an Ethernet frame of the overlay follows"
        )
    return ""


def frame_detail(frame: Frame, names: dict[str, str], start: float) -> RenderableType:
    """A frame taken apart: each layer's byte range and fields, its checksums, its bytes."""
    title = (
        f"frame {frame.number}  +{(frame.time - start) * 1000:.3f} ms  {len(frame.raw)} bytes  "
        f"{name_of(frame.src, names)} → {name_of(frame.dst, names)}  {frame.summary}"
    )
    table = Table(title=title, title_justify="left", show_header=True)
    table.add_column("layer")
    table.add_column("bytes", justify="right")
    table.add_column("fields")
    for layer in frame.layers:
        span = f"{layer.start}-{layer.end - 1}" if layer.end > layer.start else "none"
        if layer.name == "data":
            fields = repr(frame.payload[:64]) + (" ..." if len(frame.payload) > 64 else "")
        else:
            fields = layer_fields(layer)
        table.add_row(Text(layer.name, style=STYLES.get(layer.name, "")), span, fields)
    parts: list[RenderableType] = [table]
    for c in frame.checksums:
        line = Text(f"  {c.layer} checksum 0x{c.carried:04x}: ")
        line.append(c.verdict.value, style=VERDICT_STYLES[c.verdict])
        if c.verdict is not Verdict.VALID:
            line.append(f" (recomputed 0x{c.computed:04x}; {EXPLANATIONS[c.verdict]})")
        parts.append(line)
    parts.append(hex_view(frame))
    return Group(*parts)


def examples(frames: list[Frame]) -> list[Frame]:
    """A frame of each kind worth taking apart in a report: the first TCP segment and the
    first UDP datagram carrying data, and the first ICMP message."""
    chosen: list[Frame] = []
    for kind in ("TCP", "UDP", "ICMP"):
        for f in frames:
            if f.layer(kind) and (kind == "ICMP" or f.payload):
                chosen.append(f)
                break
    return sorted(chosen, key=lambda f: f.number)


def hex_view(frame: Frame, width: int = 16) -> Text:
    """The frame's bytes, 16 to a line, coloured by layer, with ``|`` where a header ends."""
    owner = ["data"] * len(frame.raw)
    boundaries: set[int] = set()
    for layer in frame.layers:
        for i in range(layer.start, min(layer.end, len(frame.raw))):
            owner[i] = layer.name
        boundaries.add(layer.start)
    text = Text()
    for row in range(0, len(frame.raw), width):
        text.append(f"  {row:04x}  ")
        for i in range(row, min(row + width, len(frame.raw))):
            sep = "|" if i in boundaries and i else " " if i > row else ""
            text.append(sep)
            text.append(f"{frame.raw[i]:02x}", style=STYLES.get(owner[i], ""))
        text.append("\n")
    legend = Text("  ")
    for layer in frame.layers:
        legend.append(f"{layer.name} ", style=STYLES.get(layer.name, ""))
    legend.append(" (| marks where a layer begins; trailing bytes past IPv4's length are padding)")
    text.append_text(legend)
    return text


def frame_json(frame: Frame) -> dict[str, object]:
    """A frame as data: its layers with their byte ranges, fields and each field's bytes
    (``spans``: absolute [start, end) offsets, :mod:`lab.packets.fields`), its checksums,
    and its bytes in hex."""
    from lab.packets.fields import layer_spans

    spans = layer_spans(frame.layers)
    return {
        "number": frame.number,
        "time": frame.time,
        "length": len(frame.raw),
        "summary": frame.summary,
        "layers": [
            {
                "name": x.name,
                "start": x.start,
                "end": x.end,
                "fields": x.fields,
                "spans": {k: list(v) for k, v in s.items()},
            }
            for x, s in zip(frame.layers, spans, strict=True)
        ],
        "checksums": [
            {
                "layer": c.layer,
                "carried": c.carried,
                "computed": c.computed,
                "verdict": c.verdict.value,
            }
            for c in frame.checksums
        ],
        "payload_hex": frame.payload.hex(),
        "hex": frame.raw.hex(),
    }


def checksum_counts(frames: Iterable[Frame]) -> dict[str, dict[str, int]]:
    """How many checksums of each layer had each verdict: {"TCP": {"valid": 12}, ...}."""
    pairs = Counter((c.layer, c.verdict) for f in frames for c in f.checksums)
    counts: dict[str, dict[str, int]] = {}
    for (layer, judged), n in pairs.items():
        counts.setdefault(layer, {})[judged.value] = n
    return counts


def checksum_summary(frames: list[Frame], names: dict[str, str]) -> list[Text]:
    """What the checksums say, with the offloaded ones explained rather than blamed."""
    lines = []
    for layer, verdicts in checksum_counts(frames).items():
        line = Text(f"{layer} checksums: ")
        for i, (v, n) in enumerate(sorted(verdicts.items())):
            line.append(", " if i else "")
            line.append(f"{n} {v}", style=VERDICT_STYLES[Verdict(v)])
        lines.append(line)
    offloaded = sorted(
        {
            name_of(f.src, names)
            for f in frames
            if any(c.verdict is Verdict.OFFLOADED for c in f.checksums)
        }
    )
    if offloaded:
        lines.append(
            Text(
                f"offloaded: sent by {', '.join(offloaded)}; {EXPLANATIONS[Verdict.OFFLOADED]}",
                style="yellow",
            )
        )
    return lines
