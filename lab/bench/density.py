"""How many named labs one machine holds: K labs started one after another, measured.

At each checkpoint (K = 1, 2, 5, 10, ...): the time each `lab up --name` took, memory
per lab from its containers' cgroups (working set, and the anonymous part: its
processes' own), idle CPU per lab over ``Sizes.idle_seconds`` (in its cgroups, and with
the containerd shims that run its healthchecks), and `dispatch` run in every lab. It
stops at K, at a lab that does not come up, below 1 GiB of free memory, or at its own
time limit; its labs are removed at the end (unless ``keep``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from lab.api import Lab
from lab.backends.engine import Engine
from lab.bench.model import Bench, BenchError, Sizes
from lab.engine import base_image
from lab.errors import LabError
from lab.experiments import EXPERIMENTS
from lab.experiments.model import run_experiment
from lab.progress import Progress, silent

TARGET = (
    "30 labs each passing dispatch, under 100 MB and 2% of a core per idle lab "
    "(its containers and the containerd shims that run their healthchecks)"
)


def why(last: dict[str, Any], stopped: str) -> str:
    """What the last checkpoint says about a missed target (the figures are its own)."""
    mean, anon = last["memory_mib_mean"], last["anon_mib_mean"]
    return (
        f"At K = {last['k']} ({stopped}): {mean:.0f} MiB per lab, of which {anon:.0f} MiB "
        "is its processes' own (anonymous memory: four Python servers; the hosts' init and "
        "sleep take under 1 MiB together). The rest is page cache the kernel counts as "
        "active: Docker here stores images on fuse-overlayfs, where every container reads "
        "the image through a FUSE mount of its own, so each Python container caches the "
        "standard library for itself (on overlay2 it would be shared), and it grows with "
        f"every run in a lab. CPU: {last['cpu_pct_per_lab']:.2f}% of a core per idle lab "
        "in its cgroups (one round of healthchecks every 30 s in a named lab), "
        f"{last['cpu_with_shims_pct_per_lab']:.2f}% with the containerd shims that run "
        "those checks' docker execs, outside the cgroups."
    )


T = TypeVar("T", int, float)
DENSITY_PREFIX = "density-"
MIN_AVAILABLE = 1024  # MiB: below this, starting one more lab would be the machine's end


def checkpoints(largest: int) -> list[int]:
    """The K where everything is measured: 1, 2, 5, then every 5, and the largest."""
    marks = [k for k in (1, 2, *range(5, largest + 1, 5)) if k <= largest]
    return sorted({*marks, largest}) if largest > 0 else []


def available_mib(meminfo: str) -> int:
    for line in meminfo.splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) // 1024
    return 0


@dataclass
class LabUsage:
    memory: dict[str, int]  # lab name -> bytes (working set of its containers)
    anon: dict[str, int]  # lab name -> bytes of anonymous memory (its processes' own)
    cpu: dict[str, float]  # lab name -> share of one core, its cgroups
    shims: dict[str, float]  # lab name -> share of one core, its containers' shims


def read(value: T | None, what: str, container: str) -> T:
    """A cgroup or /proc reading, or BenchError: a reading that is missing is not a 0."""
    if value is None:
        raise BenchError(
            f"no {what} reading for container {container[:12]} (its cgroup or /proc entry "
            "is not where this driver looks)",
            "run the benchmark on the Docker host itself",
        )
    return value


def lab_usage(client: Any, names: list[str], seconds: float) -> LabUsage:
    """Memory now, and CPU over ``seconds`` of idling, for each named lab."""
    from lab.engine import named, usage

    ids: dict[str, list[str]] = {name: [] for name in names}
    for c in client.api.containers(filters={"label": [named.NAME_LABEL]}):
        name = (c.get("Labels") or {}).get(named.NAME_LABEL, "")
        if name in ids:
            ids[name].append(str(c["Id"]))
    empty = [name for name, cids in ids.items() if not cids]
    if empty:
        raise BenchError(f"no containers found for lab {empty[0]}: nothing to read its usage from")
    every = {cid for cids in ids.values() for cid in cids}
    shim_pids = usage.shims(every)
    unshimmed = sorted(every - set(shim_pids))
    if unshimmed:  # its CPU would count as none: an error, never a 0
        raise BenchError(f"no containerd shim found for container {unshimmed[0][:12]}")

    def sample() -> tuple[dict[str, float], dict[str, float]]:
        cpu = {cid: read(usage.cpu_seconds(cid), "CPU", cid) for cid in every}
        shim = {
            cid: read(usage.shim_seconds(pid), "shim CPU", cid) for cid, pid in shim_pids.items()
        }
        return cpu, shim

    cpu0, shim0 = sample()
    t0 = time.monotonic()
    time.sleep(seconds)
    cpu1, shim1 = sample()
    elapsed = time.monotonic() - t0
    return LabUsage(
        memory={
            n: sum(read(usage.memory_bytes(c), "memory", c) for c in cids)
            for n, cids in ids.items()
        },
        anon={
            n: sum(read(usage.anon_bytes(c), "anonymous memory", c) for c in cids)
            for n, cids in ids.items()
        },
        cpu={n: sum(cpu1[c] - cpu0[c] for c in cids) / elapsed for n, cids in ids.items()},
        shims={n: sum(shim1[c] - shim0[c] for c in cids) / elapsed for n, cids in ids.items()},
    )


def run(net: Lab, sizes: Sizes, progress: Progress = silent) -> Bench:
    """Named labs started one after another until K = sizes.labs, the machine's end or the
    time limit; measured at each checkpoint; all removed at the end."""
    if not net.backend.beside_engine():  # cgroups and /proc here would read as zeros
        raise LabError(
            "density reads the containers' memory and CPU from the Docker host's cgroups "
            "and /proc, which this driver does not see (a container, or a remote engine)",
            "run `socklab bench density` on the Docker host (docs/install.md)",
        )
    from lab.api import open as open_lab
    from lab.engine import named

    lab = net.backend
    base = lab.compose
    env = {k: v for k, v in base.env.items() if k != base_image.ENV_KEY}
    marks = checkpoints(sizes.labs)
    started: list[str] = []
    points: list[dict[str, Any]] = []
    stopped = f"reached K = {sizes.labs}"
    t_start = time.monotonic()
    up_times: list[float] = []
    for name in [f"{DENSITY_PREFIX}{i}" for i in range(1, sizes.labs + 1)]:
        named.sweep(lab.client, named.project_of(name))  # a previous run's leftovers
    try:
        for k in range(1, sizes.labs + 1):
            spent = time.monotonic() - t_start
            mean_up = sum(up_times) / len(up_times) if up_times else 0.0
            if spent + 2 * mean_up + sizes.idle_seconds > sizes.budget_seconds:
                stopped = f"stopped at its time limit ({sizes.budget_seconds:.0f} s)"
                break
            free = available_mib(Path("/proc/meminfo").read_text())
            if free < MIN_AVAILABLE:
                stopped = f"stopped: {free} MiB of memory left"
                break
            name = f"{DENSITY_PREFIX}{k}"
            progress(f"lab {k}: {name}")
            net = open_lab(base.workdir, files=base.files, env=env, name=name, client=lab.client)
            t0 = time.monotonic()
            try:
                net.up(timeout=180, progress=progress, build=k == 1)
            except LabError as exc:
                stopped = f"stopped: lab {k} did not come up ({exc.line()})"
                break
            finally:
                started.append(name)
            up_times.append(time.monotonic() - t0)
            if k in marks:
                points.append(_checkpoint(lab, started, up_times, sizes, progress))
    finally:
        if not sizes.keep:
            progress(f"removing the {len(started)} labs")
            for name in started:
                named.sweep(lab.client, named.project_of(name))
                named.forget(name)
    largest = max((p["k"] for p in points if p["dispatch_passed"] == p["k"]), default=0)
    last = points[-1] if points else None
    met = judged(last, largest)
    summary = (
        f"{largest} labs all passing dispatch ({stopped}); at K = {last['k']}: "
        f"{last['memory_mib_mean']:.0f} MiB per lab (max {last['memory_mib_max']:.0f}), "
        f"{last['cpu_pct_per_lab']:.2f}% of a core per idle lab "
        f"({last['cpu_with_shims_pct_per_lab']:.2f}% with the shims), "
        f"lab up {last['up_s_mean']:.1f} s each"
        if last
        else f"nothing measured ({stopped})"
    )
    return Bench(
        "density",
        TARGET,
        met,
        summary,
        {"points": points, "stopped": stopped, "largest_k": largest},
        why="" if met or last is None else why(last, stopped),
    )


def judged(last: dict[str, Any] | None, largest: int) -> bool:
    """The target at the last checkpoint: 30 labs passing, 100 MB (MiB here) and 2% of a
    core per idle lab, the containerd shims' CPU counted as the target says. Pure."""
    return (
        last is not None
        and largest >= 30
        and last["memory_mib_max"] < 100 / 1.048576
        and last["cpu_with_shims_pct_per_lab"] < 2
    )


