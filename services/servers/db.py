"""The db service: a Redis-protocol key-value stub on TCP 6379.

Thin socket code around ``services.protocols.resp`` (parsing, encoding), ``services.protocols.kv``
(command logic) and ``services.protocols.aof`` (the append-only log). Pipelined commands
are answered in order with one write per read; their writes are logged (and,
with ``appendfsync always``, fsynced) before any of those replies leave. A
malformed stream gets ``-ERR Protocol error`` and the connection is closed,
because RESP cannot resynchronise; every other client is unaffected.

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
from dataclasses import dataclass

from services.protocols.aof import POLICIES, record
from services.protocols.kv import Outcome, Store
from services.protocols.resp import OK, Error, ProtocolError, RequestParser, encode
from services.runtime.common import (
    ConnectionLimit,
    Identity,
    close_quietly,
    env_float,
    env_int,
    log,
    peer_text,
    read_or_idle,
    run_until_signalled,
)
from services.servers.db_log import AppendOnlyLog

READ_SIZE = 65536


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

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = peer_text(writer.get_extra_info("peername"))
        log(self.service, f"connect {peer}")
        session = Session(RequestParser(self.max_bulk))
        how = "closed by peer"
        try:
            while data := await read_or_idle(reader, READ_SIZE, self.idle):
                out, close = self.answer(session, data)
                if out:
                    writer.write(out)
                    await writer.drain()
                if close:
                    how = "closed by server"
                    break
            else:
                if data is None:
                    how = f"idle for {self.idle:g} s"
        except (ConnectionResetError, BrokenPipeError) as exc:
            how = f"reset ({type(exc).__name__})"
        finally:
            await close_quietly(writer)
            log(self.service, f"disconnect {peer}: {how}")

    def answer(self, session: Session, data: bytes) -> tuple[bytes, bool]:
        """Replies to every command completed by ``data``, and whether to close."""
        replies: list[bytes] = []
        close = False
        try:
            commands = session.parser.feed(data)
        except ProtocolError as exc:
            return encode(Error(f"ERR {exc.message}")), True
        now = time.time()  # the wall clock: logged expiry times must survive a restart
        for command in commands:
            outcome = self.config(command) or self.store.execute(command, now)
            if outcome.wrote and self.aof is not None:
                self.aof.append(record(command, now))
            if outcome.protocol is not None:
                session.protocol = outcome.protocol
            replies.append(encode(outcome.reply, session.protocol))
            if outcome.close:
                close = True
                break
        if self.aof is not None:
            self.aof.commit()  # before any reply leaves: what is acknowledged is logged
        return b"".join(replies), close

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
    server = DbServer(store, identity.service, aof, idle, max_bulk)
    limit = ConnectionLimit(
        identity.service, max_clients, encode(Error("ERR max number of clients reached"))
    )
    return await asyncio.start_server(
        limit.wrap(server.handle), host, port, reuse_address=True, backlog=1024
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
