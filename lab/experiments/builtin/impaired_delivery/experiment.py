"""impaired-delivery: the same numbered messages over TCP and UDP through a lossy link.

The loss is put on shouthost's link (frames arriving there are dropped at random,
see ``lab link``), so every frame the client sends still crosses the lab network
and is captured there: a TCP segment that was lost shows up twice (the original
and its retransmission), a lost UDP datagram shows up once and is never answered.
"""

from __future__ import annotations

import itertools
import json
import math
import tempfile
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.chaos.impairment import Impairment
from lab.experiments.model import Claim, Context, Experiment, Needs, Observations, Result
from lab.names import PROJECT
from lab.packets import dissect
from lab.services.probes.loadgen import percentile
from lab.services.probes.sockscript import Event
from lab.services.protocols.sequence import encode, number_of

if TYPE_CHECKING:
    from rich.console import RenderableType

    from lab.packets.dissect import Frame, Layer

LOSSES = (0, 10, 30)  # percent, on shouthost's link
DELAY_MS = 50  # the delay row, where the kernel has netem
COUNT = 300
INTERVAL_MS = 5
# UDP: how long to wait for late answers after the last send (a datagram is never resent).
# TCP: how long to wait once the kernel has nothing left unacknowledged; until then the
# sender waits as long as TCP goes on resending (see services/probes/numbered.py).
DRAIN_S = 3.0
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
    timeouts: int = 0  # TCP: retransmission timeouts the sender's kernel counted
    loss_probes: int = 0  # TCP: tail loss probes the sender's kernel counted
    waited_s: float = 0.0  # how long the sender watched after its last send
    backoff_ms: list[float] = field(default_factory=list)  # TCP: the gaps between the sends
    # of the segment sent most often: a retransmission timer that doubles
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
        timeouts=int(report.get("kernel", {}).get("TCPTimeouts", 0)),
        loss_probes=int(report.get("kernel", {}).get("TCPLossProbes", 0)),
        waited_s=float(report.get("waited_after_last_send_s", 0.0)),
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


@dataclass(frozen=True)
class Resent:
    """What a capture shows of one TCP flow's data segments."""

    segments: int  # data segments on the wire
    repeats: int  # ...of which repeated bytes already sent
    numbers: list[int]  # the messages those repeats carried
    backoff_ms: list[float]  # gaps between the sends of the segment sent most often


def tcp_retransmissions(frames: list[Frame], src: str, dst: str, port: int) -> Resent:
    """Data segments src->dst:port, and which of them were sent again."""
    highest: dict[int, int] = {}  # client port -> end of the highest byte seen, relative
    first: dict[int, int] = {}
    sends: dict[tuple[int, int], list[float]] = {}  # (flow, start) -> when it was sent
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
        sends.setdefault((flow, start), []).append(f.time)
        if flow in highest and start < highest[flow]:
            repeats += 1
            resent.update(
                n for line in f.payload.split(b"\n") if (n := number_of(line)) is not None
            )
        highest[flow] = max(highest.get(flow, 0), start + size)
    times = max(sends.values(), key=len, default=[])
    gaps = [round((b - a) * 1000, 1) for a, b in itertools.pairwise(times)]
    return Resent(segments, repeats, sorted(resent), gaps)


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
            "...because the sender retransmits: at every loss rate the capture shows segments "
            "sent again, and without loss every segment sent twice is one the sender's own "
            "timers sent (a tail loss probe, or a retransmission timeout), as its kernel "
            "counted: nothing repaired a loss that did not happen",
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
        lab = ctx.lab
        client = lab.topology.client.name
        server = lab.topology.host_of("tcp-shout")
        client_ip = ctx.ip(client)
        runs: list[Run] = []
        settings = [(f"loss {x}%", Impairment(loss=x), float(x)) for x in self.losses]
        settings.append((f"delay {DELAY_MS}ms", Impairment(delay=DELAY_MS), 0.0))
        with tempfile.TemporaryDirectory(prefix=f"{PROJECT}-impaired-") as folder:
            for label, impairment, loss in settings:
                pcap = Path(folder) / "link.pcap"
                # TCP and UDP side by side: one capture, told apart by protocol, and the
                # loss is drawn for each frame on its own, whichever it carries.
                with (
                    lab.impaired(server.name, impairment) as how,
                    lab.capture(pcap, offload=True, purpose="capture-impaired"),
                    ThreadPoolExecutor(max_workers=2) as pool,
                ):
                    sent = {
                        p: pool.submit(self._send, ctx, client, p, server.ip)
                        for p in ("tcp", "udp")
                    }
                    reports = {p: future.result() for p, future in sent.items()}
                if how:
                    ctx.facts["delay_by"] = how
                frames = dissect.read(pcap)
                for protocol, report in reports.items():
                    ctx.record(sender_events(report, protocol, label, client, server.ip))
                    run = judge_run(protocol, label, loss, report)
                    if protocol == "tcp":
                        resent = tcp_retransmissions(frames, client_ip, server.ip, 8080)
                        run.on_wire, run.retransmissions = resent.segments, resent.repeats
                        run.backoff_ms = resent.backoff_ms
                        run.resent_p50_ms = latency_of(report, resent.numbers)
                    else:
                        seen = udp_numbers(frames, client_ip, server.ip, 8080)
                        run.on_wire = sum(seen.values())
                        run.sent_twice = sorted(n for n, k in seen.items() if k > 1)
                    runs.append(run)
        ctx.facts["deliveries"] = [plain(asdict(r)) for r in runs]
        ctx.facts["count"] = self.count

    def _send(self, ctx: Context, host: str, protocol: str, server_ip: str) -> dict[str, Any]:
        argv = ["python3", "-m", "services.probes.numbered", protocol, server_ip, "8080"]
        argv += [str(self.count), str(INTERVAL_MS), str(DRAIN_S), repr(ctx.t0)]
        report: dict[str, Any] = json.loads(ctx.lab.host(host).exec(argv, timeout=180))
        return report

    def judge(self, seen: Observations) -> dict[str, tuple[bool, str]]:
        return self.judge_runs([run_of(d) for d in seen.facts["deliveries"]])

    def tables(self, result: Result) -> list[RenderableType]:
        from lab.views import render

        return [render.deliveries_table(result.facts["deliveries"])]

    def pictures(
        self, result: Result, folder: Path, frames: list[Frame] | None = None
    ) -> list[Path]:
        from lab.experiments.builtin.impaired_delivery import picture  # matplotlib: slow

        return [picture.delivery(result.facts["deliveries"], folder / "delivery.png")]

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
                f"{'in order' if r.in_order else 'OUT OF ORDER'}"
                f"{', ' + r.error if r.error else ''}"
                + (f" (the last {r.waited_s:.1f} s after the last send)" if r.waited_s > 1 else "")
                + (
                    f"; one segment sent {len(r.backoff_ms) + 1} times, "
                    f"{' then '.join(f'{g:.0f}' for g in r.backoff_ms)} ms apart"
                    if len(r.backoff_ms) > 1
                    else ""
                )
                for r in tcp
            ),
        )
        clean = tcp[0]
        findings["tcp-retransmits"] = (
            clean.retransmissions <= clean.timeouts + clean.loss_probes
            and all(r.retransmissions > 0 for r in tcp[1:]),
            "; ".join(
                f"{r.link}: {r.retransmissions} of {r.on_wire} data segments were retransmissions"
                + (
                    f" ({r.loss_probes} tail loss probes, {r.timeouts} timeouts counted by "
                    f"the sender's kernel)"
                    if r is clean
                    else ""
                )
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
