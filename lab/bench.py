"""Benchmarks: the lab's services measured against real peers, on this machine, in one run.

  redis      redis-benchmark (Debian's redis-tools, from the client host) against db and
             against a real redis-server on the same network, SET and GET, 50 clients,
             without and with pipelining (16). db's appendfsync is set to `no` and Redis
             runs without persistence, so both do the same work.
  c10k       10,000 concurrent connections to tcp-shout, each answered and then held;
             tcp-shout's memory per held connection; round-trip latency of 100 active
             clients while the rest stay idle.
  udp        offered datagram rate against delivered rate, the loss and the receive-buffer
             drops the kernel counted on shouthost; drawn as a curve.
  cycle      the lab cycle: `lab up` from built images to all healthy, and every experiment.
  cold       a first `lab up` with no images at all (removes them first; run it on purpose).
  density    how many named labs this machine holds: K labs started one after another
             (`lab up --name`), and at K = 1, 2, 5, 10, 15, 20, 25, 30...: the time each
             took to come up, the memory each holds (its containers' cgroups, as `docker
             stats` counts it), the CPU each takes when idle (cgroups, and the shims that
             run its healthchecks), and whether every one passes `dispatch`. It stops at
             the largest K asked for, when a lab no longer comes up, when memory runs
             short, or at its own time limit; and removes every lab it started. Not run
             unless named.

Benchmarks are commands, not tests: the test suite only runs each on a tiny setting.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import docker.errors

from lab.engine import base_image, helpers
from lab.engine.session import AttachedExec
from lab.engine.stack import Stack
from lab.errors import LabError
from lab.experiments import EXPERIMENTS
from lab.experiments.model import run_experiment
from lab.progress import Progress, silent
from lab.waiting import wait_until

TARGETS = {
    "redis": "db at 0.5x Redis or better, with and without pipelining",
    "c10k": "10,000 connections served, p99 under 50 ms, under 10 KB per idle connection",
    "udp": "the rate where loss starts (no target)",
    "cycle": "lab up under 3 s warm, every experiment under 90 s",
    "cold": "a first lab up on a machine with no images under 3 minutes",
    "density": "30 labs each passing dispatch, under 100 MB and 2% of a core per idle lab",
}


@dataclass
class Bench:
    name: str
    target: str
    met: bool | None  # None: no target, or could not be measured here
    summary: str
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def why(self) -> str:
        """Why a target was missed, from what was measured and profiled."""
        return WHY.get(self.name, "") if self.met is False else ""


WHY = {
    "redis": (
        "db is one CPython process doing in the interpreter what Redis does in C. Profiled "
        "under redis-benchmark -P 16, most of its time went to parsing RESP; a tighter "
        "parser took pipelined SET from 51k to 81k requests/s, and what is left is the "
        "per-command cost of parsing, dispatching and encoding in Python. Pipelining "
        "removes a network round trip per command, which was most of Redis's cost but "
        "little of db's, so the ratio is lowest with -P 16. Reaching 0.5x would take the "
        "protocol code out of Python, which the design rules out: the services stay on "
        "the standard library."
    ),
    "cycle": (
        "Measured from `lab up` to the last healthcheck passing: `docker compose up` alone "
        "takes about 1.8 s here to create seven containers on fuse-overlayfs, and Docker "
        "runs a container's first healthcheck one interval (1 s) after it starts. Hosts no "
        "longer wait to be healthy before their processes start, which saved about a "
        "second. The experiments take longer than 90 s because two of them wait on "
        "purpose: the failure matrix bounds each probe at 1 s and waits up to 15 s for "
        "TCP's backed-off retransmission after a partition (6 faults x 5 clients), and "
        "db-kill restarts db a dozen times."
    ),
    "cold": "debootstrap of the base image dominates; it depends on the mirror's speed.",
    "density": (
        "Thirty labs come up and all pass dispatch; memory is what misses. Of each lab's "
        "~98 MiB, 43 MiB is its processes' own (four Python servers, about 10.5 MiB each; "
        "the hosts' init and sleep, which replaced a Python init of ~7 MiB each, under 1 "
        "MiB together). The rest is page cache the kernel counts as active: this machine's "
        "Docker stores images on fuse-overlayfs, where every container reads the image "
        "through a FUSE mount of its own, so each Python container caches the standard "
        "library for itself (on overlay2 it would be shared). It grows with every run in a "
        "lab (86 MiB after one dispatch, 98 after eight). CPU: 1.2% of a core per idle lab "
        "in its cgroups, one round of healthchecks every 30 s (it was 21.5%, plus 34% in the "
        "shims, with checks every second); the containerd shims that run those docker execs "
        "add about 2% more outside the cgroups."
    ),
}


@dataclass(frozen=True)
class Sizes:
    requests: int = 100_000
    connections: int = 10_000
    active: int = 100
    rounds: int = 100
    rates: tuple[int, ...] = (2_000, 5_000, 10_000, 20_000, 40_000, 80_000)
    udp_seconds: float = 2.0
    labs: int = 30  # density: the largest K
    idle_seconds: float = 60.0  # density: the window idle CPU is measured over (2 intervals)
    budget_seconds: float = 2400.0  # density: its own time limit
    keep: bool = False  # density: leave the labs up (`lab ls`; `lab down --all` removes them)

    @classmethod
    def tiny(cls) -> Sizes:
        return cls(
            requests=2_000,
            connections=50,
            active=5,
            rounds=5,
            rates=(500, 1_000),
            udp_seconds=0.5,
            labs=2,
            idle_seconds=5.0,
            budget_seconds=600.0,
        )


# --- redis ---------------------------------------------------------------------------


def parse_redis_benchmark(csv_text: str) -> dict[str, float]:
    """requests per second by test name, from `redis-benchmark --csv`."""
    rows = list(csv.reader(io.StringIO(csv_text)))
    if rows and rows[0] and rows[0][0] == "test":
        rows = rows[1:]
    return {row[0]: float(row[1]) for row in rows if len(row) >= 2}


def _redis_benchmark(lab: Stack, host: str, requests: int, pipeline: int) -> dict[str, float]:
    out = lab.run_in(
        lab.topology.client.name,
        [
            "redis-benchmark",
            "-h",
            host,
            "-p",
            "6379",
            "-c",
            "50",
            "-n",
            str(requests),
            "-t",
            "set,get",
            "-P",
            str(pipeline),
            "--csv",
        ],
        timeout=max(20.0, requests / 2000),  # a frozen db must end the run, not hang it
    )
    return parse_redis_benchmark(out.decode())


def redis(lab: Stack, sizes: Sizes, progress: Progress = silent) -> Bench:
    image = lab.container(lab.topology.client.name).image
    assert image is not None  # a running container has its image
    name = f"{lab.topology.project}-bench-redis"
    # A failing probe is an error, reported as one; only a clean "not there" is a skip.
    probe = lab.run_in(lab.topology.client.name, ["sh", "-c", "command -v redis-server || true"])
    if not probe.strip():
        return Bench(
            "redis",
            TARGETS["redis"],
            None,
            f"not measured: the image ({image.tags[0] if image.tags else image.id}) has no "
            "redis-server (the official python base lacks it; the local base has it)",
        )
    progress("starting redis-server beside db")
    container = lab.client.containers.run(
        image,
        [
            "redis-server",
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "no",
        ],
        name=name,
        detach=True,
        user="10001:10001",
        read_only=True,
        cap_drop=["ALL"],
        security_opt=["no-new-privileges:true"],
        mem_limit="256m",
        network=lab.network().name,
        labels=helpers.labels(lab, "bench", "redis"),
    )
    try:
        container.reload()
        ip = container.attrs["NetworkSettings"]["Networks"][lab.network().name]["IPAddress"]
        _wait_for_redis(lab, ip)
        _db_policy(lab, "no")
        table: dict[str, dict[str, float]] = {}
        for pipeline in (1, 16):
            progress(f"redis-benchmark -P {pipeline} against db")
            table[f"db P{pipeline}"] = _redis_benchmark(lab, "db", sizes.requests, pipeline)
            progress(f"redis-benchmark -P {pipeline} against redis-server")
            table[f"redis P{pipeline}"] = _redis_benchmark(lab, ip, sizes.requests, pipeline)
    finally:
        _db_policy(lab, "always")
        container.remove(force=True)
    ratios = {
        f"{test} P{p}": table[f"db P{p}"].get(test, 0) / table[f"redis P{p}"][test]
        for p in (1, 16)
        for test in ("SET", "GET")
        if table[f"redis P{p}"].get(test)
    }
    met = bool(ratios) and min(ratios.values()) >= 0.5
    summary = ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items())
    return Bench(
        "redis",
        TARGETS["redis"],
        met,
        f"db/Redis: {summary}",
        {"requests_per_second": table, "ratios": ratios},
    )


def _wait_for_redis(lab: Stack, ip: str) -> None:
    def pong() -> bool:
        try:
            argv = ["redis-cli", "-h", ip, "PING"]
            return b"PONG" in lab.run_in(lab.topology.client.name, argv, timeout=5)
        except LabError:
            return False

    wait_until(pong, 30, "redis-server for the benchmark", poll=0.2)


def _db_policy(lab: Stack, policy: str) -> None:
    lab.run_in(
        lab.topology.client.name,
        ["redis-cli", "-h", "db", "CONFIG", "SET", "appendfsync", policy],
        timeout=10,
    )


# --- c10k ---------------------------------------------------------------------------------


def rss_kb(lab: Stack, service: str) -> int:
    """Resident memory of a service's process, read from /proc inside its host."""
    host = lab.topology.host_of(service).name
    pid = next(r.pid for r in lab.port_table(host) if r.service == service and r.pid)
    status = lab.run_in(host, ["cat", f"/proc/{pid}/status"]).decode()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))


