"""An experiment's result for people: its checks, its own tables, the timeline, the capture."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console

from lab.experiments.model import Experiment, Result
from lab.packets import report as packet_report
from lab.packets import view as packet_view
from lab.views import render

if TYPE_CHECKING:
    from lab.packets.dissect import Frame

LADDER_LINES = 400  # beyond this, `lab packets FILE --ladder` shows the whole conversation


def show_result(
    console: Console, experiment: Experiment, result: Result, *, timeline: bool = True
) -> None:
    console.print(render.checks_table(result))
    if result.predictions:
        console.print(
            f"your predictions: {result.predictions['right']} of "
            f"{result.predictions['total']} right"
        )
    for table in experiment.tables(result):
        console.print(table)
    if timeline and experiment.timeline and result.events:
        console.print(render.timeline_table(result.events))


def show_capture(console: Console, result: Result, frames: list[Frame], ladder: bool) -> None:
    capture = result.capture or {}
    names = capture.get("names", {})
    if ladder:
        console.print("the conversation, frame by frame (time in ms since the experiment began):")
        lines = packet_report.ladder_of(frames, result.to_json())
        for line in lines[:LADDER_LINES]:
            console.print(line, highlight=False, markup=False, soft_wrap=True)
        if len(lines) > LADDER_LINES:
            console.print(
                f"... {len(lines) - LADDER_LINES} more lines: "
                f"`lab packets {capture.get('file')} --ladder`"
            )
    start = frames[0].time if frames else 0.0
    for frame in packet_view.examples(frames):
        console.print(packet_view.frame_detail(frame, names, start))
    for summary_line in packet_view.checksum_summary(frames, names):
        console.print(summary_line)
    console.print(
        f"{len(frames)} frames captured in {capture.get('file')}; layer by layer: "
        f"`lab packets {capture.get('file')} --frame N`, or open it in Wireshark"
    )
