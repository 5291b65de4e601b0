"""The http service on loopback, with the db and shout servers it relays to."""

from __future__ import annotations

import json
import os

from tests.local.clients import connect, http_response, recv_to_eof, request, reset


def get(path: str, extra: bytes = b"") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: t\r\n".encode() + extra + b"\r\n"


def test_whoami_reports_process_and_both_addresses(http_port: int) -> None:
    with connect(http_port) as s:
        s.sendall(get("/"))
        status, headers, body = http_response(s)
        local_port = s.getsockname()[1]
    info = json.loads(body)
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert info["pid"] == os.getpid()  # the server runs in this test process
    assert (info["ip"], info["port"]) == ("127.0.0.1", http_port)
    assert info["peer"] == {"ip": "127.0.0.1", "port": local_port}


def test_keep_alive_serves_two_requests_on_one_connection(http_port: int) -> None:
    with connect(http_port) as s:
        s.sendall(get("/healthz"))
        first = http_response(s)
        s.sendall(get("/healthz"))
        second = http_response(s)
    assert first[0] == second[0] == 200
    assert first[1]["connection"] == "keep-alive"


def test_pipelined_requests_are_answered_in_order(http_port: int) -> None:
    with connect(http_port) as s:
        s.sendall(get("/healthz") + get("/nope") + get("/", b"Connection: close\r\n"))
        statuses = [http_response(s)[0] for _ in range(3)]
        assert recv_to_eof(s) == b""  # closed after the Connection: close request
    assert statuses == [200, 404, 200]


def test_kv_round_trip_through_db(http_port: int) -> None:
    put = b"PUT /kv/colour HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nblue"
    assert request(http_port, put)[0] == 200
    status, headers, body = request(http_port, get("/kv/colour"))
    assert headers["content-type"] == "application/octet-stream"
    assert (status, body) == (200, b"blue")
    delete = b"DELETE /kv/colour HTTP/1.1\r\nHost: t\r\n\r\n"
    assert request(http_port, delete)[0] == 204
    assert request(http_port, get("/kv/colour"))[0] == 404
    assert request(http_port, delete)[0] == 404


def test_kv_without_db_is_503_and_the_server_keeps_serving(http_without_db_port: int) -> None:
    status, _, body = request(http_without_db_port, get("/kv/x"))
    assert status == 503
    assert "db unreachable" in json.loads(body)["error"]
    assert "ConnectionRefusedError" in json.loads(body)["error"]
    assert request(http_without_db_port, get("/healthz"))[0] == 200


def test_relays_to_tcp_and_udp_shout(http_port: int) -> None:
    for protocol in ("tcp", "udp"):
        raw = f"POST /shout/{protocol} HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
        status, _, body = request(http_port, raw.encode())
        assert (status, body) == (200, b"HELLO"), protocol


def test_errors_by_status(http_port: int) -> None:
    assert request(http_port, b"POST /healthz HTTP/1.1\r\nHost: t\r\n\r\n")[0] == 405
    assert (
        request(http_port, b"POST /healthz HTTP/1.1\r\nHost: t\r\n\r\n")[1]["allow"] == "GET, HEAD"
    )
    assert request(http_port, b"GET /shout/tcp HTTP/1.1\r\nHost: t\r\n\r\n")[0] == 405
    assert request(http_port, get("/nowhere"))[0] == 404
    too_big = b"PUT /kv/a HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n"
    assert request(http_port, too_big)[0] == 413
    huge_headers = get("/", b"X-Big: " + b"a" * 5000 + b"\r\n")
    assert request(http_port, huge_headers)[0] == 431
    assert request(http_port, b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\n\r\n")[0] == 414


def test_garbage_gets_400_and_the_connection_closes(http_port: int) -> None:
    with connect(http_port) as s:
        s.sendall(b"\x16\x03\x01\x02\x00 not http at all\r\n\r\n")  # a TLS hello, say
        status, headers, _ = http_response(s)
        assert (status, headers["connection"]) == (400, "close")
        assert recv_to_eof(s) == b""


def test_slow_client_gets_408(http_port: int) -> None:
    # The fixture's read timeout is 0.5 s; half a request and then silence.
    with connect(http_port) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost:")
        status, _, body = http_response(s)
    assert status == 408
    assert "not completed in time" in json.loads(body)["error"]


def test_head_has_headers_but_no_body(http_port: int) -> None:
    with connect(http_port) as s:
        s.sendall(b"HEAD /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        raw = recv_to_eof(s)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"Content-Length: " in head
    assert body == b""


def test_client_reset_mid_request_does_not_disturb_others(http_port: int) -> None:
    for _ in range(10):
        s = connect(http_port)
        s.sendall(b"PUT /kv/a HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\npartial")
        reset(s)
    assert request(http_port, get("/healthz"))[0] == 200
