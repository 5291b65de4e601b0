"""Students' terminals: a WebSocket in the browser (xterm.js), a shell in their client host.

Binary frames carry keystrokes in and the terminal's output back; a text frame
is JSON: ``{"resize": [rows, cols]}`` (or ``{"data": "..."}``, keystrokes as text).
The shell is an exec as the lab's unprivileged user in the student's own client
container (lab.engine.terminal): no capability, no Docker socket, nothing of the
machine. A student has at most a few at once; all of a student's terminals end
when their token is revoked or reissued, and all of them when the server stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
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

    def busy(self) -> set[str]:
        return {s for s, shells in self.open.items() if shells}

    async def serve(self, student: str, request: web.Request) -> web.StreamResponse:
        if len(self.open.get(student, ())) >= PER_STUDENT:
            return web.json_response(
                {"error": f"at most {PER_STUDENT} terminals at once"}, status=429
            )
        ws = web.WebSocketResponse(heartbeat=20, max_msg_size=65536)
        await ws.prepare(request)
        await ws.send_bytes(b"\x1b[2mopening a shell in your client host...\x1b[0m\r\n")
        try:
            lab = await asyncio.to_thread(self.labs.ensure, student)
            term = await asyncio.to_thread(lab.terminal)
        except LabError as exc:
            await ws.send_bytes(f"\r\n{exc.line()}\r\n".encode())
            await ws.close()
            return ws
        mine = self.open.setdefault(student, set())
        mine.add(term)
        pump = asyncio.create_task(self._pump(term, ws))
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
