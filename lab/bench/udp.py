"""UDP under load: offered against achieved rate, for udp-shout and for a peer that is not ours.

Two echo servers in udp-shout's host, side by side: a copy of udp-shout with its
per-datagram log off (``SHOUT_LOG_DATAGRAMS=0``, checked in its environment), and socat
from Debian echoing every datagram back (``UDP4-LISTEN ... PIPE``: one peer, no fork), a
reference that is not the lab's code. socat's pipe is a byte stream: with its default
8 KiB buffer it read several queued datagrams at once and sent them back as one, which
counted as loss with no drop anywhere; ``-b`` of the datagram size keeps one per read,
and each answer's size is checked so that a merge is an error, not a loss.

For each offered rate the client host's load generator reports the rate it really sent
at and the rate answers came back at; the drops are counted on each server's own socket
(the drops column of /proc/net/udp), and on the sender's socket, so nothing else's
datagrams are counted. The curve is drawn ``Sizes.curves`` times: its loss onset must
agree.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from lab.api import Lab
from lab.bench.model import Bench, BenchError, Sizes, companion, remove, until
from lab.engine import helpers
from lab.errors import PicturesMissing
from lab.progress import Progress, silent

log = logging.getLogger("lab")

TARGET = "the rate where loss starts, against socat as a reference (no target)"
SHOUT_PORT, SOCAT_PORT = 8091, 8092
SIZE = 64
ONSET = 0.01  # a loss of more than 1% marks the onset


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


def _socat(net: Lab, host: str) -> helpers.Helper:
    # Without fork, socat serves the first peer and echoes all it sends: a fresh one per run.
    return companion(
        net.backend,
        f"socat-{SOCAT_PORT}",
        host,
        ["socat", "-T", "5", "-b", str(SIZE), f"UDP4-LISTEN:{SOCAT_PORT},reuseaddr", "PIPE"],
    )


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
    shout = _shout(net, host)
    try:
        until(lambda: _bound(net, host, SHOUT_PORT), "the benchmark's udp-shout")
        for curve in range(sizes.curves):
            points: dict[str, list[dict[str, Any]]] = {"udp-shout": [], "socat": []}
            for rate in sizes.rates:
                progress(f"curve {curve + 1}: {rate} datagrams/s")
                points["udp-shout"].append(_point(net, host, address, SHOUT_PORT, rate, sizes))
                socat = _socat(net, host)
                try:
                    until(lambda: _bound(net, host, SOCAT_PORT), "socat")
                    points["socat"].append(_point(net, host, address, SOCAT_PORT, rate, sizes))
                finally:
                    remove([socat])
            curves.append(
                {
                    "points": points,
                    "onset": {peer: onset(ps) for peer, ps in points.items()},
                }
            )
    finally:
        remove([shout])
    if plot is not None:
        _plot(curves, plot)
    onsets = [c["onset"]["udp-shout"] for c in curves]
    agree = len(set(onsets)) == 1
    summary = (
        f"udp-shout's loss passes 1% at {', '.join(str(o or 'none') for o in onsets)} offered/s "
        f"over {len(curves)} curves ({'the same' if agree else 'NOT the same'}); socat's at "
        f"{', '.join(str(c['onset']['socat'] or 'none') for c in curves)}"
    )
    data = {"curves": curves, "onsets_agree": agree, "plot": str(plot) if plot else ""}
    return Bench("udp", TARGET, None, summary, data)


def _bound(net: Lab, host: str, port: int) -> bool:
    try:
        drops(net, host, port)
    except BenchError:
        return False
    return True


def onset(points: list[dict[str, Any]]) -> int | None:
    return next((int(p["rate"]) for p in points if p["loss"] > ONSET), None)


def _plot(curves: list[dict[str, Any]], path: Path) -> None:
    """The loss curves as a picture, where matplotlib is installed (the numbers stand
    without it: a measurement is never lost for want of its picture)."""
    try:
        from lab.bench import udp_picture
    except PicturesMissing as exc:
        log.warning("no udp-loss picture: %s", exc.line())
        return
    udp_picture.udp_curves(curves, path)
