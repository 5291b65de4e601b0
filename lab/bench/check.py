"""How long `check` takes for one server: the seed's and the fixed ones, TCP and UDP.

Each server is checked ``Sizes.repeats`` times, one after another in turn, and the time
of each check is reported as a spread. The target is the issue's: under 60 s a server.
"""

from __future__ import annotations

import time
from pathlib import Path

from lab.api import Lab
from lab.bench.model import Bench, Sizes, Spread
from lab.progress import Progress, silent

TARGET = "a check of one server in under 60 s"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "servers"
SERVERS = (
    ("seed_tcp.py", "tcp-shout"),
    ("tcp_shout.py", "tcp-shout"),
    ("tcp_shout_asyncio.py", "tcp-shout"),
    ("seed_udp.py", "udp-shout"),
    ("udp_shout.py", "udp-shout"),
)


def run(net: Lab, sizes: Sizes, progress: Progress = silent) -> Bench:
    chosen = SERVERS if sizes.repeats > 2 else SERVERS[1:2]  # --tiny: one server, twice
    seconds: dict[str, list[float]] = {name: [] for name, _ in chosen}
    for _ in range(sizes.repeats):
        for name, role in chosen:
            progress(f"checking {name} as {role}")
            started = time.monotonic()
            net.check(EXAMPLES / name, role)
            seconds[name].append(time.monotonic() - started)
    spreads = {name: Spread.of(values) for name, values in seconds.items()}
    slowest = max(s.high for s in spreads.values())
    return Bench(
        "check",
        TARGET,
        slowest < 60,
        "; ".join(f"{name} {s.text(1, ' s')}" for name, s in spreads.items()),
        {"seconds": {name: s.json() for name, s in spreads.items()}},
        why="" if slowest < 60 else f"the slowest check took {slowest:.0f} s",
    )
