"""One failure cell as a timeline picture (PNG).

Each message the client sent is a mark on the "sent" line; each answer that came back
is a mark on the "answered" line; each error or silence the client met is a red cross
with its name. The time the fault was in place is shaded, so a student sees at a glance
which messages crossed the fault, which were answered late, and which were lost.
Importing this loads matplotlib (PicturesMissing without the `pictures` extra).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from lab.experiments.builtin.failures.model import Cell
from lab.experiments.builtin.failures.steps import is_fresh
from lab.packets.ladder import PacketMark
from lab.views import plots

SENT_Y, ANSWERED_Y, ERROR_Y = 1.0, 0.0, -0.6


def cell_timeline(cell: Cell, path: Path, frames: list[PacketMark] | None = None) -> Path:
    fig, ax = plots.plt.subplots(figsize=(9, 4.6 if frames else 3.8), dpi=100)
    ax.axvspan(cell.fault_at, cell.recovered_at, color="#f4c7c3", label="fault in place")
    ax.axvline(cell.fault_at, color="#c0392b", linewidth=1.5)
    ax.axvline(cell.recovered_at, color="#27ae60", linewidth=1.5)
    held = [e for e in cell.events if not is_fresh(e.sock)]  # the socket held throughout
    fresh = [e for e in cell.events if is_fresh(e.sock) and e.outcome == "ok"]
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
        if groups and x - groups[-1][0] < plots.NEAR:
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
        plots.frame_lanes(ax, frames)
        ticks += [plots.OUT_Y, plots.IN_Y]
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
    plots.plt.close(fig)
    return path
