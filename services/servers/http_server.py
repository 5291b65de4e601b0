"""The http service: HTTP/1.1 with keep-alive on TCP 80.

Routes
  GET  /            who answered: service, host name, pid, the address it answered on,
                    and the peer address as this server sees it
  GET  /healthz     200 while the process serves
  GET|PUT|DELETE /kv/<key>
                    stored in the db service over TCP (RESP); 503 while db is unreachable
  POST /shout/tcp   relays the body to tcp-shout and answers with its reply
  POST /shout/udp   the same over UDP to udp-shout

Framing and limits live in ``services.protocols.http11``; this module routes and relays.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass, replace
from urllib.parse import unquote

from ..protocols.http11 import HttpError, Limits, Request, RequestParser, render_response
from ..protocols.resp import Error, ProtocolError, Reply, encode_command, parse_reply
from ..runtime.common import (
    ConnectionLimit,
    Identity,
    close_quietly,
    env_float,
    env_int,
    log,
    peer_text,
    run_until_signalled,
)

READ_SIZE = 65536


class UpstreamError(Exception):
    """A service this one relays to did not answer."""

    def __init__(self, service: str, address: str, why: str, *, timed_out: bool = False) -> None:
        super().__init__(f"{service} unreachable at {address}: {why}")
        self.service = service
        self.address = address
        self.timed_out = timed_out


@dataclass(frozen=True)
class Upstream:
    service: str
    host: str
    port: int

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Settings:
    db: Upstream
    tcp_shout: Upstream
    udp_shout: Upstream
    limits: Limits
    read_timeout: float  # a request that stalls this long mid-way gets 408
    idle_timeout: float  # a kept-alive connection idle this long is closed
    upstream_timeout: float

    @classmethod
    def from_env(cls) -> Settings:
        def upstream(service: str, var: str, default: str) -> Upstream:
            host, _, port = os.environ.get(var, default).rpartition(":")
            return Upstream(service, host, int(port))

        return cls(
            db=upstream("db", "DB_ADDR", "db:6379"),
            tcp_shout=upstream("tcp-shout", "TCP_SHOUT_ADDR", "tcp-shout:8080"),
            udp_shout=upstream("udp-shout", "UDP_SHOUT_ADDR", "udp-shout:8080"),
            limits=Limits(
                request_line=env_int("HTTP_MAX_REQUEST_LINE", 8 * 1024, minimum=16),
                header_section=env_int("HTTP_MAX_HEADER_BYTES", 32 * 1024, minimum=64),
                body=env_int("HTTP_MAX_BODY_BYTES", 1024 * 1024),
            ),
            read_timeout=env_float("HTTP_READ_TIMEOUT", 10.0),
            idle_timeout=env_float("HTTP_IDLE_TIMEOUT", 60.0),
            upstream_timeout=env_float("HTTP_UPSTREAM_TIMEOUT", 2.0),
        )


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    allow: str | None = None
    hop: Hop | None = None  # the connection made to db for this request, if any

    @classmethod
    def json(cls, status: int, data: object) -> Response:
        return cls(status, (json.dumps(data, indent=2) + "\n").encode(), "application/json")

    @classmethod
    def error(cls, status: int, detail: str, allow: str | None = None) -> Response:
        return cls(
            status, (json.dumps({"error": detail}) + "\n").encode(), "application/json", allow
        )


# --- relays to the other services ---------------------------------------------


@dataclass(frozen=True)
class Hop:
    """The two ends of a connection this server made to another service."""

    local: str
    remote: str


async def db_call(upstream: Upstream, timeout: float, *args: bytes | str) -> tuple[Reply, Hop]:
    """One command on a fresh connection to db: a visible TCP exchange per request."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(upstream.host, upstream.port)
            hop = Hop(
                peer_text(writer.get_extra_info("sockname")),
                peer_text(writer.get_extra_info("peername")),
            )
            try:
                writer.write(encode_command(*args))
                await writer.drain()
                buf = b""
                while (parsed := parse_reply(buf)) is None:
                    chunk = await reader.read(READ_SIZE)
                    if not chunk:
                        raise UpstreamError("db", upstream.address, "closed before replying")
                    buf += chunk
                return parsed[0], hop
            finally:
                writer.close()
    except TimeoutError:
        raise UpstreamError("db", upstream.address, "timed out", timed_out=True) from None
    except (OSError, ProtocolError) as exc:
        raise UpstreamError("db", upstream.address, _why(exc)) from None