def _checkpoint(
    backend: Engine, names: list[str], up_times: list[float], sizes: Sizes, progress: Progress
) -> dict[str, Any]:
    from lab.api import open as open_lab

    k = len(names)
    passed = 0
    progress(f"K = {k}: dispatch in every lab")
    for name in names:
        net = open_lab(name=name, client=backend.client)
        try:
            net.wait_healthy(timeout=60)
            passed += run_experiment(EXPERIMENTS["dispatch"], net).passed
        except LabError:
            pass
    progress(f"K = {k}: idle for {sizes.idle_seconds:.0f} s, memory and CPU per lab")
    used = lab_usage(backend.client, names, sizes.idle_seconds)
    mib = [b / 2**20 for b in used.memory.values()]
    return {
        "k": k,
        "up_s_last": round(up_times[-1], 2),
        "up_s_mean": round(sum(up_times) / k, 2),
        "up_s_total": round(sum(up_times), 1),
        "dispatch_passed": passed,
        "memory_mib_mean": round(sum(mib) / k, 1),
        "memory_mib_max": round(max(mib), 1),
        "anon_mib_mean": round(sum(used.anon.values()) / 2**20 / k, 1),
        "cpu_pct_per_lab": round(100 * sum(used.cpu.values()) / k, 3),
        "cpu_with_shims_pct_per_lab": round(
            100 * (sum(used.cpu.values()) + sum(used.shims.values())) / k, 3
        ),
        "available_mib": available_mib(Path("/proc/meminfo").read_text()),
        "load": Path("/proc/loadavg").read_text().split()[:3],
    }
