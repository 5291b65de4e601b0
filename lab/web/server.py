"""The web server behind `lab web`: aiohttp, one page, a JSON API and a WebSocket.

The page and its script are files in ``static/``: no build step, nothing loaded
from elsewhere. The API is what the page does (send, faults, links, restore,
experiments, capture, replays); the WebSocket carries what happens (states,
happenings from the journal, frames, experiment progress) as it happens. Every
request must name this server in its Host header, and every API call and the
WebSocket must carry the token (``guard``). Blocking lab calls run in threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import socket
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from lab.errors import LabError
from lab.web import replay
from lab.web.guard import TOKEN_HEADER, WILDCARDS, Guard
from lab.web.live import Live, tail_journal

STATIC = Path(__file__).parent / "static"
STATES_EVERY = 0.5  # seconds between two readings of every container's state
PORTS_EVERY = 5.0  # ...and of every host's port table, unless a state changed

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Server:
    def __init__(self, guard: Guard, live: Live | None, results: list[Path]) -> None:
        self.guard = guard
        self.live = live
        self.results = results
        self.sockets: set[web.WebSocketResponse] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop = threading.Event()
        self.tasks: list[asyncio.Task[None]] = []

    # --- the app ---

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.guarded])
        app.router.add_get("/", self.index)
        app.router.add_get("/static/{name}", self.static)
        app.router.add_get("/favicon.ico", self.no_icon)
        app.router.add_get("/api/state", self.api_state)
        app.router.add_get("/api/experiments", self.api_experiments)
        app.router.add_get("/api/results", self.api_results)
        app.router.add_get("/api/results/{id}", self.api_result)
        app.router.add_get("/api/frames/{number}", self.api_frame)
        app.router.add_post("/api/send", self.api_send)
        app.router.add_post("/api/hold", self.api_hold)
        app.router.add_post("/api/release", self.api_release)
        app.router.add_post("/api/fault", self.api_fault)
        app.router.add_post("/api/link", self.api_link)
        app.router.add_post("/api/restore", self.api_restore)
        app.router.add_post("/api/run", self.api_run)
        app.router.add_post("/api/capture", self.api_capture)
        app.router.add_get("/api/live", self.api_live)
        app.on_startup.append(self.started)
        app.on_shutdown.append(self.shutting_down)
        return app

    @web.middleware
    async def guarded(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not self.guard.host_ok(request.headers.get("Host")):
            return web.Response(status=421, text="this server does not answer to that name\n")
        public = request.path.startswith("/static/") or request.path == "/favicon.ico"
        token = request.headers.get(TOKEN_HEADER) or request.query.get("token")
        if not public and not self.guard.token_ok(token):
            return web.Response(
                status=403,
                text="no or wrong token: open the address `lab web` printed\n",
            )
        if request.method != "GET" and not self.guard.origin_ok(request.headers.get("Origin")):
            return web.Response(status=403, text="foreign origin\n")
        return await handler(request)

    # --- life ---

    async def started(self, app: web.Application) -> None:
        self.loop = asyncio.get_running_loop()
        if self.live is not None:
            self.tasks.append(asyncio.create_task(self.watch_states()))
            threading.Thread(
                target=tail_journal,
                args=(self.live.lab.project, self.broadcast, self.stop),
                daemon=True,
            ).start()

    async def shutting_down(self, app: web.Application) -> None:
        self.stop.set()
        for task in self.tasks:
            task.cancel()
        for ws in list(self.sockets):
            await ws.close()
        if self.live is not None:
            await asyncio.to_thread(self.live.close)

    def broadcast(self, message: dict[str, Any]) -> None:
        """From any thread: send ``message`` to every open page."""
        if self.loop is None or self.loop.is_closed():
            return
        text = json.dumps(message, default=str)
        for ws in list(self.sockets):
            with contextlib.suppress(RuntimeError):
                asyncio.run_coroutine_threadsafe(self._send(ws, text), self.loop)

    async def _send(self, ws: web.WebSocketResponse, text: str) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.send_str(text)

    async def watch_states(self) -> None:
        assert self.live is not None
        last: dict[str, str] = {}
        ports_at = 0.0
        while True:
            try:
                states = await asyncio.to_thread(self.live.states)
                now = asyncio.get_running_loop().time()
                if states != last or now - ports_at > PORTS_EVERY:
                    if states != last:
                        self.broadcast({"kind": "states", "states": states})
                    topology = await asyncio.to_thread(self.live.topology)
                    self.broadcast({"kind": "topology", "topology": topology})
                    last, ports_at = states, now
            except LabError as exc:
                self.broadcast({"kind": "notice", "text": exc.line()})
            except Exception as exc:  # a Docker hiccup must not end the watching
                self.broadcast({"kind": "notice", "text": f"{type(exc).__name__}: {exc}"})
            await asyncio.sleep(STATES_EVERY)

    # --- pages ---

    async def index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def no_icon(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=204)

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        path = STATIC / name
        if "/" in name or name.startswith(".") or not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path)

    # --- the API ---

    def _live(self) -> Live:
        if self.live is None:
            raise web.HTTPConflict(text="no lab is running here: only replays")
        return self.live

    async def _call(self, fn: Callable[..., Any], *args: Any) -> web.Response:
        try:
            result = await asyncio.to_thread(fn, *args)
        except LabError as exc:
            return web.json_response({"error": exc.line()}, status=400)
        return web.json_response({"ok": True, "result": result}, dumps=_dumps)

    async def api_state(self, request: web.Request) -> web.Response:
        results = [self._summary(i, p) for i, p in enumerate(self.results)]
        if self.live is None:
            return web.json_response({"live": False, "results": results})
        topology = await asyncio.to_thread(self.live.topology)
        return web.json_response(
            {"live": True, "topology": topology, "results": results}, dumps=_dumps
        )

    def _summary(self, index: int, path: Path) -> dict[str, Any]:
        try:
            return replay.summary(index, path, replay.load(path))
        except LabError as exc:
            return {"id": index, "file": str(path), "error": exc.line()}

    async def api_experiments(self, request: web.Request) -> web.Response:
        return await self._call(self._live().experiments)

    async def api_results(self, request: web.Request) -> web.Response:
        return web.json_response([self._summary(i, p) for i, p in enumerate(self.results)])

    async def api_result(self, request: web.Request) -> web.Response:
        index = int(request.match_info["id"])
        if not 0 <= index < len(self.results):
            raise web.HTTPNotFound()
        return await self._call(replay.replayable, index, self.results[index])

    async def api_frame(self, request: web.Request) -> web.Response:
        return await self._call(frame_decided, self._live(), int(request.match_info["number"]))

    async def api_send(self, request: web.Request) -> web.Response:
        body = await request.json()
        words = [str(w) for w in body.get("words", [])]
        return await self._call(
            self._live().send,
            str(body["target"]),
            words,
            str(body.get("origin", "")),
            str(body.get("data", "")),
        )

    async def api_hold(self, request: web.Request) -> web.Response:
        body = await request.json()
        return await self._call(
            self._live().hold,
            str(body["target"]),
            " ".join(str(w) for w in body.get("words", [])),
            str(body.get("origin", "")),
        )

    async def api_release(self, request: web.Request) -> web.Response:
        return await self._call(self._live().release)

    async def api_fault(self, request: web.Request) -> web.Response:
        body = await request.json()
        return await self._call(self._live().fault, str(body["action"]), str(body["target"]))

    async def api_link(self, request: web.Request) -> web.Response:
        body = await request.json()
        return await self._call(self._live().link, str(body["host"]), str(body["spec"]))

    async def api_restore(self, request: web.Request) -> web.Response:
        return await self._call(self._live().restore)

    async def api_run(self, request: web.Request) -> web.Response:
        body = await request.json()
        live = self._live()
        if live.running:
            return web.json_response({"error": f"{live.running} is running"}, status=409)
        predictions = body.get("predictions") or None
        return await self._call(live.run, str(body["name"]), predictions, str(body.get("by", "")))

    async def api_capture(self, request: web.Request) -> web.Response:
        body = await request.json()
        live = self._live()
        return await self._call(live.start_capture if body.get("on") else live.stop_capture)

    async def api_live(self, request: web.Request) -> web.StreamResponse:
        if not self.guard.origin_ok(request.headers.get("Origin")):
            return web.Response(status=403, text="foreign origin\n")
        ws = web.WebSocketResponse(heartbeat=20)
        await ws.prepare(request)
        self.sockets.add(ws)
        try:
            async for message in ws:
                if message.type == WSMsgType.ERROR:
                    break
        finally:
            self.sockets.discard(ws)
        return ws


def frame_decided(live: Live, number: int) -> dict[str, Any]:
    """A live frame taken apart, with what its receiver decided as far as the frames kept
    show (an RST, an ICMP, an ARP answer, a TTL one lower). No port table is asked: read
    now, it would speak of a later moment than the frame's."""
    from lab.packets.decisions import decisions

    detail = live.frame_detail(number)
    kept = list(live.frames)
    decided = decisions([item["frame"] for item in kept], {}, live.lab.address_names())
    detail["decision"] = next(
        (d for item, d in zip(kept, decided, strict=True) if item["number"] == number), None
    )
    return detail


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)


