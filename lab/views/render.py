"""Terminal output: rich tables for people, the same data as JSON for programs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from lab.backends.model import HostStatus, Removed, ServiceState
from lab.services.probes.porttable import Entry
from lab.services.probes.sockscript import Event, printable

if TYPE_CHECKING:  # for a type only: importing it loads every experiment
    from lab.experiments.model import Result

STATE_STYLE = {"healthy": "green", "none": "green", "starting": "yellow", "unhealthy": "red"}


def state_text(state: ServiceState | None) -> Text:
    if state is None:
        return Text("absent", style="dim")
    if state.status != "running":
        return Text(f"{state.status} ({state.exit_code})", style="red")
    return Text(
        state.health if state.health != "none" else "running",
        style=STATE_STYLE.get(state.health, ""),
    )


def owner_text(row: Entry) -> str:
    if row.pid is not None:
        fd = f", fd {row.fd}" if row.fd is not None else ""
        return f"{row.service or row.command} (pid {row.pid}{fd})"
    if row.address == "127.0.0.11":
        return "dockerd (embedded DNS, not a process of this host)"
    return "(owner not visible from this host)"


def port_table(
    title: Text | str, rows: list[Entry] | None, published: dict[tuple[int, str], int | None]
) -> Table:
    """One host's port table: each socket, its owner, and where it is published."""
    table = Table(title=title, title_justify="left", expand=False)
    table.add_column("proto")
    table.add_column("local address")
    table.add_column("port", justify="right")
    table.add_column("owner (process on this host)")
    table.add_column("published on the Docker host")
    if rows is None:
        table.add_row("", "", "", Text("host is not running: no port table", style="red"), "")
        return table
    for row in rows:
        bound = published.get((row.port, row.protocol.rstrip("6")))
        table.add_row(
            row.protocol,
            row.address,
            str(row.port),
            Text(owner_text(row), style="" if row.pid else "dim"),
            f"127.0.0.1:{bound}" if bound else "",
        )
    return table


def status_tables(report: list[HostStatus]) -> list[Table]:
    tables = []
    for entry in report:
        host = entry.host
        addresses = ", ".join(
            i.ip if len(host.interfaces) == 1 else f"{i.ip} ({i.network})" for i in host.interfaces
        )
        title = Text.assemble(
            (host.name, "bold"),
            f"  {addresses}  ",
            state_text(entry.state),
            "  (client)" if host.role == "client" else "",
            f"  on machine {entry.machine}" if entry.machine else "",
            f"  aliases: {', '.join(host.aliases)}" if host.aliases else "",
        )
        published = {(p.container_port, p.protocol): bound for p, bound in entry.published}
        table = port_table(title, entry.ports, published)
        processes = ", ".join(f"{p.service} ({state_text(p).plain})" for p in entry.processes)
        notes = [f"processes: {processes or 'none'}"]
        if entry.differs:
            notes.append(
                f"[red]not as the topology says: {'; '.join(entry.differs)}[/] "
                "(`lab chaos restore` mends it)"
            )
        if host.link:
            notes.append(f"link (declared): {host.link}")
        if host.routes:
            notes.append(f"routes: {'; '.join(map(str, host.routes))}")
        if host.forwarding:
            notes.append("forwards between its networks (a router)")
        table.caption = "\n".join(notes)
        table.caption_justify = "left"
        tables.append(table)
    return tables


def recorded_port_tables(tables: dict[str, list[dict[str, Any]]]) -> list[Table]:
    """Port tables as an experiment recorded them (facts), host by host."""
    return [
        port_table(Text(host, style="bold"), [Entry(**row) for row in rows], {})
        for host, rows in tables.items()
    ]


def status_json(report: list[HostStatus]) -> list[dict[str, Any]]:
    return [
        {
            "host": entry.host.name,
            "ip": entry.host.ip,
            "ips": {i.network: i.ip for i in entry.host.interfaces},
            "role": entry.host.role,
            "state": asdict(entry.state) if entry.state else None,
            "processes": [asdict(p) for p in entry.processes],
            "ports": [asdict(r) for r in entry.ports] if entry.ports is not None else None,
            "published": [{**asdict(p), "bound_host_port": bound} for p, bound in entry.published],
            "link": entry.host.link,
            "routes": [str(r) for r in entry.host.routes],
            "differs": entry.differs,
            "machine": entry.machine,
        }
        for entry in report
    ]


def events_table(events: list[Event], title: str) -> Table:
    """A timeline: every socket operation, where it ran, and what the kernel answered.

    Host and socket columns appear only when there is more than one of them.
    """
    hosts = sorted({e.host for e in events})
    socks = sorted({e.sock for e in events})
    columns = [
        "t (ms)",
        *(["host"] if len(hosts) > 1 else []),
        *(["sock"] if len(socks) > 1 else []),
        "op",
        "local",
        "remote",
        "outcome",
        "bytes",
        "data",
    ]
    if len(hosts) == 1:
        title += f"  (from {hosts[0]})"
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(
            column,
            justify="right" if column in ("t (ms)", "bytes") else "left",
            no_wrap=column != "data",
            overflow="ellipsis",
        )
    for e in events:
        ok = e.outcome in ("ok", "eof")
        cells: dict[str, str | Text] = {
            "t (ms)": f"{e.t * 1000:.2f}",
            "host": e.host,
            "sock": e.sock,
            "op": e.op,
            "local": e.local,
            "remote": e.remote,
            "outcome": Text(
                e.outcome + (f" ({e.note})" if e.note else ""), style="green" if ok else "red"
            ),
            "bytes": "" if e.nbytes is None else str(e.nbytes),
            "data": Text(preview(e.data)),
        }
        table.add_row(*(cells[c] for c in columns))
    return table


