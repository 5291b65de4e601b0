"""lab packets: take a capture apart (no Docker needed)."""

from __future__ import annotations

import argparse
import gc
import json
import sys
from pathlib import Path
from typing import Any

from lab.cli.context import Invocation
from lab.errors import UsageError


def register(commands: Any) -> None:
    packets = commands.add_parser(
        "packets",
        help="take a capture apart: frames, layers, checksums, hex, ladder diagram",
        description="Read a pcap file (from `lab run --capture`, tcpdump or Wireshark) and show "
        "each frame layer by layer: Ethernet, ARP or IPv4, TCP, UDP or ICMP, and the "
        "application bytes, with every checksum recomputed. Needs no Docker.",
    )
    packets.add_argument("file", type=Path, metavar="FILE", help="a pcap file")
    packets.add_argument(
        "-f",
        "--frame",
        action="append",
        type=int,
        default=[],
        metavar="N",
        help="show frame N layer by layer, with a hex view (repeatable)",
    )
    packets.add_argument("--all", action="store_true", help="show every frame layer by layer")
    packets.add_argument(
        "--ladder",
        action="store_true",
        help="the conversation as a ladder diagram, with the experiment's socket calls "
        "and faults (from the result saved beside the capture)",
    )
    packets.add_argument("--json", action="store_true", help="print frames as JSON")
    packets.set_defaults(handler=cmd_packets, needs_docker=False)


def cmd_packets(s: Invocation, args: argparse.Namespace) -> int:
    # A one-shot command over frames that hold no cycles: the cycle collector would only
    # walk them, each time it woke and once more as they are listed (a fifth of the time
    # for 100,000 frames), so it stays off while the command runs, and what the command
    # made is frozen (left out of later collections) rather than walked once more at exit.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _packets(s, args)
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def _packets(s: Invocation, args: argparse.Namespace) -> int:
    from lab.packets import dissect
    from lab.packets import report as packet_report
    from lab.packets import view as packet_view

    frames = dissect.read(args.file)
    result = packet_report.result_beside(args.file)
    names = ((result or {}).get("capture") or {}).get("names", {})
    start = frames[0].time if frames else 0.0
    if args.json:
        print(json.dumps([packet_view.frame_json(f) for f in frames], indent=2))
        return 0
    chosen = frames if args.all else [f for f in frames if f.number in args.frame]
    missing = sorted(set(args.frame) - {f.number for f in frames})
    if missing:
        raise UsageError(f"{args.file} has {len(frames)} frames; no frame {missing[0]}")
    if args.ladder:
        if result is None:
            raise UsageError(
                f"--ladder needs the experiment result beside the capture "
                f"({args.file.with_suffix('.json')})"
            )
        for line in packet_report.ladder_of(frames, result):
            s.print(line, plain=True)
    elif not chosen:
        with dissect.no_cycle_collection():
            sys.stdout.write("\n".join(packet_view.listing(frames, names, start)) + "\n")
        sys.stdout.flush()
    for frame in chosen:
        s.print(packet_view.frame_detail(frame, names, start))
    s.print(*packet_view.checksum_summary(frames, names))
    return 0
