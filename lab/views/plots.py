"""Pictures of what happened: one timeline per failure-matrix cell, as PNG.

Each message the client sent is a mark on the "sent" line; each answer that
came back is a mark on the "answered" line; each error or silence the client
met is a red cross with its name. The time the fault was in place is shaded,
so a student sees at a glance which messages crossed the fault, which were
answered late, and which were lost.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.errors import PicturesMissing

try:
    import matplotlib
except ModuleNotFoundError:  # an extra (`socklab[pictures]`): callers say so in one line
    raise PicturesMissing() from None

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from lab.packets.ladder import PacketMark

if TYPE_CHECKING:
    from lab.experiments.builtin.failures import Cell

SENT_Y, ANSWERED_Y, ERROR_Y = 1.0, 0.0, -0.6
OUT_Y, IN_Y = 2.5, 1.9  # frames the client host sent, and frames it was sent
FRAME_STYLE = {  # kind -> (marker, colour, size)
    "RST": ("X", "#c0392b", 60),
    "ICMP": ("v", "#e67e22", 60),
    "SYN": ("^", "#2980b9", 40),
    "FIN": ("D", "#8e44ad", 30),
    "other": ("|", "#95a5a6", 30),
}
NEAR = 0.3  # seconds: calls ending closer than this share one label


def cell_timeline(cell: Cell, path: Path, frames: list[PacketMark] | None = None) -> Path:
    fig, ax = plt.subplots(figsize=(9, 4.6 if frames else 3.8), dpi=100)
    ax.axvspan(cell.fault_at, cell.recovered_at, color="#f4c7c3", label="fault in place")
    ax.axvline(cell.fault_at, color="#c0392b", linewidth=1.5)
    ax.axvline(cell.recovered_at, color="#27ae60", linewidth=1.5)
    held = [e for e in cell.events if not e.sock.endswith("_new")]  # the socket held throughout
    fresh = [e for e in cell.events if e.sock.endswith("_new") and e.outcome == "ok"]
    sends = [e for e in held if e.op.startswith("send") and e.outcome == "ok"]
    answers = [e for e in held if e.op.startswith("recv") and e.outcome == "ok" and e.nbytes]
    problems = [e for e in held if e.outcome != "ok"]
    ax.scatter(
        [e.t for e in sends],
        [SENT_Y] * len(sends),
        marker="o",
        color="#2c3e50",
        label="message sent",
        zorder=3,
    )
    ax.scatter(
        [e.t + e.dt for e in answers],
        [ANSWERED_Y] * len(answers),
        marker="s",
        color="#27ae60",
        label="answer received",
        zorder=3,
    )
    fresh_marks = [e for e in fresh if e.op.startswith(("send", "recv"))]
    ax.scatter(
        [e.t + e.dt for e in fresh_marks],
        [SENT_Y if e.op.startswith("send") else ANSWERED_Y for e in fresh_marks],
        marker="o",
        facecolors="none",
        edgecolors="#7f8c8d",
        label="new connection",
        zorder=3,
    )
    groups: list[tuple[float, list[str]]] = []
    for e in problems:
        x = e.t + e.dt
        ax.scatter([x], [ERROR_Y], marker="x", color="#c0392b", zorder=3)
        if groups and x - groups[-1][0] < NEAR:
            groups[-1][1].append(f"{e.op} {e.outcome}")
        else:
            groups.append((x, [f"{e.op} {e.outcome}"]))
    last = max([e.t + e.dt for e in cell.events] + [cell.recovered_at])
    for i, (x, labels) in enumerate(groups):
        right = x > 0.8 * last  # near the right edge: the words go to its left
        ax.annotate(
            "\n".join(labels),
            (x, ERROR_Y),
            textcoords="offset points",
            xytext=(-3 if right else 3, -6 - 14 * (i % 2)),
            ha="right" if right else "left",
            va="top",
            fontsize=7,
            color="#c0392b",
        )
    ticks = [SENT_Y, ANSWERED_Y, ERROR_Y]
    names = ["sent", "answered", "error / silence"]
    if frames:
        _frame_lanes(ax, frames)
        ticks += [OUT_Y, IN_Y]
        names += ["frames out", "frames in"]
    ax.set_yticks(ticks, names)
    ax.set_ylim(-2.0, 3.0 if frames else 1.6)
    ax.set_xlabel("seconds since the clients connected (red: fault, green: recovered)")
    fig.suptitle(f"{cell.row} / {cell.client}", fontsize=11, x=0.01, ha="left")
    title = textwrap.fill(cell.summary(), 130)
    ax.set_title(title, fontsize=8, loc="left")
    ax.grid(axis="x", alpha=0.3)
    # Fixed margins, in inches, rather than tight_layout, which draws the figure once more
    # to measure it (a quarter of the time of the matrix's thirty pictures): the title's
    # lines are the only thing that varies. The legend goes under the axis label.
    height = fig.get_size_inches()[1]
    top = 1 - (0.45 + 0.14 * (title.count("\n") + 1)) / height
    bottom = 0.85 / height
    fig.subplots_adjust(left=0.13, right=0.985, bottom=bottom, top=top)
    fig.legend(loc="lower center", bbox_to_anchor=(0.5, 0.01), fontsize=7, frameon=False, ncol=4)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def delivery(runs: list[dict[str, object]], path: Path) -> Path:
    """impaired-delivery: share delivered, and latency, against the link's loss."""
    fig, (share_ax, time_ax) = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    colours = {"tcp": "#2980b9", "udp": "#c0392b"}
    lossy = [r for r in runs if str(r["link"]).startswith("loss")]
    losses = sorted({float(str(r["loss"])) for r in lossy})
    share_ax.plot(losses, [100 - x for x in losses], "--", color="#95a5a6", label="100% - loss")
    for protocol, colour in colours.items():
        mine = sorted(
            (r for r in lossy if r["protocol"] == protocol), key=lambda r: float(str(r["loss"]))
        )
        x = [float(str(r["loss"])) for r in mine]
        share = [100 * float(str(r["delivered"])) / max(1.0, float(str(r["sent"]))) for r in mine]
        share_ax.plot(x, share, "o-", color=colour, label=protocol.upper())
        time_ax.plot(
            x,
            [_number(r["p50_ms"]) for r in mine],
            "o-",
            color=colour,
            label=f"{protocol.upper()} p50",
        )
        time_ax.plot(
            x,
            [_number(r["p99_ms"]) for r in mine],
            "s--",
            color=colour,
            label=f"{protocol.upper()} p99",
        )
    share_ax.set_xlabel("loss on the link (%)")
    share_ax.set_ylabel("messages delivered (%)")
    share_ax.set_ylim(0, 105)
    share_ax.legend(fontsize=8)
    share_ax.set_title("TCP delivers everything; UDP loses its share", fontsize=9)
    time_ax.set_yscale("log")
    time_ax.set_xlabel("loss on the link (%)")
    time_ax.set_ylabel("latency of a delivered message (ms, log scale)")
    time_ax.legend(fontsize=8)
    time_ax.set_title("...and pays for it in time", fontsize=9)
    for ax in (share_ax, time_ax):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _number(value: object) -> float:
    """A measurement from a result's JSON; null (nothing measured) is not plotted."""
    return float("nan") if value is None else float(str(value))


