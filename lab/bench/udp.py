"""UDP under load: offered against achieved rate, for udp-shout and for a peer that is not ours.

Two echo servers in udp-shout's host, side by side: a copy of udp-shout with its
per-datagram log off (``SHOUT_LOG_DATAGRAMS=0``, checked in its environment), and socat
from Debian echoing every datagram back (``UDP4-LISTEN ... PIPE``: one peer, no fork), a
reference that is not the lab's code. socat's pipe is a byte stream: with its default
8 KiB buffer it read several queued datagrams at once and sent them back as one, which
counted as loss with no drop anywhere; ``-b`` of the datagram size keeps one per read,
and each answer's size is checked so that a merge is an error, not a loss. socat's
socket asks for udp-shout's receive buffer (1 MiB); both sockets' buffers as the kernel
granted them (`ss -m`) must be equal, or the curves would compare buffers, not servers.

For each offered rate the client host's load generator reports the rate it really sent
at and the rate answers came back at; the drops are counted on each server's own socket
(the drops column of /proc/net/udp), and on the sender's socket, so nothing else's
datagrams are counted. The onset, where loss passes 1%, is first bracketed on the
grid of ``Sizes.rates`` and then narrowed by bisection (``Sizes.bisections`` more
rates), and reported as the two rates that bracket it. The curve is drawn
``Sizes.curves`` times: its brackets must overlap.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab.api import Lab
from lab.bench.model import Bench, BenchError, Sizes, companion, remove, until
from lab.bench.report import onset_text
from lab.engine import helpers
from lab.errors import PicturesMissing
from lab.progress import Progress, silent

log = logging.getLogger("lab")

TARGET = "the rate where loss starts, against socat as a reference (no target)"
SHOUT_PORT, SOCAT_PORT = 8091, 8092
SIZE = 64
ONSET = 0.01  # a loss of more than 1% marks the onset
RCVBUF = 1 << 20  # udp-shout's own SO_RCVBUF (services/servers/udp_shout.py)


def drops(net: Lab, host: str, port: int) -> int:
    """The drop counter of the UDP socket bound to ``port`` in ``host`` (its own only)."""
    text = net.backend.run_in(host, ["cat", "/proc/net/udp"]).decode()
    for line in text.splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port:
            return int(fields[-1])
    raise BenchError(f"no UDP socket bound to {port} in {host}")


def _shout(net: Lab, host: str) -> helpers.Helper:
    container = companion(
        net.backend,
        "udp-shout",
        host,
        ["python3", "-m", "services.servers.udp_shout"],
        environment={
            "LAB_SERVICE": "bench-udp-shout",
            "SHOUT_PORT": str(SHOUT_PORT),
            "SHOUT_LOG_DATAGRAMS": "0",
        },
    )
    env = container.environment()
    if "SHOUT_LOG_DATAGRAMS=0" not in env:
        raise BenchError("the benchmark's udp-shout does not have its log off")
    return container


def socat_argv() -> list[str]:
    """socat echoing each datagram back, one per read, with udp-shout's receive buffer."""
    listen = f"UDP4-LISTEN:{SOCAT_PORT},reuseaddr,rcvbuf={RCVBUF}"
    return ["socat", "-T", "5", "-b", str(SIZE), listen, "PIPE"]


def _socat(net: Lab, host: str) -> helpers.Helper:
    # Without fork, socat serves the first peer and echoes all it sends: a fresh one per run.
    return companion(
        net.backend,
        f"socat-{SOCAT_PORT}",
        host,
        socat_argv(),
    )


def receive_buffer(ss_text: str, port: int) -> int | None:
    """The receive buffer the kernel granted the UDP socket bound to ``port`` (``rb`` of
    `ss -uanm`'s skmem line under it), or None when no such socket is listed. Pure."""
    lines = ss_text.splitlines()
    for i, line in enumerate(lines):
        fields = line.split()
        if len(fields) >= 4 and fields[3].rsplit(":", 1)[-1] == str(port):
            for after in lines[i + 1 : i + 2]:
                found = re.search(r"\brb(\d+)", after)
                if found:
                    return int(found.group(1))
    return None


def _same_buffers(net: Lab, host: str) -> int:
    """Both servers' granted receive buffers, which must be equal (the kernel caps a
    request at net.core.rmem_max, the same for both)."""
    text = net.backend.run_in(host, ["ss", "-uanm"]).decode()
    shout, socat = receive_buffer(text, SHOUT_PORT), receive_buffer(text, SOCAT_PORT)
    if shout is None or socat is None or shout != socat:
        raise BenchError(
            f"udp-shout's and socat's receive buffers differ (rb {shout} and {socat})",
            "the curves would compare buffers, not servers",
        )
    return shout


def _point(net: Lab, host: str, address: str, port: int, rate: int, sizes: Sizes) -> dict[str, Any]:
    before = drops(net, host, port)
    argv = ["python3", "-m", "services.probes.loadgen", "udp", address, str(port), str(rate)]
    argv += [f"{sizes.seconds:g}", str(SIZE)]
    result: dict[str, Any] = json.loads(
        net.backend.run_in(net.topology.client.name, argv, timeout=sizes.seconds + 30)
    )
    result["server_drops"] = drops(net, host, port) - before
    if result["received_bytes"] != result["received"] * SIZE:
        raise BenchError(
            f"answers on port {port} were not one per datagram "
            f"({result['received_bytes']} bytes in {result['received']} answers of {SIZE})",
            "an echo that merges datagrams cannot be a reference",
        )
    result["loss"] = round(1 - result["received"] / max(1, result["sent"]), 4)
    return result