def c10k(lab: Stack, sizes: Sizes, progress: Progress = silent) -> Bench:
    before = rss_kb(lab, "tcp-shout")
    progress(f"opening {sizes.connections} connections to tcp-shout")
    gen = AttachedExec(
        lab.client,
        lab.container(lab.topology.client.name),
        [
            "python3",
            "-m",
            "services.probes.loadgen",
            "c10k",
            "tcp-shout",
            "8080",
            str(sizes.connections),
            str(sizes.active),
            str(sizes.rounds),
        ],
    )
    try:
        held = json.loads(gen.read_line())
        during = rss_kb(lab, "tcp-shout")
        progress(f"{held['held']} held; {sizes.active} active clients measuring round trips")
        gen.end_input()
        latency = json.loads(gen.read_to_end())
    finally:
        gen.close()
    per_connection = (during - before) * 1024 / max(1, held["held"])
    met = (
        held["held"] == sizes.connections and latency["p99_ms"] < 50 and per_connection < 10 * 1024
    )
    return Bench(
        "c10k",
        TARGETS["c10k"],
        met,
        f"{held['held']}/{sizes.connections} served and held; p50 {latency['p50_ms']} ms, "
        f"p99 {latency['p99_ms']} ms for {latency['active']} active; "
        f"{per_connection / 1024:.1f} KB of server memory per held connection",
        {
            **held,
            **latency,
            "rss_before_kb": before,
            "rss_held_kb": during,
            "bytes_per_connection": round(per_connection),
        },
    )