def _frame_lanes(ax: Axes, frames: list[PacketMark]) -> None:
    """The client host's frames (from a capture) above its calls: RST, ICMP, SYN, FIN marked."""
    for kind, (marker, colour, size) in FRAME_STYLE.items():
        chosen = [f for f in frames if f.kind == kind]
        if chosen:
            ax.scatter(
                [f.t for f in chosen],
                [OUT_Y if f.outgoing else IN_Y for f in chosen],
                marker=marker,
                color=colour,
                s=size,
                label=kind if kind != "other" else "other frame",
                zorder=3,
            )
    labelled: list[float] = []
    for f in frames:
        if f.kind in ("RST", "ICMP") and all(abs(f.t - x) > NEAR for x in labelled):
            labelled.append(f.t)
            ax.annotate(
                f.label,
                (f.t, OUT_Y if f.outgoing else IN_Y),
                textcoords="offset points",
                xytext=(4, 5),
                fontsize=7,
                color=FRAME_STYLE[f.kind][1],
            )


def power_loss(
    power: dict[str, dict[str, Any]], runs: dict[str, dict[str, Any]], path: Path
) -> Path:
    """db-kill: acknowledged writes lost to a process kill and to a power loss, per policy,
    and how far back before the power cut the lost ones had been acknowledged."""
    policies = list(power)
    fig, (lost_ax, window_ax) = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    x = range(len(policies))
    kill_lost = [int(runs[p]["lost"]) for p in policies]
    power_lost = [int(power[p]["lost"]) for p in policies]
    acked = [int(power[p]["acked_before"]) for p in policies]
    lost_ax.bar([i - 0.2 for i in x], kill_lost, 0.4, color="#2980b9", label="process killed")
    lost_ax.bar([i + 0.2 for i in x], power_lost, 0.4, color="#c0392b", label="power lost")
    for i, (lost, total) in enumerate(zip(power_lost, acked, strict=True)):
        lost_ax.annotate(
            f"{lost} of {total}", (i + 0.2, lost), ha="center", va="bottom", fontsize=8
        )
    lost_ax.set_xticks(list(x), [f"appendfsync {p}" for p in policies], fontsize=8)
    lost_ax.set_ylabel("acknowledged writes lost")
    lost_ax.set_title("A process kill loses nothing; a power cut, what was not fsynced", fontsize=9)
    lost_ax.legend(fontsize=8)
    windows = [float(power[p]["window_s"]) for p in policies]
    window_ax.bar(list(x), windows, 0.5, color="#8e44ad")
    window_ax.axhline(1.0, color="#95a5a6", linestyle="--", label="one second (everysec's fsync)")
    window_ax.set_xticks(list(x), [f"appendfsync {p}" for p in policies], fontsize=8)
    window_ax.set_ylabel("oldest lost write: acknowledged s before the cut")
    window_ax.set_title("How much time a power cut takes back", fontsize=9)
    window_ax.legend(fontsize=8)
    for ax in (lost_ax, window_ax):
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def udp_curves(curves: list[dict[str, Any]], path: Path) -> Path:
    """lab bench udp: rate answered and share lost against rate offered, per peer and curve."""
    fig, (rate_ax, loss_ax) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=100)
    colours = {"udp-shout": "#2980b9", "socat": "#7f8c8d"}
    for i, curve in enumerate(curves):
        for peer, points in curve["points"].items():
            offered = [p["rate"] for p in points]
            style = "o-" if i == 0 else "s--"
            label = f"{peer}" + (f" (curve {i + 1})" if len(curves) > 1 else "")
            rate_ax.plot(
                offered,
                [p["received_rate"] for p in points],
                style,
                color=colours.get(peer),
                label=label,
            )
            loss_ax.plot(
                offered,
                [100 * p["loss"] for p in points],
                style,
                color=colours.get(peer),
                label=label,
            )
    if curves:
        top = max(p["rate"] for ps in curves[0]["points"].values() for p in ps)
        rate_ax.plot([0, top], [0, top], ":", color="#95a5a6", label="offered")
    rate_ax.set_xlabel("offered datagrams / s")
    rate_ax.set_ylabel("answered datagrams / s (as received)")
    loss_ax.set_xlabel("offered datagrams / s")
    loss_ax.set_ylabel("% lost")
    for ax in (rate_ax, loss_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, frameon=False)
    fig.suptitle("UDP under load: udp-shout (log off) and socat, side by side", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
