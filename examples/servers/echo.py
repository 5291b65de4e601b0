"""A server of your own: echo back whatever arrives, over TCP or UDP.

    python3 echo.py tcp 7000
    python3 echo.py udp 7001

This is the kind of program a student brings to the lab (any language the image
can run works the same way). examples/topologies/extra-host.yaml mounts it into
two processes of a new host, so that `lab send`, `lab fuzz` and the failure
matrix can show what this code does when peers die or send garbage.
"""

import asyncio
import sys


class Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, peer: tuple[str, int]) -> None:
        self.transport.sendto(data, peer)  # type: ignore[attr-defined]


async def echo_stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass  # the peer reset the connection: nothing left to answer
    finally:
        writer.close()


async def main(kind: str, port: int) -> None:
    print(f"echo: {kind} port {port}", flush=True)
    if kind == "udp":
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(Echo, local_addr=("0.0.0.0", port))
        await asyncio.Event().wait()
    server = await asyncio.start_server(echo_stream, "0.0.0.0", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
