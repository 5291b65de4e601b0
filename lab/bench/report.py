"""BENCHMARKS.md, rendered from the JSON `socklab bench` writes (pure: the page is never edited by
hand, and a test holds the committed page to the committed JSON)."""

from __future__ import annotations

from typing import Any

from lab.bench import stamp

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
        "n runs); a target is met only when the whole spread meets it. The last column "
        "says which run measured each row (a run of some benchmarks keeps the others' "
        "rows) and at which commit (marked when the tree held uncommitted changes: the "
        "page itself is refused from such a tree). These are one machine's figures "
        f"({'; '.join(machines)}); `socklab bench --help` says what each measures.",
        "",
        "| benchmark | target | met | measured | run |",
        "|---|---|---|---|---|",
    ]
    for b in benches:
        m = b["measured"]
        lines.append(
            f"| {b['name']} | {b['target']} | {MET[b['met']]} | {b['summary']} | "
            f"`{m['command']}`, {m['date']}, {stamp.text(m)} |"
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
        "Requests per second, median of the repetitions (db / Redis), then the ratio: the "
        "median and spread (lowest-highest) of the per-repetition ratios, each repetition "
        "measuring db and Redis back to back. A goal is met only when the whole spread "
        "meets it.",
        "",
        "| persistence | " + " | ".join(keys) + " |",
        "|---|" + "---|" * len(keys),
    ]
    for r in rows:
        cells = []
        for k in keys:
            ratio = r["ratios"][k]
            said = b["data"].get("verdicts", {}).get(f"{r['config']} / {k}", "")
            cells.append(
                f"{r['db'][k]['median']:,.0f} / {r['redis'][k]['median']:,.0f}: "
                f"**{ratio['median']:.2f}x** ({ratio['low']:.2f}-{ratio['high']:.2f})"
                + (f", {said}" if said and said != "met" else "")
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
        "sender's, for its answers). Rates off the grid were measured by bisection "
        "around each onset; each onset is the pair of rates that brackets a loss of 1%.",
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
    for i, curve in enumerate(curves, 1):
        onsets = curve.get("onset", {})
        if all(isinstance(o, list) or o is None for o in onsets.values()):
            out.append("")
            out.append(
                f"Curve {i}, 1% loss: "
                + "; ".join(f"{peer} {onset_text(o)}" for peer, o in onsets.items())
            )
    if b["data"].get("plot"):
        out += ["", f"![offered against answered datagrams]({b['data']['plot']})"]
    return out


def onset_text(onset: list[int] | None) -> str:
    """Where a UDP curve's loss passes 1%: the two rates that bracket it."""
    if onset is None:
        return "not reached at the rates offered"
    below, above = onset
    return f"at or under {above}/s" if below == 0 else f"between {below} and {above}/s"


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
            f"{_mib(p.get('anon_mib_mean'))} | {p['cpu_pct_per_lab']:.2f} | "
            f"{p['cpu_with_shims_pct_per_lab']:.2f} | {p['available_mib']} |"
            for p in points
        ),
    ]


def _scale(b: dict[str, Any]) -> list[str]:
    rows = b["data"].get("sizes", [])
    if not rows:
        return []

    def s(d: dict[str, Any], unit: str = " s") -> str:
        return f"{d['median']:.2f}{unit} ({d['low']:.2f}-{d['high']:.2f})"

    return [
        "## Cost with topology size",
        "",
        f"N hosts added by an override, one UDP process each; {b['data']['repeats']} "
        "interleaved repetitions, each from nothing running (images built), the whole "
        "command timed; the ratio is per repetition.",
        "",
        "| hosts added | `lab up` | `docker compose up -d --wait` | lab / compose | "
        "`lab status` | `docker compose ps` |",
        "|---|---|---|---|---|---|",
        *(
            f"| {r['added']} | {s(r['lab_up'])} | {s(r['compose_up'])} | {s(r['ratio'], 'x')} "
            f"| {s(r['status'])} | {s(r['compose_ps'])} |"
            for r in rows
        ),
    ]


def _mib(value: float | None) -> str:
    return "not read" if value is None else f"{value:.0f}"


DETAILS = {
    "redis": _redis,
    "udp": _udp,
    "curriculum": _curriculum,
    "density": _density,
    "scale": _scale,
}
