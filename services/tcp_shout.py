"""TCP shout server: the seed's ``tcp_socket_server`` done right.

Many clients at once, each on its own connection; text uppercased even when a
multi-byte character is split across reads; undecodable bytes echoed unchanged
(see ``services.shout``); a half-close (the client's FIN) answered by flushing
and closing our side; a reset logged, never fatal.
"""

from __future__ import annotations

import asyncio

from services.common import Identity, close_quietly, env_int, log, peer_text, run_until_signalled
from services.shout import StreamShouter

READ_SIZE = 65536


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, service: str) -> None:
    peer = peer_text(writer.get_extra_info("peername"))
    log(service, f"connect {peer}")
    shouter = StreamShouter()
    received = 0
    how = "closed by peer"
    try:
        while data := await reader.read(READ_SIZE):
            received += len(data)
            reply = shouter.feed(data)
            if reply:
                writer.write(reply)
                await writer.drain()
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


async def start(host: str, port: int, service: str = "tcp-shout") -> asyncio.Server:
    """Listen on (host, port); port 0 lets the kernel choose."""
    return await asyncio.start_server(
        lambda r, w: handle(r, w, service), host, port, reuse_address=True
    )


async def serve(stop: asyncio.Event) -> None:
    identity = Identity.here("tcp-shout")
    port = env_int("SHOUT_PORT", 8080)
    server = await start("0.0.0.0", port, identity.service)
    log(identity.service, f"listening on tcp 0.0.0.0:{port}")
    async with server:
        await stop.wait()
    log(identity.service, "stopped")


def main() -> None:
    run_until_signalled(serve)


if __name__ == "__main__":
    main()
