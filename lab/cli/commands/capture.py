"""socklab capture: a live capture of a host or a network, as pcap or as lines."""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from lab.cli.console import quiet_stdout
from lab.cli.context import Invocation
from lab.errors import UsageError
from lab.interrupts import ended_as_ctrl_c
from lab.packets.pcap import RecordCutter


def register(commands: Any) -> None:
    capture = commands.add_parser(
        "capture",
        help="a live capture of a host or a network: pcap for Wireshark, or one line a frame",
        description="Capture the frames of a host (every interface of its network namespace, "
        "loopback included, where its DNS queries go) or of a lab network (its bridge on "
        "the Docker host), with the same one-capability helper (CAP_NET_RAW) as `run "
        "--capture`. With -w - it writes pcap to standard output as the frames come: "
        "`socklab capture shouthost -w - | wireshark -k -i -`. Ctrl-C ends it and removes "
        "the helper; the hosts' checksum offload, switched off meanwhile so that frames "
        "carry real checksums, is switched back on.",
    )
    capture.add_argument(
        "target",
        nargs="?",
        metavar="HOST|NETWORK",
        help="a host, a process (its host) or a lab network (default: every lab network)",
    )
    capture.add_argument(
        "-w",
        dest="write",
        metavar="FILE",
        help="write pcap to FILE, or to standard output with - (default: one line a frame)",
    )
    capture.add_argument(
        "-c", "--count", type=int, metavar="N", help="stop after N frames (as tcpdump -c)"
    )
    capture.add_argument(
        "--for", dest="seconds", type=float, metavar="SECONDS", help="stop after SECONDS"
    )
    capture.add_argument(
        "--offload",
        action="store_true",
        help="leave checksum offload on (TCP and UDP sums then show as unfinished)",
    )
    capture.set_defaults(handler=cmd_capture)


def cmd_capture(s: Invocation, args: argparse.Namespace) -> int:
    with ended_as_ctrl_c():
        return _capture(s, args)


def _capture(s: Invocation, args: argparse.Namespace) -> int:
    from lab.packets.capture import place, streaming

    if args.count is not None and args.count < 1:
        raise UsageError("--count must be 1 or more")
    if args.seconds is not None and args.seconds <= 0:
        raise UsageError("--for must be more than 0 seconds")
    if args.write == "-" and sys.stdout.isatty():
        raise UsageError(
            "pcap is not for a terminal",
            f"pipe it: {s.prog} capture ... -w - | wireshark -k -i -  (or give -w FILE)",
        )
    lab = s.lab
    where = place(lab.backend, args.target)
    names = lab.address_names()
    note = sys.stderr  # standard output may be the pcap itself
    with contextlib.ExitStack() as stack:
        out: IO[bytes] | None = None
        if args.write == "-":
            out = sys.stdout.buffer
        elif args.write:
            try:
                out = stack.enter_context(Path(args.write).open("wb"))
            except OSError as exc:
                raise UsageError(f"cannot write {args.write}: {exc.strerror}") from None
        helper = stack.enter_context(streaming(lab.backend, where, offload=args.offload))
        ends = f" until {args.count} frames" if args.count else ""
        ends += f" for {args.seconds:g} s" if args.seconds else ""
        print(f"{s.prog}: capturing on {where.words}{ends}; Ctrl-C stops", file=note, flush=True)
        cutter, copied = RecordCutter(), [0]
        if args.seconds:  # SIGTERM ends the helper's capture cleanly, and so its stream
            timer = threading.Timer(args.seconds, helper.stop, (3,))
            timer.daemon = True
            timer.start()
            stack.callback(timer.cancel)
        try:
            _copy(helper.stream(), cutter, out, args.count, names, copied)
        except KeyboardInterrupt:
            pass  # the usual way to end a capture
        except BrokenPipeError:  # the reader (tshark, head) has gone: nothing more to say
            quiet_stdout()
            return 0
    target = f" to {args.write}" if args.write and args.write != "-" else ""
    print(f"{s.prog}: {copied[0]} frames{target}", file=note, flush=True)
    return 0


def _copy(
    chunks: Iterator[bytes],
    cutter: RecordCutter,
    out: IO[bytes] | None,
    count: int | None,
    names: dict[str, str],
    copied: list[int],
) -> None:
    """Whole records to ``out`` (or a line each to standard output), until ``count``;
    ``copied[0]``: how many so far (what an interrupted copy had done)."""
    from lab.packets import dissect

    start: float | None = None
    number = -1  # the file header comes first
    for chunk in chunks:
        for piece in cutter.feed(chunk):
            number += 1
            copied[0] = max(number, 0)
            if out is not None:
                out.write(piece)
            elif number:
                when = cutter.time_of(piece)
                start = when if start is None else start
                frame = dissect.dissect(piece[16:], when, number)
                print(
                    f"{number:>5}  {(when - start) * 1000:9.3f} ms  "
                    f"{names.get(frame.src, frame.src)} → {names.get(frame.dst, frame.dst)}  "
                    f"{frame.summary}",
                    flush=True,
                )
            if count is not None and number >= count:
                if out is not None:
                    out.flush()
                return
        if out is not None:
            out.flush()
