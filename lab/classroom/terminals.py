"""Students' terminals: a WebSocket in the browser (xterm.js), a shell in their client host.

Binary frames carry keystrokes in and the terminal's output back; a text frame
is JSON: ``{"resize": [rows, cols]}`` (or ``{"data": "..."}``, keystrokes as text).
The shell is an exec as the lab's unprivileged user in the student's own client
container (lab.engine.terminal): no capability, no Docker socket, nothing of the
machine's but what the lab's network reaches. A student has at most a few at once, none
while a run of theirs goes on; their terminals end when their session does, and all of
them when the server stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from lab.classroom.labs import Labs
from lab.errors import LabError

PER_STUDENT = 2


@dataclass
class Terminals:
    labs: Labs
    open: dict[str, set[Any]] = field(default_factory=dict)  # student -> their shells
    opening: dict[str, int] = field(default_factory=dict)  # student -> shells being opened

    def busy(self) -> set[str]:
        return {s for s, shells in self.open.items() if shells}

    async def serve(
        self,
        student: str,
        request: web.Request,
        watch: Callable[[web.Request, web.WebSocketResponse], Coroutine[Any, Any, None]],
    ) -> web.StreamResponse:
        """A terminal on a WebSocket; ``watch`` ends the socket when its session ends."""
        # Counted before the first await: terminals asked for at once cannot all slip in.
        if self.opening.get(student, 0) + len(self.open.get(student, ())) >= PER_STUDENT:
            return web.json_response(
                {"error": f"at most {PER_STUDENT} terminals at once"}, status=429
            )
        if student in self.labs.running:
            return web.json_response(
                {"error": "a run of yours is going: open a terminal when it has ended"},
                status=409,
            )
        self.opening[student] = self.opening.get(student, 0) + 1
        try:
            ws = web.WebSocketResponse(heartbeat=20, max_msg_size=65536)
            await ws.prepare(request)
            await ws.send_bytes(b"\x1b[2mopening a shell in your client host...\x1b[0m\r\n")
            try:
                lab = await asyncio.to_thread(self.labs.ensure, student)
                term = await asyncio.to_thread(lab.terminal)
            except Exception as exc:  # Docker's own errors too: said in the terminal
                line = exc.line() if isinstance(exc, LabError) else f"{type(exc).__name__}: {exc}"
                await ws.send_bytes(f"\r\n{line}\r\n".encode())
                await ws.close()
                return ws
            mine = self.open.setdefault(student, set())
            mine.add(term)
        finally:
            self.opening[student] -= 1
        pump = asyncio.create_task(self._pump(term, ws))
        watching = asyncio.create_task(watch(request, ws))
        try:
            async for message in ws:
                self.labs.touch(student)
                if message.type == WSMsgType.BINARY:
                    await asyncio.to_thread(term.write, message.data)
                elif message.type == WSMsgType.TEXT:
                    await self._text(term, message.data)
                elif message.type == WSMsgType.ERROR:
                    break
        finally:
            pump.cancel()
            watching.cancel()
            mine.discard(term)
            await asyncio.to_thread(term.close)
        return ws

    async def close(self, student: str) -> None:
        for term in list(self.open.get(student, ())):
            await asyncio.to_thread(term.close)  # its pump sees the end and closes the socket

    async def close_all(self) -> None:
        for student in list(self.open):
            await self.close(student)

    @staticmethod
    async def _text(term: Any, text: str) -> None:
        with contextlib.suppress(json.JSONDecodeError, TypeError, ValueError):
            message = json.loads(text)
            if isinstance(message, dict) and "data" in message:
                await asyncio.to_thread(term.write, str(message["data"]).encode())
            elif isinstance(message, dict) and "resize" in message:
                rows, cols = message["resize"]
                await asyncio.to_thread(term.resize, int(rows), int(cols))

    @staticmethod
    async def _pump(term: Any, ws: web.WebSocketResponse) -> None:
        while not ws.closed:
            data = await asyncio.to_thread(term.read)
            if not data:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await ws.send_bytes(b"\r\n[the shell has ended]\r\n")
                await ws.close()
                return
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_bytes(data)