# --- this machine's own names, for a server bound to a wildcard ---------------------------
#
# Read from the kernel's own tables in /proc, of the network namespace the server listens
# in: every address of every interface, secondary ones included, with no program to run
# (`ip -j` is missing from minimal images and old iproute2) and nothing to install.
# SIOCGIFCONF would give one IPv4 address per interface and no IPv6. What the resolver
# says of the host name (getaddrinfo) is added: it names the host's canonical name, and
# stands in where /proc is not Linux's.

FIB_TRIE = Path("/proc/net/fib_trie")
IF_INET6 = Path("/proc/net/if_inet6")
# Documentation addresses (RFC 5737, RFC 3849): a UDP connect() to one only asks the
# routing table which source address the default route would use; no packet leaves.
ROUTE_PROBE = {socket.AF_INET: "203.0.113.1", socket.AF_INET6: "2001:db8::1"}
FAMILIES = dict(zip(WILDCARDS, (socket.AF_INET, socket.AF_INET6), strict=True))


def local_ipv4(fib_trie: str) -> set[str]:
    """The addresses /proc/net/fib_trie lists as this machine's own (pure): each leaf
    ("|-- 10.0.0.5") followed by a "/32 host LOCAL" route."""
    found: set[str] = set()
    leaf = ""
    for line in fib_trie.splitlines():
        text = line.strip()
        if text.startswith("|--"):
            leaf = text[3:].strip()
        elif text.split() == ["/32", "host", "LOCAL"] and leaf:
            found.add(leaf)
    return found


