"""The db service: a Redis-protocol key-value stub on TCP 6379.

Thin socket code around ``services.protocols.resp`` (parsing, encoding), ``services.protocols.kv``
(command logic) and ``services.protocols.aof`` (the append-only log). Pipelined commands
are answered in order with one write per read. A malformed stream gets ``-ERR Protocol
error`` and the connection is closed, because RESP cannot resynchronise; every other
client is unaffected.

Group commit, as Redis does: the replies of every connection that wrote during one turn
of the event loop wait until that turn's log writes are handed to the kernel (and, under
``appendfsync always``, fsynced: once, for all of them); then they all leave. No reply
leaves before the write it acknowledges is as durable as the policy promises. The socket
code is an asyncio Protocol (callbacks, no stream objects): the per-request cost of
Python is most of this server's cost.

Settings (environment):
  DB_PORT             6379
  DB_MAX_CLIENTS      1000   one more gets "-ERR max number of clients reached"
  DB_IDLE_TIMEOUT     300    seconds of silence before a connection is closed (0: never)
  DB_MAX_BULK_BYTES   16 MiB the largest argument accepted
  DB_AOF_PATH         ""     the append-only log; empty keeps everything in memory only
  DB_APPENDFSYNC      always always | everysec | no (also CONFIG SET appendfsync)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass, field

from ..protocols.aof import POLICIES, record
from ..protocols.kv import Outcome, Store
from ..protocols.resp import OK, Error, ProtocolError, RequestParser, encode
from ..runtime.common import (
    Identity,
    env_float,
    env_int,
    log,
    peer_text,
    run_until_signalled,
)
from .db_log import AppendOnlyLog


@dataclass
class Session:
    """What one connection remembers: its partial input and the RESP version it speaks."""

    parser: RequestParser
    protocol: int = 2


@dataclass
class DbServer:
    store: Store
    service: str = "db"
    aof: AppendOnlyLog | None = None
    idle: float = 0.0
    max_bulk: int = 16 * 1024 * 1024
    max_clients: int = 1000
    connections: set[DbConnection] = field(default_factory=set)
    refused: int = 0
    _waiting: list[tuple[DbConnection, bytes, bool]] = field(default_factory=list)

    def answer(self, session: Session, data: bytes) -> tuple[bytes, bool, bool]:
        """Replies to every command completed by ``data``, whether to close, and whether
        anything was written to the log (the replies then wait for the group commit)."""
        replies: list[bytes] = []
        close = wrote = False
        try:
            commands = session.parser.feed(data)
        except ProtocolError as exc:
            return encode(Error(f"ERR {exc.message}")), True, False
        now = time.time()  # the wall clock: logged expiry times must survive a restart
        for command in commands:
            outcome = self.config(command) or self.store.execute(command, now)
            if outcome.wrote and self.aof is not None:
                self.aof.append(record(command, now))
                wrote = True
            if outcome.protocol is not None:
                session.protocol = outcome.protocol
            replies.append(encode(outcome.reply, session.protocol))
            if outcome.close:
                close = True
                break
        return b"".join(replies), close, wrote

    def after_commit(self, connection: DbConnection, out: bytes, close: bool) -> None:
        """Send ``out`` once this turn's writes are committed (one commit for everyone)."""
        if not self._waiting:
            asyncio.get_running_loop().call_soon(self.commit)
        self._waiting.append((connection, out, close))

    def commit(self) -> None:
        waiting, self._waiting = self._waiting, []
        if self.aof is not None:
            self.aof.commit()  # write(), and fsync() under always: before any reply leaves
        for connection, out, close in waiting:
            connection.send(out, close)

    def config(self, command: list[bytes]) -> Outcome | None:
        """CONFIG GET/SET appendfsync, which belong to the server, not the store."""
        if len(command) < 3 or command[0].upper() != b"CONFIG":
            return None
        verb, name = command[1].upper(), command[2].lower()
        if name != b"appendfsync":
            return None
        current = self.aof.policy if self.aof else "no"
        if verb == b"GET":
            return Outcome({"appendfsync": current.encode()})  # a map in RESP3, pairs in RESP2
        if verb == b"SET" and len(command) == 4:
            policy = command[3].decode(errors="replace").lower()
            if self.aof is None:
                return Outcome(Error("ERR appendonly is off: set DB_AOF_PATH"))
            if policy not in POLICIES:
                return Outcome(Error(f"ERR appendfsync must be one of {', '.join(POLICIES)}"))
            self.aof.commit()
            self.aof.policy = policy
            log(self.service, f"appendfsync is now {policy}")
            return Outcome(OK)
        return None

    def close_idle(self) -> None:
        """Close connections silent for longer than ``idle`` (called about once a second)."""
        if self.idle <= 0:
            return
        limit = time.monotonic() - self.idle
        for connection in [c for c in self.connections if c.last_heard < limit]:
            connection.how = f"idle for {self.idle:g} s"
            connection.close()