async def tcp_shout_call(upstream: Upstream, timeout: float, body: bytes) -> bytes:
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(upstream.host, upstream.port)
            try:
                writer.write(body)
                writer.write_eof()  # half-close: the server answers everything, then closes
                await writer.drain()
                return await reader.read()
            finally:
                writer.close()
    except TimeoutError:
        raise UpstreamError(
            upstream.service, upstream.address, "timed out", timed_out=True
        ) from None
    except OSError as exc:
        raise UpstreamError(upstream.service, upstream.address, _why(exc)) from None


class _OneReply(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not self.reply.done():
            self.reply.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.reply.done():
            self.reply.set_exception(exc)


async def udp_shout_call(upstream: Upstream, timeout: float, body: bytes) -> bytes:
    loop = asyncio.get_running_loop()
    transport: asyncio.BaseTransport | None = None
    try:
        async with asyncio.timeout(timeout):
            # A connected UDP socket, so an ICMP port-unreachable surfaces as an error.
            transport, protocol = await loop.create_datagram_endpoint(
                _OneReply, remote_addr=(upstream.host, upstream.port)
            )
            transport.sendto(body)
            return await protocol.reply
    except TimeoutError:
        raise UpstreamError(
            upstream.service, upstream.address, "no reply datagram", timed_out=True
        ) from None
    except OSError as exc:
        raise UpstreamError(upstream.service, upstream.address, _why(exc)) from None
    finally:
        if transport is not None:
            transport.close()


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


# --- routing ------------------------------------------------------------------


@dataclass(frozen=True)
class Connection:
    """What the server knows about the TCP connection a request came on."""

    local: tuple[str, int]
    peer: tuple[str, int]


class App:
    def __init__(self, settings: Settings, identity: Identity) -> None:
        self.settings = settings
        self.identity = identity

    async def respond(self, request: Request, conn: Connection) -> Response:
        path = request.target.split("?", 1)[0]
        method = "GET" if request.method == "HEAD" else request.method
        try:
            if path == "/":
                return self._only(method, "GET") or self.whoami(conn)
            if path == "/healthz":
                return self._only(method, "GET") or Response.json(200, {"status": "ok"})
            if path.startswith("/kv/") and len(path) > 4:
                return await self.kv(method, unquote(path[4:]), request.body)
            if path in ("/shout/tcp", "/shout/udp"):
                return self._only(method, "POST") or await self.shout(path[7:], request.body)
        except UpstreamError as exc:
            return Response.error(504 if exc.timed_out else 503, str(exc))
        return Response.error(404, f"no route for {path}")

    @staticmethod
    def _only(method: str, allowed: str) -> Response | None:
        if method == allowed:
            return None
        allow = "GET, HEAD" if allowed == "GET" else allowed
        return Response.error(405, f"{method} not allowed here", allow)

    def whoami(self, conn: Connection) -> Response:
        return Response.json(
            200,
            {
                "service": self.identity.service,
                "hostname": self.identity.hostname,
                "pid": self.identity.pid,
                "ip": conn.local[0],
                "port": conn.local[1],
                "peer": {"ip": conn.peer[0], "port": conn.peer[1]},
            },
        )

    async def kv(self, method: str, key: str, body: bytes) -> Response:
        db, timeout = self.settings.db, self.settings.upstream_timeout
        if method == "GET":
            reply, hop = await db_call(db, timeout, "GET", key)
            if reply is None:
                response = Response.error(404, f"no key {key!r}")
            elif isinstance(reply, bytes):
                response = Response(200, reply, "application/octet-stream")
            else:
                response = Response.error(502, f"db answered {reply!r}")
        elif method == "PUT":
            reply, hop = await db_call(db, timeout, "SET", key, body)
            if isinstance(reply, Error):
                response = Response.error(502, f"db answered {reply!r}")
            else:
                response = Response.json(200, {"stored": key, "bytes": len(body)})
        elif method == "DELETE":
            reply, hop = await db_call(db, timeout, "DEL", key)
            if not isinstance(reply, int):
                response = Response.error(502, f"db answered {reply!r}")
            elif reply:
                response = Response(204)
            else:
                response = Response.error(404, f"no key {key!r}")
        else:
            return Response.error(405, f"{method} not allowed here", "GET, HEAD, PUT, DELETE")
        return replace(response, hop=hop)

    async def shout(self, protocol: str, body: bytes) -> Response:
        timeout = self.settings.upstream_timeout
        if protocol == "tcp":
            reply = await tcp_shout_call(self.settings.tcp_shout, timeout, body)
        else:
            reply = await udp_shout_call(self.settings.udp_shout, timeout, body)
        return Response(200, reply, "application/octet-stream")


# --- the connection loop --------------------------------------------------------


class HttpServer:
    def __init__(self, app: App) -> None:
        self.app = app
        self.settings = app.settings

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        conn = Connection(local=writer.get_extra_info("sockname")[:2], peer=peer[:2])
        service = self.app.identity.service
        log(service, f"connect {peer_text(peer)}")
        parser = RequestParser(self.settings.limits)
        served, how = 0, "closed by peer"
        try:
            while True:
                timeout = (
                    self.settings.read_timeout if parser.in_progress else self.settings.idle_timeout
                )
                try:
                    async with asyncio.timeout(timeout):
                        data = await reader.read(READ_SIZE)
                except TimeoutError:
                    if parser.in_progress:
                        writer.write(_error_bytes(408, "request not completed in time"))
                        how = "slow client timed out (408)"
                    else:
                        how = "idle timeout"
                    break
                if not data:
                    break
                try:
                    requests = parser.feed(data)
                except HttpError as exc:
                    writer.write(_error_bytes(exc.status, exc.detail))
                    how = f"bad request ({exc.status})"
                    break
                keep_open = True
                for request in requests:
                    response = await self.app.respond(request, conn)
                    keep_open = request.keep_alive
                    writer.write(_render(response, request, keep_open))
                    served += 1
                    if not keep_open:
                        break
                if keep_open and parser.failed is not None:
                    writer.write(_error_bytes(parser.failed.status, parser.failed.detail))
                    how = f"bad request ({parser.failed.status}) after {served} served"
                    keep_open = False
                await writer.drain()
                if not keep_open:
                    if parser.failed is None:
                        how = "closed by server (Connection: close)"
                    break
        except (ConnectionResetError, BrokenPipeError) as exc:
            how = f"reset ({type(exc).__name__})"
        finally:
            await close_quietly(writer)
            log(service, f"disconnect {peer_text(peer)}: {how}, {served} requests served")


def _render(response: Response, request: Request, keep_alive: bool) -> bytes:
    extra = [("Allow", response.allow)] if response.allow else []
    if response.hop:
        # The second hop made visible: where this server's connection to db ran.
        extra += [("X-Lab-Db-Local", response.hop.local), ("X-Lab-Db-Remote", response.hop.remote)]
    return render_response(
        response.status,
        response.body,
        content_type=response.content_type,
        keep_alive=keep_alive,
        extra_headers=extra,
        head_only=request.method == "HEAD",
    )


def _error_bytes(status: int, detail: str) -> bytes:
    body = (json.dumps({"error": detail}) + "\n").encode()
    return render_response(status, body, content_type="application/json", keep_alive=False)


async def start(
    host: str, port: int, settings: Settings | None = None, *, max_connections: int = 1000
) -> asyncio.Server:
    app = App(settings or Settings.from_env(), Identity.here("http"))
    refusal = _error_bytes(503, f"too many connections (limit {max_connections})")
    limit = ConnectionLimit(app.identity.service, max_connections, refusal)
    return await asyncio.start_server(
        limit.wrap(HttpServer(app).handle), host, port, reuse_address=True, backlog=1024
    )


async def serve(stop: asyncio.Event) -> None:
    identity = Identity.here("http")
    port = env_int("HTTP_PORT", 80)
    server = await start(
        "0.0.0.0", port, max_connections=env_int("HTTP_MAX_CONNECTIONS", 1000, minimum=1)
    )
    log(identity.service, f"listening on tcp 0.0.0.0:{port}")
    async with server:
        await stop.wait()
    log(identity.service, "stopped")


def main() -> None:
    run_until_signalled(serve)


if __name__ == "__main__":
    main()
