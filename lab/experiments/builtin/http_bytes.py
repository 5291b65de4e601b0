"""http-bytes: what HTTP/1.1 looks like on the wire, byte by byte."""

from __future__ import annotations

from lab.experiments.model import Claim, Context, Experiment, every, first
from lab.httpwire import RawResponse, WireError, split_responses
from lab.traffic.clients import http_request, received
from services.probes.sockscript import Event, Step, raw


class HttpBytes(Experiment):
    name = "http-bytes"
    question = "What does an HTTP request and response look like on the wire?"
    claims = (
        Claim("crlf-lines", "Every line of the response head ends in \\r\\n"),
        Claim("blank-line", "An empty line (\\r\\n\\r\\n) separates the head from the body"),
        Claim("content-length", "Content-Length says exactly how many body bytes follow"),
        Claim(
            "keep-alive",
            "With keep-alive a second request goes over the same connection, which the "
            "server closes only when the request asks it to",
        ),
        Claim("pipelining", "Two requests sent in one go get two responses, in order"),
    )

    def run(self, ctx: Context) -> dict[str, tuple[bool, str]]:
        request = http_request("GET", "/", "http")
        first_keepalive = http_request("GET", "/healthz", "http", close=False)
        second_close = http_request("GET", "/", "http")
        pipelined = http_request("GET", "/healthz", "http", close=False) + http_request(
            "GET", "/kv/no-such-key", "http"
        )
        steps: list[Step] = [
            {"op": "socket", "sock": "raw", "type": "tcp"},
            {"op": "connect", "sock": "raw", "host": "http", "port": 80},
            {"op": "sendall", "sock": "raw", "data": request},
            {"op": "recv_all", "sock": "raw"},
            {"op": "close", "sock": "raw"},
            {"op": "socket", "sock": "ka", "type": "tcp"},
            {"op": "connect", "sock": "ka", "host": "http", "port": 80},
            {"op": "sendall", "sock": "ka", "data": first_keepalive},
            # The server writes each response in one send: one recv reads it whole.
            {"op": "recv", "sock": "ka"},
            {"op": "sendall", "sock": "ka", "data": second_close},
            {"op": "recv_all", "sock": "ka"},
            {"op": "close", "sock": "ka"},
            {"op": "socket", "sock": "pipe", "type": "tcp"},
            {"op": "connect", "sock": "pipe", "host": "http", "port": 80},
            {"op": "send", "sock": "pipe", "data": pipelined},
            {"op": "recv_all", "sock": "pipe"},
            {"op": "close", "sock": "pipe"},
        ]
        events = ctx.on("client", steps)
        raw_bytes = received(every(events, "raw", "recv_all"))
        ctx.facts["request"] = request
        ctx.facts["response"] = raw_bytes.decode("utf-8", "backslashreplace")
        findings: dict[str, tuple[bool, str]] = {}

        findings["keep-alive"] = self._keep_alive(events)
        findings["pipelining"] = self._pipelining(events)
        try:
            (response,) = split_responses(raw_bytes)
        except (WireError, ValueError) as exc:
            problem = f"the response could not be framed as one response: {exc}"
            for claim_id in ("crlf-lines", "blank-line", "content-length"):
                findings[claim_id] = (False, problem)
            return findings
        lines = response.head_lines
        bad = [line for line in lines if not line.endswith(b"\r\n")]
        findings["crlf-lines"] = (
            not bad and len(lines) > 1,
            f"{len(lines)} head lines, {len(lines) - len(bad)} ending in \\r\\n"
            + (f"; not: {bad!r}" if bad else ""),
        )
        head_end = raw_bytes.find(b"\r\n\r\n")
        findings["blank-line"] = (
            response.separator == b"\r\n\r\n" and head_end == len(response.head) - 2,
            f"\\r\\n\\r\\n at byte {head_end}; the body starts at byte {head_end + 4}",
        )
        declared = response.headers.get("content-length")
        findings["content-length"] = (
            declared is not None
            and int(declared) == len(response.body)
            and len(raw_bytes) == len(response.head) + 2 + len(response.body),
            f"Content-Length: {declared}; {len(response.body)} body bytes followed, "
            f"and nothing after them",
        )
        return findings

    @staticmethod
    def _keep_alive(events: list[Event]) -> tuple[bool, str]:
        connect = first(events, "ka", "connect")
        first_reply = first(events, "ka", "recv")
        reads = every(events, "ka", "recv_all")
        try:
            one = split_responses(raw(first_reply.data or ""))
            two = split_responses(received(reads))
        except WireError as exc:
            return False, f"a response could not be framed: {exc}"
        ports = {e.local for e in every(events, "ka", "sendall")}
        closed_after = reads[-1].outcome == "eof" if reads else False
        return (
            len(one) == 1
            and len(two) == 1
            and one[0].headers.get("connection") == "keep-alive"
            and two[0].headers.get("connection") == "close"
            and len(ports) == 1
            and connect.outcome == "ok"
            and closed_after,
            f"both requests from {', '.join(sorted(ports))}; first answered with "
            f"Connection: {one[0].headers.get('connection') if one else '?'}, second with "
            f"Connection: {two[0].headers.get('connection') if two else '?'}, then "
            + ("the server closed (eof)" if closed_after else "no close"),
        )

    @staticmethod
    def _pipelining(events: list[Event]) -> tuple[bool, str]:
        sent = first(events, "pipe", "send")
        try:
            responses: list[RawResponse] = split_responses(
                received(every(events, "pipe", "recv_all"))
            )
        except WireError as exc:
            return False, f"responses could not be framed: {exc}"
        statuses = [r.status for r in responses]
        return (
            sent.outcome == "ok" and statuses == [200, 404],
            f"one send of {sent.nbytes} bytes held 2 requests; responses in order: {statuses}",
        )
