"""BENCHMARKS.md, rendered from the JSON `socklab bench` writes (pure: the page is never edited by
hand, and a test holds the committed page to the committed JSON)."""

from __future__ import annotations

from typing import Any

MET = {True: "yes", False: "**no**", None: "-"}


def merge(
    previous: dict[str, Any] | None, fresh: list[dict[str, Any]], order: list[str]
) -> list[dict[str, Any]]:
    """The benchmarks of a run of some of them, over those an earlier run left: each name
    keeps its latest measurement (and says when it was made), in ``order``."""
    by_name = {b["name"]: b for b in (previous or {}).get("benchmarks", []) if "measured" in b}
    by_name.update({b["name"]: b for b in fresh})
    known = [n for n in order if n in by_name]
    return [by_name[n] for n in known + sorted(set(by_name) - set(known))]


def render(run: dict[str, Any]) -> str:
    benches = run["benchmarks"]
    machines = sorted({b["measured"]["machine"] for b in benches})
    lines = [
        "# Benchmarks",
        "",
        "Written by `socklab bench --markdown BENCHMARKS.md` from "
        f"[`{run['json']}`]({run['json']}): do not edit by hand, run the command again. "
        "Every ratio is measured side by side "
        "with its peer in one run, repeated, as a median with its spread (lowest-highest, "
        "n runs). The last column says which run measured each row (a run of some "
        "benchmarks keeps the others' rows). These are one machine's figures "
        f"({'; '.join(machines)}); `socklab bench --help` says what each measures.",
        "",
        "| benchmark | target | met | measured | run |",
        "|---|---|---|---|---|",
    ]
    for b in benches:
        m = b["measured"]
        lines.append(
            f"| {b['name']} | {b['target']} | {MET[b['met']]} | {b['summary']} | "
            f"`{m['command']}`, {m['date']}, {m['commit']} |"
        )
    missed = [b for b in benches if b.get("why")]
    if missed:
        lines += ["", "## Why targets are missed", ""]
        lines += [f"- **{b['name']}**: {b['why']}" for b in missed]
    for b in benches:
        detail = DETAILS.get(b["name"])
        if detail is not None:
            lines += ["", *detail(b)]
    return "\n".join(lines) + "\n"


def _redis(b: dict[str, Any]) -> list[str]:
    rows = b["data"].get("configs", [])
    if not rows:
        return []
    keys = [k for k in rows[0]["ratios"]]
    out = [
        "## db against Redis",
        "",
        "Requests per second, median of the repetitions (db / Redis), and the ratio with "
        "the spread of the per-repetition ratios.",
        "",
        "| persistence | " + " | ".join(keys) + " |",
        "|---|" + "---|" * len(keys),
    ]
    for r in rows:
        cells = []
        for k in keys:
            ratio = r["ratios"][k]
            cells.append(
                f"{r['db'][k]['median']:,.0f} / {r['redis'][k]['median']:,.0f}: "
                f"**{ratio['median']:.2f}x** ({ratio['low']:.2f}-{ratio['high']:.2f})"
            )
        out.append(f"| {r['config']} | " + " | ".join(cells) + " |")
    return out


def _udp(b: dict[str, Any]) -> list[str]:
    curves = b["data"].get("curves", [])
    if not curves:
        return []
    out = [
        "## UDP under load",
        "",
        "Offered is the rate asked for; sent and answered are the rates the load generator "
        "really reached; drops are counted on each server's own socket (and on the "
        "sender's, for its answers).",
        "",
        "| curve | peer | offered /s | sent /s | answered /s | lost | server drops | "
        "sender drops |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for i, curve in enumerate(curves, 1):
        for peer, points in curve["points"].items():
            for p in points:
                out.append(
                    f"| {i} | {peer} | {p['rate']} | {p['sent_rate']} | {p['received_rate']} | "
                    f"{100 * p['loss']:.1f}% | {p['server_drops']} | {p['client_drops']} |"
                )
    if b["data"].get("plot"):
        out += ["", f"![offered against answered datagrams]({b['data']['plot']})"]
    return out


def _curriculum(b: dict[str, Any]) -> list[str]:
    timers = b["data"].get("kernel_timers", {})
    if not timers:
        return []
    return [
        "## Waits that are the kernel's own timers",
        "",
        *(f"- **{name}**: {text}" for name, text in timers.items()),
    ]


def _density(b: dict[str, Any]) -> list[str]:
    points = b["data"].get("points", [])
    if not points:
        return []
    return [
        "## Labs on one machine",
        "",
        f"Named labs started one after another; {b['data']['stopped']}. Memory is each "
        "lab's containers' cgroups less inactive file pages (as `docker stats`); CPU is "
        "over an idle minute, in the containers' cgroups, then with the containerd shims "
        "that run each healthcheck's `docker exec` (dockerd's own share is left out: the "
        "machine is shared).",
        "",
        "| K | dispatch passed | lab up (mean s) | MiB per lab (mean / max) | of which "
        "anonymous | % of a core per idle lab | with shims | MiB available |",
        "|---|---|---|---|---|---|---|---|",
        *(
            f"| {p['k']} | {p['dispatch_passed']}/{p['k']} | {p['up_s_mean']:.1f} | "
            f"{p['memory_mib_mean']:.0f} / {p['memory_mib_max']:.0f} | "
            f"{p.get('anon_mib_mean', 0):.0f} | {p['cpu_pct_per_lab']:.2f} | "
            f"{p['cpu_with_shims_pct_per_lab']:.2f} | {p['available_mib']} |"
            for p in points
        ),
    ]


DETAILS = {"redis": _redis, "udp": _udp, "curriculum": _curriculum, "density": _density}