def local_ipv6(if_inet6: str) -> set[str]:
    """The addresses of /proc/net/if_inet6 (pure): 32 hex digits, then the interface's
    index, prefix length, scope, flags and name."""
    found: set[str] = set()
    for line in if_inet6.splitlines():
        fields = line.split()
        if fields and len(fields[0]) == 32:
            found.add(str(ipaddress.IPv6Address(bytes.fromhex(fields[0]))))
    return found


def own_names(bind: str) -> tuple[str, ...]:
    """For a wildcard ``bind``, this machine's addresses in its family (the one its default
    route uses first, as the one to open) and its host names; () for any other bind."""
    family = FAMILIES.get(bind)
    if family is None:
        return ()
    table, parse = (FIB_TRIE, local_ipv4) if family == socket.AF_INET else (IF_INET6, local_ipv6)
    addresses: set[str] = set()
    with contextlib.suppress(OSError):
        addresses = parse(table.read_text())
    names = [socket.gethostname().lower()]
    with contextlib.suppress(OSError):  # socket.gaierror: a name DNS does not know
        for *_, canonical, sockaddr in socket.getaddrinfo(
            names[0], None, family, socket.SOCK_STREAM, flags=socket.AI_CANONNAME
        ):
            addresses.add(str(sockaddr[0]))
            if canonical:
                names.append(canonical.lower())
    routed = _routed(family)
    first = [routed] if routed in addresses else []
    rest = sorted(addresses - set(first), key=ipaddress.ip_address)
    return tuple(dict.fromkeys([*first, *rest, *names]))


def _routed(family: socket.AddressFamily) -> str | None:
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((ROUTE_PROBE[family], 9))
        except OSError:  # no default route
            return None
        return str(probe.getsockname()[0])
