"""What every picture of the lab shares: matplotlib, loaded only where a picture is drawn
(it is the `pictures` extra, and slow to import), and the lanes of captured frames.

Each picture belongs to what it shows and lives beside it: a failure cell's timeline in
lab/experiments/builtin/failures/picture.py, db-kill's power losses and
impaired-delivery's curves in their own packages, the UDP benchmark's in lab/bench.
"""

from __future__ import annotations

from lab.errors import PicturesMissing

try:
    import matplotlib
except ModuleNotFoundError:  # an extra (`socklab[pictures]`): callers say so in one line
    raise PicturesMissing() from None

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from lab.packets.ladder import PacketMark

__all__ = ["Axes", "frame_lanes", "number", "plt"]

OUT_Y, IN_Y = 2.5, 1.9  # frames the client host sent, and frames it was sent
FRAME_STYLE = {  # kind -> (marker, colour, size)
    "RST": ("X", "#c0392b", 60),
    "ICMP": ("v", "#e67e22", 60),
    "SYN": ("^", "#2980b9", 40),
    "FIN": ("D", "#8e44ad", 30),
    "other": ("|", "#95a5a6", 30),
}
NEAR = 0.3  # seconds: marks closer than this share one label


def number(value: object) -> float:
    """A measurement from a result's JSON; null (nothing measured) is not plotted."""
    return float("nan") if value is None else float(str(value))


def frame_lanes(ax: Axes, frames: list[PacketMark]) -> None:
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
