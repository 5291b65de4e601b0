"""impaired-delivery: the same numbered messages over TCP and UDP through a lossy link.

The loss is put on shouthost's link (frames arriving there are dropped at random,
see ``lab link``), so every frame the client sends still crosses the lab network
and is captured there: a TCP segment that was lost shows up twice (the original
and its retransmission), a lost UDP datagram shows up once and is never answered.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.chaos.impairment import Impairment
from lab.experiments.model import Claim, Context, Experiment, Needs, Observations, Result
from services.probes.loadgen import percentile
from services.probes.sockscript import Event
from services.protocols.sequence import encode, number_of

if TYPE_CHECKING:  # scapy loads slowly: imported where the capture is read
    from rich.console import RenderableType

    from lab.packets.dissect import Frame, Layer

LOSSES = (0, 10, 30)  # percent, on shouthost's link
DELAY_MS = 50  # the delay row, where the kernel has netem
COUNT = 300
INTERVAL_MS = 5
DRAIN_S = 3.0  # after the last send: room for TCP's retransmission timeouts (200 ms and up)
SIGMAS = 4  # UDP's loss must be within this many binomial standard deviations of the setting
SLOWER = 5  # resent TCP messages: their median latency against the loss-free median
UDP_SAME_MS = 5.0  # delivered UDP datagrams stay this close to the loss-free median


@dataclass
class Run:
    """One protocol through one link setting: what was sent, what came back, what crossed."""

    protocol: str
    link: str
    loss: float  # the configured percentage
    sent: int
    delivered: int
    in_order: bool
    missing: list[int]
    p50_ms: float
    p99_ms: float
    min_ms: float = float("nan")
    retransmissions: int = 0  # TCP: data segments sent again (from the capture)
    resent_p50_ms: float = float("nan")  # TCP: median latency of the messages sent again
    on_wire: int = 0  # frames carrying a message from the client, as captured
    sent_twice: list[int] = field(default_factory=list)  # UDP: numbers seen twice on the wire
    error: str = ""

    @property
    def share(self) -> float:
        return self.delivered / self.sent if self.sent else 0.0


def plain(data: dict[str, Any]) -> dict[str, Any]:
    """NaN (nothing to measure) as null: JSON has no NaN."""
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in data.items()}


def judge_run(protocol: str, link: str, loss: float, report: dict[str, Any]) -> Run:
    """The sender's own record: which numbers came back, in what order, how late."""
    sent = {int(n): float(t) for n, t in report["sent"]}
    received = [(int(n), float(t)) for n, t in report["received"]]
    numbers = [n for n, _ in received]
    latencies = [(t - sent[n]) * 1000 for n, t in received if n in sent]
    return Run(
        protocol=protocol,
        link=link,
        loss=loss,
        sent=len(sent),
        delivered=len(set(numbers)),
        in_order=numbers == sorted(numbers),
        missing=sorted(set(sent) - set(numbers)),
        p50_ms=round(percentile(latencies, 0.5), 3),
        p99_ms=round(percentile(latencies, 0.99), 3),
        min_ms=round(min(latencies, default=float("nan")), 3),
        error=str(report.get("error", "")),
    )


def latency_of(report: dict[str, Any], numbers: list[int]) -> float:
    """The median latency (ms) of the given messages, from the sender's record."""
    sent = {int(n): float(t) for n, t in report["sent"]}
    wanted = set(numbers)
    times = [(float(t) - sent[int(n)]) * 1000 for n, t in report["received"] if int(n) in wanted]
    return round(percentile(times, 0.5), 3)


def sender_events(
    report: dict[str, Any], protocol: str, link: str, host: str, server_ip: str
) -> list[Event]:
    """The sender's record as socket events: a send per message, a recv per answer.

    (Over TCP one recv may bring several answers; each is recorded when it came.)
    """
    sock = f"{protocol}-{link.replace(' ', '-').replace('%', 'pct')}"
    remote = f"{server_ip}:8080"
    sends = [
        Event(float(t), host, sock, protocol, "send", "", remote, "ok", 10, encode(int(n)).decode())
        for n, t in report["sent"]
    ]
    answers = [
        Event(
            float(t),
            host,
            sock,
            protocol,
            "recv",
            "",
            remote,
            "ok",
            10,
            encode(int(n)).decode().upper(),
        )
        for n, t in report["received"]
    ]
    return sorted(sends + answers, key=lambda e: e.t)


def toward(
    frames: list[Frame], protocol: str, src: str, dst: str, port: int
) -> Iterator[tuple[Frame, Layer]]:
    """The frames of ``protocol`` from ``src`` to ``dst``:``port``, with that layer."""
    for f in frames:
        layer = f.layer(protocol)
        if layer is not None and (f.src, f.dst, layer.fields["dst_port"]) == (src, dst, port):
            yield f, layer


