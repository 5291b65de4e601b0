"""The UDP benchmark's curves as a picture (PNG): delivery against offered rate, udp-shout
beside socat. Importing this loads matplotlib (PicturesMissing without `pictures`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lab.views import plots


def udp_curves(curves: list[dict[str, Any]], path: Path) -> Path:
    """lab bench udp: rate answered and share lost against rate offered, per peer and curve."""
    fig, (rate_ax, loss_ax) = plots.plt.subplots(1, 2, figsize=(10, 3.8), dpi=100)
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
    plots.plt.close(fig)
    return path