# --- udp ---------------------------------------------------------------------------------


def _udp_drops(lab: Stack) -> int:
    """RcvbufErrors from /proc/net/snmp in shouthost: datagrams the kernel had no room for."""
    text = lab.run_in("shouthost", ["cat", "/proc/net/snmp"]).decode()
    udp = [line.split() for line in text.splitlines() if line.startswith("Udp:")]
    header, values = udp[0], udp[1]
    return int(values[header.index("RcvbufErrors")])


def udp(lab: Stack, sizes: Sizes, progress: Progress = silent, plot: Path | None = None) -> Bench:
    points = []
    for rate in sizes.rates:
        progress(f"udp at {rate} datagrams/s")
        drops_before = _udp_drops(lab)
        out = lab.run_in(
            lab.topology.client.name,
            [
                "python3",
                "-m",
                "services.probes.loadgen",
                "udp",
                "udp-shout",
                "8080",
                str(rate),
                str(sizes.udp_seconds),
                "64",
            ],
        )
        result = json.loads(out)
        result["kernel_drops"] = _udp_drops(lab) - drops_before
        result["delivered_rate"] = round(result["received"] / max(result["seconds"], 1e-9))
        result["loss"] = round(1 - result["received"] / max(1, result["sent"]), 4)
        points.append(result)
    onset = next((p["rate"] for p in points if p["loss"] > 0.01), None)
    if plot is not None:
        _plot_udp(points, plot)
    summary = (
        f"loss passes 1% at {onset} datagrams/s"
        if onset
        else f"no loss above 1% up to {sizes.rates[-1]} datagrams/s"
    )
    return Bench("udp", TARGETS["udp"], None, summary, {"points": points, "loss_onset": onset})


