"""C10K: 10,000 connections to tcp-shout at once, each answered and then held.

Memory per held connection is measured two ways, and both are reported: the
process's resident memory (VmRSS, what Python holds for each connection) and the
container's memory cgroup (what the kernel charges the container: the process
and its kernel memory, socket buffers included; on cgroup v1 the TCP buffers are
charged apart, in memory.kmem.tcp, which is read too when it is there). Latency is
that of ACTIVE clients doing round trips while the rest stay idle.
"""

from __future__ import annotations

import json

from lab.api import Lab
from lab.bench.model import Bench, BenchError, Sizes
from lab.progress import Progress, silent

TARGET = "10,000 connections served, p99 under 50 ms, under 10 KB per idle connection (cgroup)"


def rss_kb(net: Lab, service: str) -> int:
    """Resident memory of a service's process, read from /proc inside its host."""
    host = net.topology.host_of(service).name
    rows = net.backend.port_table(host)
    pid = next((r.pid for r in rows if r.service == service and r.pid), None)
    if pid is None:
        raise BenchError(f"{service} owns no socket in {host}'s port table")
    status = net.backend.run_in(host, ["cat", f"/proc/{pid}/status"]).decode()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))


def cgroup_bytes(net: Lab, service: str) -> dict[str, int]:
    """The container's memory cgroup: usage (process and kernel), and TCP buffers apart."""
    return net.backend.memory(service)


def per_connection(
    before: dict[str, int], held: dict[str, int], count: int
) -> dict[str, float | None]:
    """Bytes each held connection added to each cgroup charge. A charge that read 0 before
    and while held was never counted here (cgroup v1 leaves kmem.tcp off unless enabled):
    None, "not accounted", never a measured 0. Pure."""
    out: dict[str, float | None] = {}
    for key, now in held.items():
        was = before.get(key, 0)
        out[key] = None if was == 0 and now == 0 else (now - was) / max(1, count)
    return out


def verdict(served: bool, per: dict[str, float | None]) -> bool | None:
    """Met, missed, or None when a charge the target counts was not accounted (cgroup v1
    without kmem.tcp): memory unread is not memory met. Pure."""
    if not served:
        return False
    if per.get("usage") is None or ("tcp" in per and per["tcp"] is None):
        return None
    return (per["usage"] or 0) + (per.get("tcp") or 0) < 10 * 1024


def charge_text(per: dict[str, float | None], per_rss: float) -> str:
    def kb(value: float | None) -> str:
        return "not accounted (0 before and after)" if value is None else f"{value / 1024:.1f} KB"

    tcp = f", TCP buffers apart {kb(per['tcp'])}" if "tcp" in per else ""
    return (
        f"{kb(per['usage'])} charged to the container's cgroup{tcp}; "
        f"the process's own memory (VmRSS) {per_rss / 1024:.1f} KB of it"
    )


def run(net: Lab, sizes: Sizes, progress: Progress = silent) -> Bench:
    before_rss, before_cg = rss_kb(net, "tcp-shout"), cgroup_bytes(net, "tcp-shout")
    progress(f"opening {sizes.connections} connections to tcp-shout")
    argv = ["python3", "-m", "services.probes.loadgen", "c10k", "tcp-shout", "8080"]
    argv += [str(sizes.connections), str(sizes.active), str(sizes.rounds)]
    gen = net.backend.attach(net.topology.client.name, argv)
    try:
        held = json.loads(gen.read_line())
        during_rss, during_cg = rss_kb(net, "tcp-shout"), cgroup_bytes(net, "tcp-shout")
        progress(f"{held['held']} held; {sizes.active} active clients measuring round trips")
        gen.end_input()
        latency = json.loads(gen.read_to_end())
    finally:
        gen.close()
    count = max(1, held["held"])
    per_rss = (during_rss - before_rss) * 1024 / count
    per_cg = per_connection(before_cg, during_cg, count)
    served = held["held"] == sizes.connections and latency["p99_ms"] < 50
    met = verdict(served, per_cg)
    return Bench(
        "c10k",
        TARGET,
        met,
        f"{held['held']}/{sizes.connections} served and held; p50 {latency['p50_ms']} ms, "
        f"p99 {latency['p99_ms']} ms for {latency['active']} active; per held connection: "
        + charge_text(per_cg, per_rss),
        {
            **held,
            **latency,
            "rss_before_kb": before_rss,
            "rss_held_kb": during_rss,
            "cgroup_before": before_cg,
            "cgroup_held": during_cg,
            "rss_bytes_per_connection": round(per_rss),
            "cgroup_bytes_per_connection": {
                k: None if v is None else round(v) for k, v in per_cg.items()
            },
        },
    )
