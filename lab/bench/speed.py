"""Where users wait: `lab up`, the whole curriculum, a first start on a bare machine."""

from __future__ import annotations

import contextlib
import time

import docker.errors

from lab.api import Lab
from lab.bench.model import Bench, Sizes, Spread
from lab.engine import base_image
from lab.experiments import EXPERIMENTS
from lab.experiments.model import run_experiment
from lab.progress import Progress, silent

UP_TARGET = "lab up, images built, from nothing running to every service answering: under 2 s"
RUN_TARGET = "every built-in experiment, `lab run --all`: under 60 s in total"
COLD_TARGET = "a first lab up on a machine with no images: under 3 minutes"
# The waits that are the kernel's own timers, not the lab's choice (shown in BENCHMARKS.md).
KERNEL_TIMERS = {
    "failures": "TCP's retransmission timer after a partition (200 ms doubling: a few "
    "seconds of the row are TCP backing off before the cut is healed); 1 s probes the "
    "lesson reads silence from",
    "impaired-delivery": "TCP's retransmission timeouts at 10% and 30% loss (the backoff "
    "row), and 50 ms of delay per message",
    "db-kill": "the writer's reconnects while db restarts and replays its log",
}


def up(net: Lab, sizes: Sizes, progress: Progress = silent) -> Bench:
    runs: list[float] = []
    phases: list[dict[str, float]] = []
    for _ in range(max(1, min(sizes.repeats, 3))):
        progress("lab down, then lab up from built images")
        net.down()
        started = time.monotonic()
        net.up()
        runs.append(time.monotonic() - started)
        phases.append(dict(net.stack.up_phases))
    spread = Spread.of(runs)
    slowest = max(phases[-1], key=lambda k: phases[-1][k]) if phases[-1] else "?"
    return Bench(
        "up",
        UP_TARGET,
        spread.median < 2.0,
        f"lab up {spread.text(1, ' s')}; last run: "
        + ", ".join(f"{k} {v:.2f} s" for k, v in phases[-1].items())
        + f" (the most: {slowest})",
        {"seconds": spread.json(), "phases": phases},
    )


def curriculum(net: Lab, sizes: Sizes, progress: Progress = silent) -> Bench:
    durations: dict[str, float] = {}
    held: dict[str, bool] = {}
    for name, experiment in EXPERIMENTS.items():
        progress(f"experiment {name}")
        started = time.monotonic()
        result = run_experiment(experiment, net)
        durations[name] = round(time.monotonic() - started, 1)
        held[name] = result.passed
    total = sum(durations.values())
    failed = [n for n, ok in held.items() if not ok]
    return Bench(
        "curriculum",
        RUN_TARGET,
        total < 60 and not failed,
        f"all {len(durations)} experiments {total:.0f} s ("
        + ", ".join(f"{k} {v:.0f} s" for k, v in durations.items())
        + ")"
        + (f"; a claim did not hold in {', '.join(failed)}" if failed else "; every claim held"),
        {
            "seconds": durations,
            "total": round(total, 1),
            "passed": held,
            "kernel_timers": KERNEL_TIMERS,
        },
    )


def cold(net: Lab, sizes: Sizes, progress: Progress = silent) -> Bench:
    """A first start on a machine with no images: the base image path included."""
    progress("removing the lab, its service image and its local base image")
    net.down()
    for name in ("netlab-services:latest", base_image.local_tag()):
        with contextlib.suppress(docker.errors.ImageNotFound):
            net.stack.client.images.remove(name, force=True)
    progress("lab up from nothing (debootstrap, build, start)")
    started = time.monotonic()
    chosen = net.up(progress=progress)
    seconds = time.monotonic() - started
    return Bench(
        "cold",
        COLD_TARGET,
        seconds < 180,
        f"lab up from no images: {seconds:.0f} s ({chosen.path} base {chosen.image})",
        {"seconds": round(seconds, 1), "base": chosen.image, "path": chosen.path},
        why=""
        if seconds < 180
        else "debootstrap of the base image dominates; it depends on the mirror",
    )