def _plot_udp(points: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6), dpi=100)
    offered = [p["rate"] for p in points]
    left.plot(offered, offered, "--", color="#95a5a6", label="offered")
    left.plot(
        offered, [p["delivered_rate"] for p in points], "o-", color="#2980b9", label="answered"
    )
    left.set_xlabel("offered datagrams / s")
    left.set_ylabel("datagrams / s")
    left.legend(frameon=False)
    right.plot(offered, [100 * p["loss"] for p in points], "o-", color="#c0392b", label="lost (%)")
    right.set_xlabel("offered datagrams / s")
    right.set_ylabel("% lost")
    fig.suptitle("udp-shout under load: offered against answered", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


# --- the lab cycle --------------------------------------------------------------------------


def cycle(lab: Stack, sizes: Sizes, progress: Progress = silent) -> Bench:
    from lab.api import Lab

    net = Lab(lab)
    progress("lab down, then lab up from built images")
    net.down()
    t0 = time.monotonic()
    net.up()
    up = time.monotonic() - t0
    durations = {}
    for name, experiment in EXPERIMENTS.items():
        progress(f"experiment {name}")
        t0 = time.monotonic()
        run_experiment(experiment, net)
        durations[name] = round(time.monotonic() - t0, 1)
    total = sum(durations.values())
    return Bench(
        "cycle",
        TARGETS["cycle"],
        up < 3 and total < 90,
        f"lab up {up:.1f} s warm; all {len(durations)} experiments {total:.0f} s "
        f"({', '.join(f'{k} {v:.0f} s' for k, v in durations.items())})",
        {"up_seconds": round(up, 2), "experiments_seconds": durations},
    )


def cold(lab: Stack, sizes: Sizes, progress: Progress = silent) -> Bench:
    """A first start on a machine with no images: the base image path included."""
    progress("removing the lab, its service image and its local base image")
    lab.down()
    services = os.environ.get("LAB_SERVICES_IMAGE") or "netlab-services:latest"
    for name in (services, base_image.local_tag()):
        with contextlib.suppress(docker.errors.ImageNotFound):
            lab.client.images.remove(name, force=True)
    progress("lab up from nothing (debootstrap, build, start)")
    t0 = time.monotonic()
    chosen = lab.up(progress)
    seconds = time.monotonic() - t0
    return Bench(
        "cold",
        TARGETS["cold"],
        seconds < 180,
        f"lab up from no images: {seconds:.0f} s ({chosen.path} base {chosen.image})",
        {"seconds": round(seconds, 1), "base": chosen.image, "path": chosen.path},
    )


# --- density ---------------------------------------------------------------------------------

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


def lab_usage(client: Any, names: list[str], seconds: float) -> LabUsage:
    """Memory now, and CPU over ``seconds`` of idling, for each named lab."""
    from lab.engine import named, usage

    ids: dict[str, list[str]] = {name: [] for name in names}
    for c in client.api.containers(filters={"label": [named.NAME_LABEL]}):
        name = (c.get("Labels") or {}).get(named.NAME_LABEL, "")
        if name in ids:
            ids[name].append(str(c["Id"]))
    every = {cid for cids in ids.values() for cid in cids}
    shim_pids = usage.shims(every)

    def sample() -> tuple[dict[str, float], dict[str, float]]:
        cpu = {cid: usage.cpu_seconds(cid) or 0.0 for cid in every}
        shim = {cid: usage.shim_seconds(pid) or 0.0 for cid, pid in shim_pids.items()}
        return cpu, shim

    cpu0, shim0 = sample()
    t0 = time.monotonic()
    time.sleep(seconds)
    cpu1, shim1 = sample()
    elapsed = time.monotonic() - t0
    return LabUsage(
        memory={n: sum(usage.memory_bytes(cid) or 0 for cid in cids) for n, cids in ids.items()},
        anon={n: sum(usage.anon_bytes(cid) or 0 for cid in cids) for n, cids in ids.items()},
        cpu={n: sum(cpu1[c] - cpu0[c] for c in cids) / elapsed for n, cids in ids.items()},
        shims={
            n: sum(shim1.get(c, 0) - shim0.get(c, 0) for c in cids) / elapsed
            for n, cids in ids.items()
        },
    )


def density(lab: Stack, sizes: Sizes, progress: Progress = silent) -> Bench:
    """Named labs started one after another until K = sizes.labs, the machine's end or the
    time limit; measured at each checkpoint; all removed at the end."""
    from lab.api import open as open_lab
    from lab.engine import named

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
    met = (
        last is not None
        and largest >= 30
        and last["memory_mib_max"] < 100 / 1.048576
        and last["cpu_pct_per_lab"] < 2
    )
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
        TARGETS["density"],
        met,
        summary,
        {"points": points, "stopped": stopped, "largest_k": largest},
    )