def tcp_retransmissions(
    frames: list[Frame], src: str, dst: str, port: int
) -> tuple[int, int, list[int]]:
    """Data segments src->dst:port: (how many, how many repeated bytes already sent,
    the numbers of the messages those repeats carried)."""
    highest: dict[int, int] = {}  # client port -> end of the highest byte seen, relative
    first: dict[int, int] = {}
    segments = repeats = 0
    resent: set[int] = set()
    for f, tcp in toward(frames, "TCP", src, dst, port):
        size = len(f.payload)
        if not size:
            continue
        flow = int(tcp.fields["src_port"])
        seq = int(tcp.fields["seq"])
        start = (seq - first.setdefault(flow, seq)) % 2**32
        segments += 1
        if flow in highest and start < highest[flow]:
            repeats += 1
            resent.update(
                n for line in f.payload.split(b"\n") if (n := number_of(line)) is not None
            )
        highest[flow] = max(highest.get(flow, 0), start + size)
    return segments, repeats, sorted(resent)


def udp_numbers(frames: list[Frame], src: str, dst: str, port: int) -> Counter[int]:
    """How often each numbered datagram src->dst:port appears on the wire."""
    seen: Counter[int] = Counter()
    for f, _ in toward(frames, "UDP", src, dst, port):
        number = number_of(f.payload)
        if number is not None:
            seen[number] += 1
    return seen


def tolerance(loss_percent: float, count: int) -> float:
    """How far (in percentage points) UDP's observed loss may stray from the setting."""
    p = loss_percent / 100
    return 100 * SIGMAS * math.sqrt(p * (1 - p) / count) if count else 100.0


def run_of(data: dict[str, Any]) -> Run:
    """A recorded run back as a Run (JSON has no NaN: null stands for it)."""
    values: dict[str, Any] = {k: float("nan") if v is None else v for k, v in data.items()}
    return Run(**values)