def preview(data: str | None, limit: int = 40) -> str:
    """Bytes for a table cell: line ends made visible, long data cut."""
    if not data:
        return ""
    shown = printable(data).replace("\r", "\\r").replace("\n", "\\n")
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def removed_text(removed: Removed) -> str:
    if not removed:
        return "nothing to remove: no container, network or volume of this lab exists"
    parts = [
        f"{len(removed.containers)} containers" if removed.containers else "",
        f"{len(removed.networks)} networks" if removed.networks else "",
        f"{len(removed.volumes)} volumes" if removed.volumes else "",
    ]
    return "removed " + ", ".join(p for p in parts if p)


class Reporter:
    """Progress for slow steps: a spinner on a terminal, plain lines elsewhere (CI logs)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._status: Any = None

    @contextmanager
    def running(self, title: str) -> Iterator[None]:
        if not self.console.is_terminal:
            self.console.print(title)
            yield
            return
        with self.console.status(title) as status:
            self._status = status
            try:
                yield
            finally:
                self._status = None

    def __call__(self, message: str, *, detail: bool = False) -> None:
        if self._status is not None:
            self._status.update(message)
            if not detail:
                self.console.print(f"  {message}", highlight=False)
        elif not detail:
            self.console.print(f"  {message}", highlight=False)


# --- experiments ----------------------------------------------------------------


def collapse(events: list[Event]) -> list[tuple[Event, int, int]]:
    """Consecutive events alike in host, socket, op and outcome, as (first, count, bytes)."""
    rows: list[tuple[Event, int, int]] = []
    for e in events:
        if rows:
            head, count, total = rows[-1]
            if (head.host, head.sock, head.op, head.outcome, head.note) == (
                e.host,
                e.sock,
                e.op,
                e.outcome,
                e.note,
            ) and e.op.startswith("recv"):
                rows[-1] = (head, count + 1, total + (e.nbytes or 0))
                continue
        rows.append((e, 1, e.nbytes or 0))
    return rows


def timeline_table(events: list[Event]) -> Table:
    """Every socket operation of an experiment; runs of alike reads folded into one row."""
    table = Table(title="timeline", title_justify="left")
    for column in ("t (ms)", "host", "sock", "op", "local → remote", "outcome", "bytes", "data"):
        table.add_column(
            column,
            justify="right" if column in ("t (ms)", "bytes") else "left",
            no_wrap=column != "data",
            overflow="ellipsis",
        )
    for e, count, total in collapse(events):
        ok = e.outcome in ("ok", "eof")
        op = e.op if count == 1 else f"{e.op} x{count}"
        nbytes = "" if e.nbytes is None else str(total if count > 1 else e.nbytes)
        outcome = e.outcome + (f" ({e.note})" if e.note else "")
        table.add_row(
            f"{e.t * 1000:.2f}",
            e.host,
            e.sock,
            op,
            f"{e.local} → {e.remote}" if e.remote else e.local,
            Text(outcome, style="green" if ok else "red"),
            nbytes,
            Text(preview(e.data, 32) if count == 1 else ""),
        )
    return table


def deliveries_table(runs: list[dict[str, Any]]) -> Table:
    """impaired-delivery: each protocol through each link, in numbers."""
    table = Table(title="delivery through the impaired link", title_justify="left")
    for column in (
        "link",
        "protocol",
        "delivered",
        "in order",
        "on the wire",
        "resent",
        "p50 ms",
        "p99 ms",
    ):
        table.add_column(column, justify="left" if column in ("link", "protocol") else "right")
    for r in runs:
        table.add_row(
            r["link"],
            r["protocol"],
            f"{r['delivered']}/{r['sent']}",
            "yes" if r["in_order"] else "[red]no",
            str(r["on_wire"]),
            str(r["retransmissions"]) if r["protocol"] == "tcp" else "-",
            "-" if r["p50_ms"] is None else f"{r['p50_ms']:.1f}",
            "-" if r["p99_ms"] is None else f"{r['p99_ms']:.1f}",
        )
    return table


def checks_table(result: Result) -> Table:
    predicted = (result.predictions or {}).get("by_claim", {})
    answers = (result.predictions or {}).get("answers", {})
    table = Table(
        title=f"{result.experiment}: {result.question}", title_justify="left", show_lines=True
    )
    table.add_column("claim", ratio=3)
    table.add_column("held", no_wrap=True)
    table.add_column("observed", ratio=4)
    if predicted:
        table.add_column("you said", no_wrap=True)
    for c in result.checks:
        row: list[str | Text] = [
            Text(c.claim),
            Text(
                "yes" if c.held else "NO" if c.judged else "not judged",
                style="green" if c.held else "bold red" if c.judged else "yellow",
            ),
            Text(c.observed),
        ]
        if predicted:
            if c.id in predicted:
                said = "holds" if answers[c.id] else "fails"
                row.append(
                    Text(
                        said + (" ✓" if predicted[c.id] else " ✗"),
                        style="green" if predicted[c.id] else "red",
                    )
                )
            else:
                row.append("")
        table.add_row(*row)
    return table


def wire_text(data: str) -> Text:
    """Bytes as they went over the wire, with every CR and LF shown as \\r and \\n."""
    text = Text()
    for line in data.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        ends = line[len(body) :]
        text.append(body)
        text.append(ends.replace("\r", "\\r").replace("\n", "\\n"), style="bold magenta")
        text.append("\n")
    return text