class DbConnection(asyncio.Protocol):
    """One client: bytes in, replies out, reading paused while its replies cannot leave."""

    def __init__(self, server: DbServer) -> None:
        self.server = server
        self.session = Session(RequestParser(server.max_bulk))
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.how = "closed by peer"
        self.last_heard = time.monotonic()
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.peer = peer_text(transport.get_extra_info("peername"))
        server = self.server
        if len(server.connections) >= server.max_clients:
            server.refused += 1
            if server.refused == 1 or server.refused % 1000 == 0:
                log(
                    server.service,
                    f"connection limit {server.max_clients} reached: "
                    f"{server.refused} refused so far",
                )
            transport.write(encode(Error("ERR max number of clients reached")))
            self.closing = True
            transport.close()
            return
        server.connections.add(self)
        log(server.service, f"connect {self.peer}")

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self.last_heard = time.monotonic()
        out, close, wrote = self.server.answer(self.session, data)
        if wrote or self.server._waiting:
            # In order: behind the replies that already wait for this turn's commit.
            self.server.after_commit(self, out, close)
        else:
            self.send(out, close)

    def send(self, out: bytes, close: bool) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if out:
            self.transport.write(out)
        if close:
            self.how = "closed by server" if self.how == "closed by peer" else self.how
            self.close()

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()  # what is buffered still goes out first

    def pause_writing(self) -> None:
        # The client does not read its replies: stop reading its requests too, so that
        # nothing piles up in this process (the kernel's window closes on the client).
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and not self.closing:
            self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self not in self.server.connections:
            return
        self.server.connections.discard(self)
        if isinstance(exc, (ConnectionResetError, BrokenPipeError)):
            self.how = f"reset ({type(exc).__name__})"
        log(self.server.service, f"disconnect {self.peer}: {self.how}")


async def start(
    host: str,
    port: int,
    store: Store | None = None,
    *,
    aof: AppendOnlyLog | None = None,
    max_clients: int = 1000,
    idle: float = 300.0,
    max_bulk: int = 16 * 1024 * 1024,
) -> asyncio.Server:
    identity = Identity.here("db")
    if store is None:
        store = Store({"process_id": identity.pid, "hostname": identity.hostname, "tcp_port": port})
    server = DbServer(store, identity.service, aof, idle, max_bulk, max_clients)
    loop = asyncio.get_running_loop()

    def sweep() -> None:
        server.close_idle()
        loop.call_later(1.0, sweep)

    loop.call_later(1.0, sweep)
    return await loop.create_server(
        lambda: DbConnection(server), host, port, reuse_address=True, backlog=1024
    )


def open_log(store: Store, service: str) -> AppendOnlyLog | None:
    """Replay the append-only log into ``store`` and keep it open for new writes."""
    path = os.environ.get("DB_AOF_PATH", "")
    if not path:
        return None
    policy = os.environ.get("DB_APPENDFSYNC", "always")
    now = time.time()
    count, dropped = AppendOnlyLog.read(path, lambda command: store.execute(command, now))
    log(
        service,
        f"replayed {count} writes from {path}"
        + (f"; dropped a torn tail of {dropped} bytes" if dropped else ""),
    )
    unsafe = env_int("DB_UNSAFE_ACK_BEFORE_FSYNC", 0) == 1
    if unsafe:
        log(service, "DB_UNSAFE_ACK_BEFORE_FSYNC: acknowledging before fsync, deliberately wrong")
    return AppendOnlyLog(path, policy, unsafe=unsafe)


async def serve(stop: asyncio.Event) -> None:
    identity = Identity.here("db")
    port = env_int("DB_PORT", 6379)
    store = Store({"process_id": identity.pid, "hostname": identity.hostname, "tcp_port": port})
    aof = open_log(store, identity.service)
    server = await start(
        "0.0.0.0",
        port,
        store,
        aof=aof,
        max_clients=env_int("DB_MAX_CLIENTS", 1000, minimum=1),
        idle=env_float("DB_IDLE_TIMEOUT", 300.0),
        max_bulk=env_int("DB_MAX_BULK_BYTES", 16 * 1024 * 1024, minimum=1),
    )
    log(
        identity.service,
        f"listening on tcp 0.0.0.0:{port}"
        + (f", appendfsync {aof.policy}" if aof else ", in memory only"),
    )

    async def everysec() -> None:
        while aof is not None:
            await asyncio.sleep(1)
            aof.tick()

    ticker = asyncio.create_task(everysec())
    async with server:
        await stop.wait()
    ticker.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await ticker
    if aof is not None:
        aof.close()
    log(identity.service, "stopped")


def main() -> None:
    run_until_signalled(serve)


if __name__ == "__main__":
    main()