class ImpairedDelivery(Experiment):
    name = "impaired-delivery"
    needs = Needs(processes={"tcp-shout": ("8080/tcp",), "udp-shout": ("8080/udp",)})
    timeline = False  # thousands of numbered messages: the table and picture say it
    question = "What does a lossy link do to TCP and to UDP?"
    claims = (
        Claim(
            "tcp-all-in-order",
            f"TCP delivers all {COUNT} messages, in order, at "
            + ", ".join(f"{x}%" for x in LOSSES)
            + " loss",
        ),
        Claim(
            "tcp-retransmits",
            "...because the sender retransmits: the capture shows no segment sent twice "
            "without loss, and segments sent again at every loss rate",
        ),
        Claim(
            "tcp-pays-in-time",
            f"TCP pays in time: a message whose segment was lost waits until the loss is "
            f"noticed and it is sent again, so the messages TCP resent took at least "
            f"{SLOWER}x the loss-free median",
        ),
        Claim(
            "udp-loses-its-share",
            f"UDP loses about the configured share (within {SIGMAS} binomial standard "
            "deviations) and says nothing about it",
        ),
        Claim(
            "udp-never-resends",
            "UDP never sends a datagram twice: each number crosses the wire once, lost or not",
        ),
        Claim(
            "delay-is-a-floor",
            f"Delay is a floor, not a loss: with {DELAY_MS} ms added to shouthost's link, "
            f"every message arrives over both, and none in under {DELAY_MS} ms",
        ),
        Claim(
            "udp-unhurried",
            f"The UDP datagrams that do arrive are as quick as without loss (median within "
            f"{UDP_SAME_MS:g} ms)",
        ),
    )

    def __init__(self, losses: tuple[int, ...] = LOSSES, count: int = COUNT) -> None:
        self.losses = losses
        self.count = count

    def run(self, ctx: Context) -> None:
        from lab.packets import dissect

        lab = ctx.lab
        client = lab.topology.client.name
        server = lab.topology.host_of("tcp-shout")
        client_ip = ctx.ip(client)
        runs: list[Run] = []
        settings = [(f"loss {x}%", Impairment(loss=x), float(x)) for x in self.losses]
        settings.append((f"delay {DELAY_MS}ms", Impairment(delay=DELAY_MS), 0.0))
        with tempfile.TemporaryDirectory(prefix="netlab-impaired-") as folder:
            for label, impairment, loss in settings:
                pcap = Path(folder) / "link.pcap"
                with (
                    lab.impaired(server.name, impairment) as how,
                    lab.capture(pcap, offload=True, purpose="capture-impaired"),
                ):
                    reports = {p: self._send(ctx, client, p, server.ip) for p in ("tcp", "udp")}
                if how:
                    ctx.facts["delay_by"] = how
                frames = dissect.read(pcap)
                for protocol, report in reports.items():
                    ctx.events.extend(sender_events(report, protocol, label, client, server.ip))
                    run = judge_run(protocol, label, loss, report)
                    if protocol == "tcp":
                        run.on_wire, run.retransmissions, resent = tcp_retransmissions(
                            frames, client_ip, server.ip, 8080
                        )
                        run.resent_p50_ms = latency_of(report, resent)
                    else:
                        seen = udp_numbers(frames, client_ip, server.ip, 8080)
                        run.on_wire = sum(seen.values())
                        run.sent_twice = sorted(n for n, k in seen.items() if k > 1)
                    runs.append(run)
        ctx.facts["deliveries"] = [plain(asdict(r)) for r in runs]
        ctx.facts["count"] = self.count

    def _send(self, ctx: Context, host: str, protocol: str, server_ip: str) -> dict[str, Any]:
        argv = ["python3", "-m", "services.protocols.sequence", protocol, server_ip, "8080"]
        argv += [str(self.count), str(INTERVAL_MS), str(DRAIN_S), repr(ctx.t0)]
        report: dict[str, Any] = json.loads(ctx.lab.host(host).exec(argv, timeout=120))
        return report

    def judge(self, seen: Observations) -> dict[str, tuple[bool, str]]:
        return self.judge_runs([run_of(d) for d in seen.facts["deliveries"]])

    def tables(self, result: Result) -> list[RenderableType]:
        from lab.views import render

        return [render.deliveries_table(result.facts["deliveries"])]

    def pictures(
        self, result: Result, folder: Path, frames: list[Frame] | None = None
    ) -> list[Path]:
        from lab.views import plots  # matplotlib loads slowly; only pictures need it

        return [plots.delivery(result.facts["deliveries"], folder / "delivery.png")]

    def judge_runs(self, runs: list[Run]) -> dict[str, tuple[bool, str]]:
        by = {(r.protocol, r.loss): r for r in runs if r.link.startswith("loss")}
        tcp = [by[("tcp", float(x))] for x in self.losses]
        udp = [by[("udp", float(x))] for x in self.losses]
        base_udp = udp[0]
        findings: dict[str, tuple[bool, str]] = {}
        findings["tcp-all-in-order"] = (
            all(r.delivered == r.sent and r.in_order and not r.error for r in tcp),
            "; ".join(
                f"{r.link}: {r.delivered}/{r.sent} delivered, "
                f"{'in order' if r.in_order else 'OUT OF ORDER'}{', ' + r.error if r.error else ''}"
                for r in tcp
            ),
        )
        repeats = [r.retransmissions for r in tcp]
        findings["tcp-retransmits"] = (
            repeats[0] == 0 and all(x > 0 for x in repeats[1:]),
            "; ".join(
                f"{r.link}: {r.retransmissions} of {r.on_wire} data segments were retransmissions"
                for r in tcp
            ),
        )
        base_tcp = tcp[0]
        findings["tcp-pays-in-time"] = (
            all(r.resent_p50_ms >= SLOWER * base_tcp.p50_ms for r in tcp[1:]),
            f"{base_tcp.link}: median {base_tcp.p50_ms:.2f} ms; "
            + "; ".join(
                f"{r.link}: median of the resent messages {r.resent_p50_ms:.1f} ms "
                f"(all messages: p50 {r.p50_ms:.1f} ms, p99 {r.p99_ms:.1f} ms)"
                for r in tcp[1:]
            ),
        )
        within = []
        notes = []
        for r in udp:
            observed = 100 * (1 - r.share)
            allowed = tolerance(r.loss, r.sent)
            within.append(abs(observed - r.loss) <= max(allowed, 100 / max(r.sent, 1)))
            lost = ", ".join(map(str, r.missing[:8])) + (" ..." if len(r.missing) > 8 else "")
            notes.append(
                f"{r.link}: {observed:.1f}% lost (allowed {r.loss:g} ± {allowed:.1f}), "
                f"no error raised{f'; lost: {lost}' if r.missing else ''}"
            )
        findings["udp-loses-its-share"] = (
            all(within) and all(not r.error for r in udp),
            "; ".join(notes),
        )
        findings["udp-never-resends"] = (
            all(not r.sent_twice and r.on_wire == r.sent for r in udp),
            "; ".join(
                f"{r.link}: {r.on_wire} datagrams on the wire for {r.sent} sent, "
                f"{len(r.sent_twice)} seen twice"
                for r in udp
            ),
        )
        delayed = [r for r in runs if r.link.startswith("delay")]
        findings["delay-is-a-floor"] = (
            len(delayed) == 2
            and all(r.delivered == r.sent and r.min_ms >= DELAY_MS for r in delayed),
            "; ".join(
                f"{r.link}, {r.protocol.upper()}: {r.delivered}/{r.sent} delivered, "
                f"fastest {r.min_ms:.1f} ms, p50 {r.p50_ms:.1f} ms"
                for r in delayed
            )
            or "no delay row ran",
        )
        findings["udp-unhurried"] = (
            all(abs(r.p50_ms - base_udp.p50_ms) <= UDP_SAME_MS for r in udp[1:]),
            "; ".join(f"{r.link}: p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms" for r in udp),
        )
        return findings