def _checkpoint(
    lab: Stack, names: list[str], up_times: list[float], sizes: Sizes, progress: Progress
) -> dict[str, Any]:
    from lab.api import open as open_lab

    k = len(names)
    passed = 0
    progress(f"K = {k}: dispatch in every lab")
    for name in names:
        net = open_lab(name=name, client=lab.client)
        try:
            net.wait_healthy(timeout=60)
            passed += run_experiment(EXPERIMENTS["dispatch"], net).passed
        except LabError:
            pass
    progress(f"K = {k}: idle for {sizes.idle_seconds:.0f} s, memory and CPU per lab")
    used = lab_usage(lab.client, names, sizes.idle_seconds)
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


BENCHES: dict[str, Callable[..., Bench]] = {
    "redis": redis,
    "c10k": c10k,
    "udp": udp,
    "cycle": cycle,
    "cold": cold,
    "density": density,
}
NEED_NO_LAB = ("density",)  # they start labs of their own
DEFAULT = ("redis", "c10k", "udp", "cycle")  # cold deletes images: only when asked for


def cleanup(lab: Stack) -> None:
    """Remove a benchmark's redis-server left by an interrupted run."""
    with contextlib.suppress(docker.errors.NotFound):
        lab.client.containers.get(f"{lab.topology.project}-bench-redis").remove(force=True)


def to_json(results: list[Bench]) -> list[dict[str, Any]]:
    return [asdict(b) for b in results]


def markdown(results: list[Bench], machine: str, command: str) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Produced by `{command}` on {machine}. Each row is measured, on this machine, in one",
        "run; rerun the command to reproduce. `lab bench --help` says what each measures.",
        "",
        "| benchmark | target | met | measured |",
        "|---|---|---|---|",
    ]
    for b in results:
        met = {True: "yes", False: "**no**", None: "-"}[b.met]
        lines.append(f"| {b.name} | {b.target} | {met} | {b.summary} |")
    missed = [b for b in results if b.why]
    if missed:
        lines += ["", "## Why targets are missed", ""]
        lines += [f"- **{b.name}**: {b.why}" for b in missed]
    dense = next((b for b in results if b.name == "density"), None)
    if dense is not None and dense.data.get("points"):
        lines += [
            "",
            "## Labs on one machine",
            "",
            f"Named labs started one after another; {dense.data['stopped']}. Memory is each "
            "lab's containers' cgroups less inactive file pages (as `docker stats`); CPU is "
            "over an idle minute, in the containers' cgroups, then with the containerd shims "
            "that run each healthcheck's `docker exec` (dockerd's own share is left out: the "
            "machine is shared).",
            "",
            "| K | dispatch passed | lab up (mean s) | MiB per lab (mean / max) | of which "
            "anonymous | % of a core per idle lab | with shims | MiB available |",
            "|---|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {p['k']} | {p['dispatch_passed']}/{p['k']} | {p['up_s_mean']:.1f} | "
            f"{p['memory_mib_mean']:.0f} / {p['memory_mib_max']:.0f} | "
            f"{p.get('anon_mib_mean', 0):.0f} | "
            f"{p['cpu_pct_per_lab']:.2f} | {p['cpu_with_shims_pct_per_lab']:.2f} | "
            f"{p['available_mib']} |"
            for p in dense.data["points"]
        ]
    udp = next((b for b in results if b.name == "udp"), None)
    if udp is not None and udp.data.get("points"):
        lines += [
            "",
            "## UDP under load",
            "",
            "| offered /s | sent | answered | lost | kernel receive-buffer drops |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {p['rate']} | {p['sent']} | {p['received']} | {100 * p['loss']:.1f}% | "
            f"{p['kernel_drops']} |"
            for p in udp.data["points"]
        ]
        lines += ["", "![offered against answered datagrams](benchmarks/results/udp-loss.png)"]
    return "\n".join(lines) + "\n"
