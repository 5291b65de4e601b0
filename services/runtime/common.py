"""What every lab service shares: its identity, settings from the environment, logging."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


class ServiceError(Exception):
    """Root of the errors the services raise on purpose."""


class ConfigError(ServiceError):
    def __init__(self, name: str, value: str, reason: str) -> None:
        super().__init__(f"{name}={value!r}: {reason}")
        self.name = name
        self.value = value


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, raw, "not a whole number") from None
    if value < minimum:
        raise ConfigError(name, raw, f"must be at least {minimum}")
    return value


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(name, raw, "not a number") from None


@dataclass(frozen=True)
class Identity:
    """Who is answering: reported by the HTTP service and in every log line."""

    service: str
    hostname: str
    pid: int

    @classmethod
    def here(cls, default_service: str) -> Identity:
        return cls(
            service=os.environ.get("LAB_SERVICE", default_service),
            hostname=socket.gethostname(),
            pid=os.getpid(),
        )


def log(service: str, message: str) -> None:
    stamp = time.strftime("%H:%M:%S", time.gmtime())
    print(f"{stamp} {service}[{os.getpid()}] {message}", file=sys.stdout, flush=True)


def peer_text(peer: object) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)


def run_until_signalled(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run an asyncio service until SIGTERM or SIGINT, then let it close cleanly."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await main(stop)

    try:
        asyncio.run(runner())
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


async def close_quietly(writer: asyncio.StreamWriter) -> None:
    """Flush what can still be sent, then close; the peer may already be gone."""
    with contextlib.suppress(OSError):
        await writer.drain()
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


StreamHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class ConnectionLimit:
    """At most ``maximum`` connections at once. One more is answered with ``refusal``
    and closed straight away: refused cleanly, never left hanging in a backlog."""

    def __init__(self, service: str, maximum: int, refusal: bytes) -> None:
        self.service = service
        self.maximum = maximum
        self.refusal = refusal
        self.active = 0
        self.refused = 0

    def wrap(self, handler: StreamHandler) -> StreamHandler:
        async def limited(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if self.active >= self.maximum:
                self.refused += 1
                if self.refused == 1 or self.refused % 1000 == 0:
                    log(
                        self.service,
                        f"connection limit {self.maximum} reached: {self.refused} refused so far",
                    )
                writer.write(self.refusal)
                await close_quietly(writer)
                return
            self.active += 1
            try:
                await handler(reader, writer)
            finally:
                self.active -= 1

        return limited


async def read_or_idle(reader: asyncio.StreamReader, size: int, idle: float) -> bytes | None:
    """The next bytes, b"" at EOF, or None when the peer sent nothing for ``idle`` seconds
    (0: wait forever)."""
    if idle <= 0:
        return await reader.read(size)
    try:
        async with asyncio.timeout(idle):
            return await reader.read(size)
    except TimeoutError:
        return None
