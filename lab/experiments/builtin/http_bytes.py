"""http-bytes: what HTTP/1.1 looks like on the wire, byte by byte."""

from __future__ import annotations

import json
from typing import Any

from rich.console import RenderableType

from lab.experiments.model import (
    Claim,
    Context,
    Experiment,
    Needs,
    Observations,
    Result,
    Verdicts,
)
from lab.services.probes.sockscript import raw
from lab.services.protocols.http11 import RawResponse, WireError, split_responses
from lab.traffic.clients import http_request
from lab.traffic.script import Script


class HttpBytes(Experiment):
    name = "http-bytes"
    question = "What does an HTTP request and response look like on the wire?"
    needs = Needs(processes={"http": ("80/tcp",)})
    claims = (
        Claim("crlf-lines", "Every line of the response head ends in \\r\\n"),
        Claim("blank-line", "An empty line (\\r\\n\\r\\n) separates the head from the body"),
        Claim("content-length", "Content-Length says exactly how many body bytes follow"),
        Claim(
            "keep-alive",
            "With keep-alive a second request goes over the same connection (the server sees "
            "both come from one peer address), which the server closes only when the request "
            "asks it to",
        ),
        Claim("pipelining", "Two requests sent in one go get two responses, in order"),
    )

    def run(self, ctx: Context) -> None:
        request = http_request("GET", "/", "http")
        pipelined = http_request("GET", "/healthz", "http", close=False) + http_request(
            "GET", "/kv/no-such-key", "http"
        )
        script = Script()
        script.tcp("raw").connect("http", 80).sendall(request).recv_all().close()
        # Two requests for / on one connection: each answer names the peer the server saw.
        # The server writes each response in one send: one recv reads it whole.
        keep = script.tcp("ka").connect("http", 80)
        keep.sendall(http_request("GET", "/", "http", close=False)).recv()
        keep.sendall(http_request("GET", "/", "http")).recv_all().close()
        script.tcp("pipe").connect("http", 80).send(pipelined).recv_all().close()
        events = ctx.on(ctx.lab.topology.client.name, script)
        ctx.facts["request"] = request
        ctx.facts["response"] = events.received("raw").decode("utf-8", "backslashreplace")

    def judge(self, seen: Observations) -> Verdicts:
        events = seen.events
        raw_bytes = events.received("raw")
        v = Verdicts()
        try:
            (response,) = split_responses(raw_bytes)
            problem = ""
        except (WireError, ValueError) as exc:
            problem = f"the response could not be framed as one response: {exc}"

        @v.claim("crlf-lines")
        def _() -> tuple[bool, str]:
            if problem:
                return False, problem
            lines = response.head_lines
            bad = [line for line in lines if not line.endswith(b"\r\n")]
            return (
                not bad and len(lines) > 1,
                f"{len(lines)} head lines, {len(lines) - len(bad)} ending in \\r\\n"
                + (f"; not: {bad!r}" if bad else ""),
            )

        @v.claim("blank-line")
        def _() -> tuple[bool, str]:
            if problem:
                return False, problem
            head_end = raw_bytes.find(b"\r\n\r\n")
            return (
                response.separator == b"\r\n\r\n" and head_end == len(response.head) - 2,
                f"the head ends with {response.separator!r} at byte {head_end}; "
                f"the body starts at byte {head_end + 4}",
            )

        @v.claim("content-length")
        def _() -> tuple[bool, str]:
            if problem:
                return False, problem
            declared = response.headers.get("content-length")
            return (
                declared is not None
                and int(declared) == len(response.body)
                and len(raw_bytes) == len(response.head) + 2 + len(response.body),
                f"Content-Length: {declared}; {len(response.body)} body bytes followed, "
                f"and {len(raw_bytes) - len(response.head) - 2 - len(response.body)} after them",
            )

        @v.claim("keep-alive")
        def _() -> tuple[bool, str]:
            connect = events.first("ka", "connect")
            first_reply = events.first("ka", "recv")
            reads = events.every("ka", "recv_all")
            try:
                one = split_responses(raw(first_reply.data or ""))
                two = split_responses(events.received("ka")[len(raw(first_reply.data or "")) :])
            except WireError as exc:
                return False, f"a response could not be framed: {exc}"
            peers = [_peer(r) for r in (*one, *two)]
            closed_after = bool(reads) and reads[-1].outcome == "eof"
            return (
                len(one) == 1
                and len(two) == 1
                and one[0].headers.get("connection") == "keep-alive"
                and two[0].headers.get("connection") == "close"
                and None not in peers
                and len(set(peers)) == 1
                and connect.outcome == "ok"
                and closed_after,
                f"the server saw the requests come from {' and '.join(map(str, peers))}; "
                f"first answered with Connection: {_connection(one)}, second with "
                f"Connection: {_connection(two)}, then "
                + ("the server closed (eof)" if closed_after else "no close"),
            )

        @v.claim("pipelining")
        def _() -> tuple[bool, str]:
            sent = events.first("pipe", "send")
            try:
                responses = split_responses(events.received("pipe"))
            except WireError as exc:
                return False, f"responses could not be framed: {exc}"
            statuses = [r.status for r in responses]
            return (
                sent.outcome == "ok" and statuses == [200, 404],
                f"one send of {sent.nbytes} bytes held 2 requests; responses in order: {statuses}",
            )

        return v

    def tables(self, result: Result) -> list[RenderableType]:
        from lab.views import render

        return [
            "the raw request and response, line ends shown:",
            render.wire_text(result.facts["request"]),
            render.wire_text(result.facts["response"]),
        ]


def _peer(response: RawResponse) -> str | None:
    """The peer address the server reports in its answer to GET /."""
    try:
        data: dict[str, Any] = json.loads(response.body)
        return f"{data['peer']['ip']}:{data['peer']['port']}"
    except (ValueError, KeyError, TypeError):
        return None


def _connection(responses: list[RawResponse]) -> str:
    return responses[0].headers.get("connection", "?") if responses else "?"
