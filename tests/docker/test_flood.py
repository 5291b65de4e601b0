"""A sustained flood from a client that never reads: the server's memory must stay flat.

The servers wait for each reply to drain before reading more, so a client that
does not read fills kernel buffers and TCP's window closes; nothing piles up
in the process. Measured as the process's resident memory (VmRSS), read from
/proc inside its host.
"""

from __future__ import annotations

import socket
import time

import pytest

from lab.backends.engine import Engine
from lab.services.protocols.resp import encode_command

FLOOD_BYTES = 32 * 1024 * 1024  # flood until this much was sent...
FLOOD_SECONDS = 15.0  # ...or this long has passed (a loaded machine sends slower)
# Measured here: tcp-shout grows ~0.7 MB and db ~0.2 MB while tens of MB are flooded at
# them (one read buffer and one reply in flight). A server that kept what it could not
# send would grow by what was sent: the bound is a few MB, and a fraction of the flood.
MAX_GROWTH_KB = 3 * 1024


def rss_kb(lab: Engine, service: str, port: int) -> int:
    host = lab.topology.host_of(service).name
    pid = next(r.pid for r in lab.port_table(host) if r.service == service and r.port == port)
    status = lab.run_in(host, ["cat", f"/proc/{pid}/status"]).decode()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))


@pytest.mark.parametrize(
    ("service", "port", "chunk"),
    [
        ("tcp-shout", 8080, b"flood " * 10_000),
        ("db", 6379, encode_command("SET", "flood", "x" * 100) * 500),
    ],
)
def test_memory_stays_flat_under_a_flood_nobody_reads(
    lab: Engine, service: str, port: int, chunk: bytes
) -> None:
    before = rss_kb(lab, service, port)
    sent = 0
    with socket.create_connection(("127.0.0.1", lab.published_port(service, port))) as s:
        s.settimeout(0.5)
        deadline = time.monotonic() + FLOOD_SECONDS
        while time.monotonic() < deadline and sent < FLOOD_BYTES:
            try:
                sent += s.send(chunk)
            except TimeoutError:
                continue  # the window is shut: the server stopped reading, as it should
        during = rss_kb(lab, service, port)
    assert sent > 4 * MAX_GROWTH_KB * 1024, f"the flood never got going: {sent} bytes sent"
    growth = during - before
    assert growth < MAX_GROWTH_KB, f"{service} grew {growth} kB for {sent} bytes"
    assert growth * 1024 < sent / 8, f"{service} kept {growth} kB of {sent} bytes it was sent"
    assert lab.states()[service].ready
