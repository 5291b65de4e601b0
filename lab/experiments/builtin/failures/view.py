"""The failure matrix as a table: faults down, clients across, each cell what the client
saw, when it noticed, and whether that was as expected."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

VERDICT_STYLE = {
    "answered": "green",
    "silent": "yellow",
    "refused": "red",
    "eof-then-epipe": "red",
    "eof-then-silent": "magenta",
    "unseen": "dim",
}


def matrix_table(cells: list[dict[str, Any]], verdicts: dict[str, bool]) -> Table:
    """Faults down, clients across; each cell what the client saw and what came after.

    ``verdicts`` maps "row.client" to whether the cell matched its expectation.
    """
    rows = list(dict.fromkeys(c["row"] for c in cells))
    clients = list(dict.fromkeys(c["client"] for c in cells))
    table = Table(
        title="failure matrix: what each client saw", title_justify="left", show_lines=True
    )
    table.add_column("fault", no_wrap=True)
    for client in clients:
        table.add_column(client)
    by_key = {(c["row"], c["client"]): c for c in cells}
    for row in rows:
        line: list[str | Text] = [row]
        for client in clients:
            c = by_key.get((row, client))
            if c is None:
                line.append("")
                continue
            text = Text(c["during"], style=VERDICT_STYLE.get(c["during"], "bold"))
            noticed = c["noticed_after_s"]
            text.append(
                "\n"
                + (f"noticed {noticed * 1000:.0f} ms" if noticed is not None else "never noticed"),
                style="dim",
            )
            text.append("\nsame socket " + ("works" if c["old_socket_works"] else "dead"))
            if c["late"]:
                text.append(f"\n{len(c['late'])} late", style="cyan")
            if c["lost"]:
                text.append(f"\n{len(c['lost'])} lost", style="red")
            key = f"{row}.{client}"
            if key in verdicts:
                text.append(
                    "\nas expected" if verdicts[key] else "\nNOT AS EXPECTED",
                    style="green" if verdicts[key] else "bold red",
                )
            line.append(text)
        table.add_row(*line)
    return table
