"""impaired-delivery's curves as a picture (PNG): what arrived, and how late, at each loss.
Importing this loads matplotlib (PicturesMissing without the `pictures` extra).
"""

from __future__ import annotations

from pathlib import Path

from lab.views import plots


def delivery(runs: list[dict[str, object]], path: Path) -> Path:
    """impaired-delivery: share delivered, and latency, against the link's loss."""
    fig, (share_ax, time_ax) = plots.plt.subplots(1, 2, figsize=(10, 4), dpi=100)
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
            [plots.number(r["p50_ms"]) for r in mine],
            "o-",
            color=colour,
            label=f"{protocol.upper()} p50",
        )
        time_ax.plot(
            x,
            [plots.number(r["p99_ms"]) for r in mine],
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
    plots.plt.close(fig)
    return path