def run(net: Lab, sizes: Sizes, progress: Progress = silent, plot: Path | None = None) -> Bench:
    host = net.topology.host_of("udp-shout").name
    address = net.topology.hosts[host].ip
    if not net.backend.run_in(host, ["sh", "-c", "command -v socat || true"]).strip():
        raise BenchError("the image has no socat, the UDP reference peer", "run `lab up` again")
    curves: list[dict[str, Any]] = []
    buffers: set[int] = set()
    shout = _shout(net, host)
    try:
        until(lambda: _bound(net, host, SHOUT_PORT), "the benchmark's udp-shout")

        def measure(peer: str, rate: int) -> dict[str, Any]:
            if peer == "udp-shout":
                return _point(net, host, address, SHOUT_PORT, rate, sizes)
            socat = _socat(net, host)  # without fork it serves one peer: a fresh one a run
            try:
                until(lambda: _bound(net, host, SOCAT_PORT), "socat")
                buffers.add(_same_buffers(net, host))
                return _point(net, host, address, SOCAT_PORT, rate, sizes)
            finally:
                remove([socat])

        for curve in range(sizes.curves):
            points: dict[str, list[dict[str, Any]]] = {"udp-shout": [], "socat": []}
            for rate in sizes.rates:
                progress(f"curve {curve + 1}: {rate} datagrams/s")
                for peer in points:
                    points[peer].append(measure(peer, rate))
            onsets = {
                peer: _narrowed(measure, peer, measured, sizes.bisections, progress)
                for peer, measured in points.items()
            }
            curves.append({"points": points, "onset": onsets})
    finally:
        remove([shout])
    if plot is not None:
        _plot(curves, plot)
    agree = {peer: overlap([c["onset"][peer] for c in curves]) for peer in ("udp-shout", "socat")}
    summary = (
        f"loss passes 1% (bracketed by bisection; curves: {len(curves)}; receive buffer "
        f"{RCVBUF // 1024} KiB asked by both, granted "
        f"{', '.join(f'{b // 1024} KiB' for b in sorted(buffers)) or 'unread'} to both): "
        + "; ".join(
            f"{peer} {', '.join(onset_text(c['onset'][peer]) for c in curves)}"
            + ("" if agree[peer] else " (the curves do NOT agree)")
            for peer in ("udp-shout", "socat")
        )
    )
    data = {
        "curves": curves,
        "onsets_agree": agree,
        "receive_buffer": sorted(buffers),
        "plot": str(plot) if plot else "",
    }
    return Bench("udp", TARGET, None, summary, data)


def _narrowed(
    measure: Callable[[str, int], dict[str, Any]],
    peer: str,
    measured: list[dict[str, Any]],
    steps: int,
    progress: Progress,
) -> list[int] | None:
    """One peer's onset on one curve: the grid's bracket, bisected; each point measured
    on the way joins the curve, which ends sorted by rate."""

    def loss(rate: int) -> float:
        progress(f"{peer}'s onset: bisecting at {rate}/s")
        point = measure(peer, rate)
        measured.append(point)
        return float(point["loss"])

    bracket = grid_bracket(measured)
    if bracket is not None and bracket[0] > 0:
        bracket = bisect(loss, *bracket, steps)
    measured.sort(key=lambda p: int(p["rate"]))
    return list(bracket) if bracket else None


def _bound(net: Lab, host: str, port: int) -> bool:
    try:
        drops(net, host, port)
    except BenchError:
        return False
    return True


def grid_bracket(points: list[dict[str, Any]]) -> tuple[int, int] | None:
    """The rates the onset lies between on the grid: the last rate before the first one
    past 1% (0 when the first rate already is), and that one; None when none is. Pure."""
    below = 0
    for p in sorted(points, key=lambda p: int(p["rate"])):
        if p["loss"] > ONSET:
            return below, int(p["rate"])
        below = int(p["rate"])
    return None


def bisect(loss: Callable[[int], float], below: int, above: int, steps: int) -> tuple[int, int]:
    """Narrow (below, above], loss at most 1% at ``below`` and past it at ``above``, by
    measuring the middle ``steps`` times (or until the two are within 1%). Pure, given
    ``loss``."""
    for _ in range(steps):
        if above - below <= max(1, above // 100):
            break
        middle = (below + above) // 2
        if loss(middle) > ONSET:
            above = middle
        else:
            below = middle
    return below, above


def overlap(brackets: list[list[int] | None]) -> bool:
    """Whether the curves agree: every bracket shares rates with every other (or no curve
    reached 1%). Pure."""
    if all(b is None for b in brackets):
        return True
    if any(b is None for b in brackets):
        return False
    known = [b for b in brackets if b is not None]
    return max(b[0] for b in known) <= min(b[1] for b in known)


def _plot(curves: list[dict[str, Any]], path: Path) -> None:
    """The loss curves as a picture, where matplotlib is installed (the numbers stand
    without it: a measurement is never lost for want of its picture)."""
    try:
        from lab.bench import udp_picture
    except PicturesMissing as exc:
        log.warning("no udp-loss picture: %s", exc.line())
        return
    udp_picture.udp_curves(curves, path)
