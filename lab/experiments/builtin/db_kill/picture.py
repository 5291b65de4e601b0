"""db-kill's power losses as a picture (PNG): what each fsync policy lost to a power cut.
Importing this loads matplotlib (PicturesMissing without the `pictures` extra).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lab.views import plots


def power_loss(
    power: dict[str, dict[str, Any]], runs: dict[str, dict[str, Any]], path: Path
) -> Path:
    """db-kill: acknowledged writes lost to a process kill and to a power loss, per policy,
    and how far back before the power cut the lost ones had been acknowledged."""
    policies = list(power)
    fig, (lost_ax, window_ax) = plots.plt.subplots(1, 2, figsize=(10, 4), dpi=100)
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
    plots.plt.close(fig)
    return path
