"""TCP shout server: the seed's ``tcp_socket_server`` done right.

Many clients at once, each on its own connection; text uppercased even when a
multi-byte character is split across reads; undecodable bytes echoed unchanged
(see ``services.protocols.shout``); a half-close (the client's FIN) answered by flushing
and closing our side; a reset logged, never fatal.
"""

from __future__ import annotations

import asyncio

from ..protocols.shout import StreamShouter
from ..runtime.common import (
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

READ_SIZE = 65536


async def handle(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, service: str, idle: float = 0
) -> None:
    peer = peer_text(writer.get_extra_info("peername"))
    log(service, f"connect {peer}")
    shouter = StreamShouter()
    received = 0
    how = "closed by peer"
    try:
        while data := await read_or_idle(reader, READ_SIZE, idle):
            received += len(data)
            reply = shouter.feed(data)
            if reply:
                writer.write(reply)
                await writer.drain()
        if data is None:
            how = f"idle for {idle:g} s"
        # EOF: the peer half-closed (or closed). Answer what is left, then FIN.
        tail = shouter.finish()
        if tail:
            writer.write(tail)
            await writer.drain()
    except (ConnectionResetError, BrokenPipeError) as exc:
        how = f"reset ({type(exc).__name__})"
    except asyncio.CancelledError:
        how = "server shutting down"
        raise
    finally:
        await close_quietly(writer)
        log(service, f"disconnect {peer}: {how}, {received} bytes received")


async def start(
    host: str,
    port: int,
    service: str = "tcp-shout",
    *,
    max_connections: int = 20000,
    idle: float = 300.0,
) -> asyncio.Server:
    """Listen on (host, port); port 0 lets the kernel choose.

    Past ``max_connections`` a new connection is closed at once (the client sees EOF);
    a connection silent for ``idle`` seconds is closed (0: never).
    """
    limit = ConnectionLimit(service, max_connections, b"")
    return await asyncio.start_server(
        limit.wrap(lambda r, w: handle(r, w, service, idle)),
        host,
        port,
        reuse_address=True,
        backlog=4096,
    )


async def serve(stop: asyncio.Event) -> None:
    identity = Identity.here("tcp-shout")
    port = env_int("SHOUT_PORT", 8080)
    server = await start(
        "0.0.0.0",
        port,
        identity.service,
        max_connections=env_int("SHOUT_MAX_CONNECTIONS", 20000, minimum=1),
        idle=env_float("SHOUT_IDLE_TIMEOUT", 300.0),
    )
    log(identity.service, f"listening on tcp 0.0.0.0:{port}")
    async with server:
        await stop.wait()
    log(identity.service, "stopped")


def main() -> None:
    run_until_signalled(serve)


if __name__ == "__main__":
    main()
