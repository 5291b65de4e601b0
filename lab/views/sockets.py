"""Sockets as the kernel holds them, and the system calls that made and used them.

``socket_table``: a host's every TCP and UDP socket, like ``ss -tanup``.
``calls_table``: traced system calls and the lab's socket events on one time
line, so the server's ``accept4``/``recvfrom``/``sendto``/``close`` appear
between the client's ``connect``, ``sendall`` and ``recv`` that caused them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rich.table import Table
from rich.text import Text

from lab.services.probes.porttable import HostSocket
from lab.services.probes.sockscript import Event, printable
from lab.syscalls.strace import Syscall

STATE_STYLE = {
    "LISTEN": "green",
    "UNCONN": "green",
    "ESTABLISHED": "cyan",
    "TIME_WAIT": "yellow",
    "CLOSE_WAIT": "magenta",
    "FIN_WAIT1": "yellow",
    "FIN_WAIT2": "yellow",
    "LAST_ACK": "magenta",
    "CLOSING": "magenta",
    "SYN_SENT": "blue",
    "SYN_RECV": "blue",
}
DNS = "127.0.0.11"  # Docker's embedded DNS: its sockets are dockerd's, in the host's namespace
FOLD_AT = 4  # this many ownerless TIME_WAITs alike become one row (healthchecks leave many)


def program(command: str) -> str:
    """A command line, short: the module of ``python3 -m MODULE ...``, else the program."""
    words = command.split()
    if "-m" in words[:-1]:
        return words[words.index("-m") + 1].rsplit(".", 1)[-1]
    return words[0].rsplit("/", 1)[-1] if words else "?"


def owner_of(row: HostSocket) -> Text:
    if row.pid is not None:
        return Text(f"{row.service or program(row.command)} (pid {row.pid})")
    if row.local.startswith(DNS + ":"):
        return Text("dockerd (embedded DNS)", style="dim")
    if row.inode == 0:
        return Text("(kernel: no process)", style="dim")
    return Text("(not visible from this host)", style="dim")


@dataclass(frozen=True)
class Folded:
    """Several ownerless sockets alike (same state, local address, peer): one row."""

    first: HostSocket
    count: int


def fold(rows: Iterable[HostSocket], at: int = FOLD_AT) -> list[HostSocket | Folded]:
    """TIME_WAITs that no process holds, folded by (local address, peer) once there are
    ``at`` of them: each closed connection leaves one for a minute."""
    rows = list(rows)
    groups: dict[tuple[str, str], list[HostSocket]] = {}
    for row in rows:
        if row.state == "TIME_WAIT" and row.pid is None:
            groups.setdefault((row.local.rsplit(":", 1)[0], row.remote), []).append(row)
    out: list[HostSocket | Folded] = []
    shown: set[tuple[str, str]] = set()
    for row in rows:
        key = (row.local.rsplit(":", 1)[0], row.remote)
        group = groups.get(key) if row.state == "TIME_WAIT" and row.pid is None else None
        if group is None or len(group) < at:
            out.append(row)
        elif key not in shown:
            shown.add(key)
            out.append(Folded(row, len(group)))
    return out


def socket_table(title: Text | str, rows: list[HostSocket], *, folded: bool = True) -> Table:
    """A host's sockets: state, addresses, queues, owner and fd, and any timer."""
    table = Table(title=title, title_justify="left")
    numbers = ("recv-q", "send-q", "fd")
    for column in ("proto", "state", "local", "remote", *numbers[:2], "owner", "fd", "timer"):
        table.add_column(
            column,
            justify="right" if column in numbers else "left",
            no_wrap=column != "owner",  # addresses and states are never cut
        )
    for item in fold(rows) if folded else rows:
        row, count = (item.first, item.count) if isinstance(item, Folded) else (item, 1)
        if not row.state:
            table.add_row(
                "",
                Text("(no entry)", style="dim"),
                Text("held, but in no table: not yet bound, or closed", style="dim"),
                "",
                "",
                "",
                owner_of(row),
                str(row.fd),
                "",
            )
            continue
        state = Text(row.state, style=STATE_STYLE.get(row.state, ""))
        local = row.local
        if count > 1:
            state.append(f" x{count}", style="bold")
            local = f"{row.local.rsplit(':', 1)[0]}:*"
        table.add_row(
            row.protocol,
            state,
            local,
            "" if row.remote.endswith(":0") and row.state in ("LISTEN", "UNCONN") else row.remote,
            str(row.recv_q),
            str(row.send_q),
            owner_of(row),
            "" if row.fd is None else str(row.fd),
            "" if count > 1 else row.timer,
        )
    return table


