"""HTTP/1.1 request framing and limits, fed whole and one byte at a time."""

from __future__ import annotations

import pytest

from lab.services.protocols.http11 import HttpError, Limits, Request, RequestParser, render_response

GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
PUT = b"PUT /kv/a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"


def feed_bytewise(parser: RequestParser, data: bytes) -> list[Request]:
    return [r for i in range(len(data)) for r in parser.feed(data[i : i + 1])]


VALID = [
    # (stream, [(method, target, body), ...])
    (GET, [("GET", "/", b"")]),
    (PUT, [("PUT", "/kv/a", b"hello")]),
    (GET + PUT + GET, [("GET", "/", b""), ("PUT", "/kv/a", b"hello"), ("GET", "/", b"")]),
    (b"\r\n" + GET, [("GET", "/", b"")]),  # a stray CRLF before a request is ignored
    (b"GET /x?y=1 HTTP/1.1\nHost: x\n\n", [("GET", "/x?y=1", b"")]),  # bare LF
    (b"GET / HTTP/1.0\r\n\r\n", [("GET", "/", b"")]),  # no Host needed in 1.0
    (b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", [("POST", "/p", b"")]),
    (  # body bytes that look like a request are only body
        b"PUT /k HTTP/1.1\r\nHost: x\r\nContent-Length: 16\r\n\r\nGET / HTTP/1.1\r\n",
        [("PUT", "/k", b"GET / HTTP/1.1\r\n")],
    ),
]


@pytest.mark.parametrize(("stream", "expected"), VALID)
@pytest.mark.parametrize("bytewise", [False, True])
def test_valid_requests(
    stream: bytes, expected: list[tuple[str, str, bytes]], bytewise: bool
) -> None:
    parser = RequestParser()
    got = feed_bytewise(parser, stream) if bytewise else parser.feed(stream)
    assert [(r.method, r.target, r.body) for r in got] == expected
    assert not parser.in_progress


INVALID = [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET /\r\n\r\n", 400),
    (b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    (b"GET / FTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET noslash HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n\r\n", 400),  # 1.1 without Host
    (b"GET / HTTP/1.1\r\nHost x\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nBad Name: x\r\nHost: x\r\n\r\n", 400),
    (b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
    (b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
    (b"PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
    (b"PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n", 400),
    (b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n", 413),
    (b"\x00\x01\x02\r\n\r\n", 400),
]


@pytest.mark.parametrize(("stream", "status"), INVALID)
@pytest.mark.parametrize("bytewise", [False, True])
def test_invalid_requests(stream: bytes, status: int, bytewise: bool) -> None:
    parser = RequestParser()
    with pytest.raises(HttpError) as caught:
        feed_bytewise(parser, stream) if bytewise else parser.feed(stream)
    assert caught.value.status == status


def test_oversized_request_line_is_414_before_it_ends() -> None:
    parser = RequestParser(Limits(request_line=100))
    with pytest.raises(HttpError) as caught:
        parser.feed(b"GET /" + b"a" * 200)
    assert caught.value.status == 414


def test_oversized_header_section_is_431_before_it_ends() -> None:
    parser = RequestParser(Limits(header_section=200))
    parser.feed(b"GET / HTTP/1.1\r\nHost: x\r\n")
    with pytest.raises(HttpError) as caught:
        for _ in range(20):
            parser.feed(b"X-Filler: " + b"f" * 20 + b"\r\n")
    assert caught.value.status == 431


def test_in_progress_tracks_a_partial_request() -> None:
    parser = RequestParser()
    assert not parser.in_progress
    parser.feed(PUT[:10])
    assert parser.in_progress
    parser.feed(PUT[10:-2])  # headers done, body short by two bytes
    assert parser.in_progress
    assert len(parser.feed(PUT[-2:])) == 1
    assert not parser.in_progress


@pytest.mark.parametrize(
    ("head", "keep_alive"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", True),
        (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", False),
        (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Keep-Alive, Close\r\n\r\n", False),
        (b"GET / HTTP/1.0\r\n\r\n", False),
        (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", True),
    ],
)
def test_keep_alive_rules(head: bytes, keep_alive: bool) -> None:
    (request,) = RequestParser().feed(head)
    assert request.keep_alive is keep_alive


def test_headers_are_case_insensitive_and_trimmed() -> None:
    (request,) = RequestParser().feed(b"GET / HTTP/1.1\r\nhOsT:   example  \r\n\r\n")
    assert request.header("Host") == "example"


def test_response_framing() -> None:
    wire = render_response(200, b"hi", keep_alive=False)
    head, body = wire.split(b"\r\n\r\n", 1)
    assert head.split(b"\r\n") == [
        b"HTTP/1.1 200 OK",
        b"Content-Type: text/plain; charset=utf-8",
        b"Content-Length: 2",
        b"Connection: close",
    ]
    assert body == b"hi"


def test_head_and_204_responses_carry_no_body() -> None:
    assert render_response(200, b"hi", head_only=True).endswith(b"\r\n\r\n")
    no_content = render_response(204, b"")
    assert b"Content-Length" not in no_content
    assert no_content.endswith(b"\r\n\r\n")
