"""db against a real redis-server, side by side, with the same persistence on both.

Both servers run as fresh containers of the lab's image in the db's host's namespaces
(the same kernel, the same path from the client host, the same limits), each with an
anonymous volume for its data (the same disk). Four configurations: no persistence on
either, then an append-only log on both under the same fsync policy (always, everysec,
no). Per configuration: a warm-up that also sizes the runs (each test lasts about
``Sizes.seconds``), then ``Sizes.repeats`` repetitions, interleaved (db first, then
Redis first, ...), of redis-benchmark from the client host: 50 clients, SET and GET,
without pipelining and with 16 commands in flight. Reported: the median requests/s of
each, their ratio, and the spread of the per-repetition ratios. The lab's own db is
never touched, so there is no setting to restore.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from lab.api import Lab
from lab.bench.model import (
    MET,
    Bench,
    BenchError,
    Sizes,
    Spread,
    companion,
    remove,
    until,
    verdict,
)
from lab.errors import LabError
from lab.progress import Progress, silent
from lab.traffic import clients

TARGET = "db at 0.5x Redis or better without pipelining, 0.25x with 16 in flight, every policy"
DB_PORT, REDIS_PORT = 6392, 6393
CONFIGS = (
    ("no persistence", "off"),
    ("append-only, fsync always", "always"),
    ("append-only, fsync every second", "everysec"),
    ("append-only, fsync no", "no"),
)
TESTS = ("SET", "GET")
PIPELINES = (1, 16)
GOALS = {1: 0.5, 16: 0.25}


def parse(csv_text: str) -> dict[str, float]:
    """Requests per second by test name, from `redis-benchmark --csv`."""
    rows = list(csv.reader(io.StringIO(csv_text)))
    if rows and rows[0] and rows[0][0] == "test":
        rows = rows[1:]
    return {row[0]: float(row[1]) for row in rows if len(row) >= 2}


def _benchmark(net: Lab, address: str, port: int, requests: int, pipeline: int) -> dict[str, float]:
    argv = ["redis-benchmark", "-h", address, "-p", str(port), "-c", "50", "-n", str(requests)]
    argv += ["-t", "set,get", "-P", str(pipeline), "--csv"]
    out = net.backend.run_in(net.topology.client.name, argv, timeout=max(60.0, requests / 500))
    got = parse(out.decode())
    missing = [t for t in TESTS if t not in got]
    if missing:
        raise BenchError(f"redis-benchmark gave no {', '.join(missing)} figure: {out[:200]!r}")
    return got


def _servers(net: Lab, host: str, policy: str) -> list[Any]:
    persist = policy != "off"
    db = companion(
        net.backend,
        f"db-{policy}",
        host,
        ["python3", "-m", "services.servers.db"],
        environment={
            "LAB_SERVICE": "bench-db",
            "DB_PORT": str(DB_PORT),
            "DB_AOF_PATH": "/data/appendonly.aof" if persist else "",
            "DB_APPENDFSYNC": policy if persist else "always",
            "DB_MAX_CLIENTS": "1000",
        },
        data_volume=True,
    )
    redis_argv = ["redis-server", "--port", str(REDIS_PORT), "--save", "", "--dir", "/data"]
    redis_argv += ["--protected-mode", "no", "--maxclients", "1000"]
    redis_argv += (
        ["--appendonly", "yes", "--appendfsync", policy] if persist else ["--appendonly", "no"]
    )
    redis = companion(net.backend, f"redis-{policy}", host, redis_argv, data_volume=True)
    return [db, redis]


def _answering(net: Lab, address: str, port: int) -> None:
    def pong() -> bool:
        try:
            events = net.run(clients.db_script(address, port, ["PING"]))
        except LabError:
            return False
        return clients.reply_text("resp", events) == "PONG"

    until(pong, f"a server on {address}:{port}")


def run(net: Lab, sizes: Sizes, progress: Progress = silent) -> Bench:
    host = net.topology.host_of("db").name
    address = net.topology.hosts[host].ip
    if not net.backend.run_in(host, ["sh", "-c", "command -v redis-server || true"]).strip():
        return Bench(
            "redis",
            TARGET,
            None,
            "not measured: this image has no redis-server (the official python base lacks "
            "it; the lab's own base has it)",
        )
    rows = []
    for label, policy in CONFIGS if sizes.repeats > 2 else CONFIGS[:2]:
        progress(f"db and Redis, {label}")
        containers = _servers(net, host, policy)
        try:
            _answering(net, address, DB_PORT)
            _answering(net, address, REDIS_PORT)
            rows.append(_config(net, address, label, policy, sizes, progress))
        finally:
            remove(containers)
    cells = {
        (r["config"], f"{t} P{p}"): verdict(
            Spread(**r["ratios"][f"{t} P{p}"]), GOALS[p], at_least=True
        )
        for r in rows
        for p in PIPELINES
        for t in TESTS
    }
    met = all(v == MET for v in cells.values())
    worst = min(r["ratios"][key]["low"] for r in rows for key in r["ratios"])
    summary = "; ".join(
        f"{r['config']}: "
        + ", ".join(
            f"{t} P{p} {ratio_text(r['ratios'][f'{t} P{p}'])}" for p in PIPELINES for t in TESTS
        )
        for r in rows
    )
    short = [f"{config} {key}: {v}" for (config, key), v in cells.items() if v != MET]
    return Bench(
        "redis",
        TARGET,
        met,
        f"db/Redis, median and spread of the per-repetition ratios (n={sizes.repeats}): {summary}",
        {
            "configs": rows,
            "worst_ratio": worst,
            "verdicts": {" / ".join(k): v for k, v in cells.items()},
        },
        why="" if met else "; ".join(short),
    )


def ratio(db: list[float], redis: list[float]) -> Spread:
    """db/Redis as one ratio per repetition (the two measured back to back), their median
    and spread from the same numbers: never a ratio of medians beside a spread of ratios.
    Pure."""
    return Spread.of([d / r for d, r in zip(db, redis, strict=True)])


def ratio_text(ratio: dict[str, float]) -> str:
    return f"{ratio['median']:.2f}x ({ratio['low']:.2f}-{ratio['high']:.2f})"


def _config(
    net: Lab, address: str, label: str, policy: str, sizes: Sizes, progress: Progress
) -> dict[str, Any]:
    servers = {"db": DB_PORT, "redis": REDIS_PORT}
    requests: dict[tuple[str, int], int] = {}
    for name, port in servers.items():  # warm up, and size each run to about sizes.seconds
        for p in PIPELINES:
            got = _benchmark(net, address, port, 2000 * p, p)
            requests[(name, p)] = max(1000, int(min(got.values()) * sizes.seconds))
    samples: dict[str, dict[str, list[float]]] = {n: {} for n in servers}
    for rep in range(sizes.repeats):
        order = list(servers) if rep % 2 == 0 else list(reversed(servers))
        progress(f"{label}: repetition {rep + 1} of {sizes.repeats} ({' then '.join(order)})")
        for name in order:
            for p in PIPELINES:
                got = _benchmark(net, address, servers[name], requests[(name, p)], p)
                for test in TESTS:
                    samples[name].setdefault(f"{test} P{p}", []).append(got[test])
    ratios = {key: ratio(samples["db"][key], samples["redis"][key]) for key in samples["db"]}
    return {
        "config": label,
        "policy": policy,
        "requests": {f"{n} P{p}": v for (n, p), v in requests.items()},
        "db": {k: Spread.of(v).json() for k, v in samples["db"].items()},
        "redis": {k: Spread.of(v).json() for k, v in samples["redis"].items()},
        # The ratio and its spread from the same numbers: one ratio per repetition (db and
        # Redis measured back to back), never a ratio of medians beside a spread of ratios.
        "ratios": {k: r.json() for k, r in ratios.items()},
    }
