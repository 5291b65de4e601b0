"""Tier 2: the real servers, in this process, on 127.0.0.1 with ports the kernel picks."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from lab.services.protocols.http11 import Limits
from lab.services.servers import db, http_server, tcp_shout, udp_shout
from lab.services.servers.http_server import Settings, Upstream

T = TypeVar("T")


class LoopThread:
    """An asyncio loop on a background thread, so blocking test clients can talk to it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close_server(self, server: asyncio.AbstractServer) -> None:
        """Close a server from its own loop: asyncio's objects are not thread-safe, and
        closing one from the test's thread raced with the loop (seen under load)."""

        async def close() -> None:
            server.close()

        self.run(close())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


def port_of(server: asyncio.Server) -> int:
    return int(server.sockets[0].getsockname()[1])


@pytest.fixture(scope="session")
def loop() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.close()


@pytest.fixture(scope="session")
def tcp_shout_port(loop: LoopThread) -> Iterator[int]:
    server = loop.run(tcp_shout.start("127.0.0.1", 0))
    yield port_of(server)
    loop.close_server(server)


@pytest.fixture(scope="session")
def udp_shout_port() -> Iterator[int]:
    server = udp_shout.UdpShoutServer("127.0.0.1", 0, log_datagrams=False)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    yield server.port
    server.stop()
    thread.join(timeout=5)


@pytest.fixture(scope="session")
def db_port(loop: LoopThread) -> Iterator[int]:
    server = loop.run(db.start("127.0.0.1", 0))
    yield port_of(server)
    loop.close_server(server)


@pytest.fixture(scope="session")
def closed_port() -> Iterator[int]:
    """A port bound but not listening: connecting to it is refused, and nobody else gets it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


def settings(db_port: int, tcp_port: int, udp_port: int, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "db": Upstream("db", "127.0.0.1", db_port),
        "tcp_shout": Upstream("tcp-shout", "127.0.0.1", tcp_port),
        "udp_shout": Upstream("udp-shout", "127.0.0.1", udp_port),
        "limits": Limits(request_line=1024, header_section=4096, body=64 * 1024),
        "read_timeout": 0.5,
        "idle_timeout": 30.0,
        "upstream_timeout": 2.0,
    }
    return Settings(**{**base, **overrides})


@pytest.fixture(scope="session")
def http_port(
    loop: LoopThread, db_port: int, tcp_shout_port: int, udp_shout_port: int
) -> Iterator[int]:
    server = loop.run(
        http_server.start("127.0.0.1", 0, settings(db_port, tcp_shout_port, udp_shout_port))
    )
    yield port_of(server)
    loop.close_server(server)


@pytest.fixture(scope="session")
def http_without_db_port(
    loop: LoopThread, closed_port: int, tcp_shout_port: int, udp_shout_port: int
) -> Iterator[int]:
    server = loop.run(
        http_server.start("127.0.0.1", 0, settings(closed_port, tcp_shout_port, udp_shout_port))
    )
    yield port_of(server)
    loop.close_server(server)
