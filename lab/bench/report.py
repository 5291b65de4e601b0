"""BENCHMARKS.md, rendered from the JSON `lab bench` writes (pure: the page is never edited by
hand, and a test holds the committed page to the committed JSON)."""

from __future__ import annotations

from typing import Any

MET = {True: "yes", False: "**no**", None: "-"}


def render(run: dict[str, Any]) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Written by `{run['command']}` on {run['machine']}, {run['date']}, at commit "
        f"{run['commit']}, from [`{run['json']}`]({run['json']}): do not edit by hand, run "
        "the command again. Every ratio is measured side by side with its peer in one run, "
        "repeated, as a median with its spread (lowest-highest, n runs). These are one "
        "machine's figures; `lab bench --help` says what each measures.",
        "",
        "| benchmark | target | met | measured |",
        "|---|---|---|---|",
    ]
    benches = run["benchmarks"]
    for b in benches:
        lines.append(f"| {b['name']} | {b['target']} | {MET[b['met']]} | {b['summary']} |")
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
    out += ["", "![offered against answered datagrams](benchmarks/results/udp-loss.png)"]
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


DETAILS = {"redis": _redis, "udp": _udp, "curriculum": _curriculum}
