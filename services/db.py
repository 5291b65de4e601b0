"""The db service: a Redis-protocol key-value stub on TCP 6379.

Thin socket code around ``services.resp`` (parsing, encoding) and
``services.kv`` (command logic). Pipelined commands are answered in order with
one write per read. A malformed stream gets ``-ERR Protocol error`` and the
connection is closed, because RESP cannot resynchronise; every other client is
unaffected.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from services.common import Identity, close_quietly, env_int, log, peer_text, run_until_signalled
from services.kv import Store
from services.resp import Error, ProtocolError, RequestParser, encode

READ_SIZE = 65536


@dataclass
class Session:
    """What one connection remembers: its partial input and the RESP version it speaks."""

    parser: RequestParser = field(default_factory=RequestParser)
    protocol: int = 2


class DbServer:
    def __init__(self, store: Store, service: str = "db") -> None:
        self.store = store
        self.service = service

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = peer_text(writer.get_extra_info("peername"))
        log(self.service, f"connect {peer}")
        session = Session()
        how = "closed by peer"
        try:
            while data := await reader.read(READ_SIZE):
                out, close = self.answer(session, data)
                if out:
                    writer.write(out)
                    await writer.drain()
                if close:
                    how = "closed by server"
                    break
        except (ConnectionResetError, BrokenPipeError) as exc:
            how = f"reset ({type(exc).__name__})"
        finally:
            await close_quietly(writer)
            log(self.service, f"disconnect {peer}: {how}")

    def answer(self, session: Session, data: bytes) -> tuple[bytes, bool]:
        """Replies to every command completed by ``data``, and whether to close."""
        replies: list[bytes] = []
        try:
            commands = session.parser.feed(data)
        except ProtocolError as exc:
            return encode(Error(f"ERR {exc.message}")), True
        now = time.monotonic()
        for command in commands:
            outcome = self.store.execute(command, now)
            if outcome.protocol is not None:
                session.protocol = outcome.protocol
            replies.append(encode(outcome.reply, session.protocol))
            if outcome.close:
                return b"".join(replies), True
        return b"".join(replies), False


async def start(host: str, port: int, store: Store | None = None) -> asyncio.Server:
    identity = Identity.here("db")
    if store is None:
        store = Store({"process_id": identity.pid, "hostname": identity.hostname, "tcp_port": port})
    server = DbServer(store, identity.service)
    return await asyncio.start_server(server.handle, host, port, reuse_address=True)


async def serve(stop: asyncio.Event) -> None:
    identity = Identity.here("db")
    port = env_int("DB_PORT", 6379)
    server = await start("0.0.0.0", port)
    log(identity.service, f"listening on tcp 0.0.0.0:{port}")
    async with server:
        await stop.wait()
    log(identity.service, "stopped")


def main() -> None:
    run_until_signalled(serve)


if __name__ == "__main__":
    main()