# --- system calls and socket events on one time line -------------------------------------


def _fd_text(c: Syscall) -> str:
    if c.new_fd is not None and c.fd is not None:
        return f"{c.fd} → {c.new_fd}"  # accept: the listening fd, and the new one
    if c.new_fd is not None:
        return f"→ {c.new_fd}"
    return "" if c.fd is None else str(c.fd)


def shown(data: str | None, limit: int = 32) -> str:
    """Bytes for a cell: control bytes and undecodable ones as escapes (DNS is binary)."""
    if data is None:
        return ""
    text = "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in printable(data)
    )
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _call_row(c: Syscall, threads: bool) -> list[str | Text]:
    who = c.process + (f" [{c.pid}]" if threads and c.pid is not None else "")
    if c.kind == "signal":  # its siginfo is long and says little more than its name
        return [who, Text(c.name, style="bold red"), "", "", Text("delivered", style="dim"), ""]
    if c.kind != "call":
        return [who, Text(c.name, style="bold red"), "", "", Text(c.args, style="dim"), ""]
    result = Text(c.outcome, style="red" if c.failed else "green")
    data = shown(c.data) + ("…" if c.truncated and c.data is not None else "")
    return [who, Text(c.name, style="bold"), _fd_text(c), c.peer, result, Text(data)]


def _event_row(e: Event) -> list[str | Text]:
    ok = e.outcome in ("ok", "eof")
    addresses = f"{e.local} → {e.remote}" if e.remote else e.local
    outcome = e.outcome + (f" ({e.note})" if e.note else "")
    bytes_ = "" if e.nbytes is None else f" {e.nbytes} B"
    return [
        f"{e.host} ({e.sock})",
        Text(e.op, style="italic"),
        "",
        addresses,
        Text(outcome + bytes_, style="green" if ok else "red"),
        Text(shown(e.data)),
    ]


def calls_table(
    calls: Iterable[Syscall], events: Iterable[Event] = (), title: str = "system calls"
) -> Table:
    """System calls (bold) and socket events (italic) on one clock, in the order they
    returned: a recv that waited is shown when its data came, after the peer's send."""
    calls, events = list(calls), list(events)
    threads = len({(c.process, c.pid) for c in calls if c.kind == "call"}) > len(
        {c.process for c in calls}
    )
    table = Table(title=title, title_justify="left")
    rows: list[tuple[float, int, list[str | Text]]] = [
        (c.t + (c.dt or 0.0), 0, _call_row(c, threads)) for c in calls
    ]
    rows += [(e.t + e.dt, 1, _event_row(e)) for e in events]
    widest = [max((len(str(r[2][i])) for r in rows), default=0) for i in range(6)]
    # The short columns keep their width; addresses and data wrap in a narrow terminal.
    for column, width in zip(
        ("t (ms)", "who", "call", "fd", "peer / addresses", "returned", "data"),
        (9, *widest),
        strict=True,
    ):
        short = column not in ("peer / addresses", "data")
        table.add_column(
            column,
            justify="right" if column == "t (ms)" else "left",
            no_wrap=short,
            min_width=min(width, 24) if short else None,
        )
    for t, _, cells in sorted(rows, key=lambda r: (r[0], r[1])):
        table.add_row(f"{t * 1000:.2f}", *cells)
    table.caption = "t: when each call returned, on the lab's clock (CLOCK_MONOTONIC)"
    table.caption_justify = "left"
    return table
