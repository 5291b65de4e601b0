"""Reading strace's output: lines captured from real traces of the lab's processes
(tests/pure/fixtures/strace/, see the fixtures README) and single lines from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.syscalls.strace import (
    Syscall,
    clock_offset,
    command,
    on_sockets,
    parse,
    peer_of,
    unescape,
)

CAPTURED = Path(__file__).parent / "fixtures" / "strace"


def captured(name: str) -> str:
    return (CAPTURED / f"{name}.txt").read_text()


def one(line: str) -> Syscall:
    (call,) = parse(line)
    return call


# (line as strace printed it, name, fd, new_fd, result, errno, peer, data)
LINES = [
    (
        '1795777183.210650 accept4(6, {sa_family=AF_INET, sin_port=htons(45690), sin_addr=inet_addr("127.0.0.1")}, [16], SOCK_CLOEXEC) = 7 <0.000111>',
        "accept4", 6, 7, 7, "", "127.0.0.1:45690", None,
    ),
    (
        "1795777183.213493 accept4(6, 0x7ffc5b65cdd0, [16], SOCK_CLOEXEC) = -1 EAGAIN (Resource temporarily unavailable) <0.000059>",
        "accept4", 6, None, -1, "EAGAIN", "", None,
    ),
    (
        '1795777183.214394 recvfrom(7, "ping", 262144, 0, NULL, NULL) = 4 <0.000015>',
        "recvfrom", 7, None, 4, "", "", "ping",
    ),
    (
        '1795777183.214805 recvfrom(7, "", 262144, 0, NULL, NULL) = 0 <0.000012>',
        "recvfrom", 7, None, 0, "", "", "",
    ),
    (
        "1795777183.215017 close(7)              = 0 <0.000061>",
        "close", 7, None, 0, "", "", None,
    ),
    (
        '1795777228.388648 sendto(3, "HELLO", 5, 0, {sa_family=AF_INET, sin_port=htons(48360), sin_addr=inet_addr("10.203.92.100")}, 16) = 5 <0.000042>',
        "sendto", 3, None, 5, "", "10.203.92.100:48360", "HELLO",
    ),
    (
        "1795777145.915688 socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_IP) = 3 <0.000273>",
        "socket", None, 3, 3, "", "", None,
    ),
    (
        '1795777246.801893 sendto(5, "z", 1, 0, NULL, 0) = -1 EPIPE (Broken pipe) <0.000027>',
        "sendto", 5, None, -1, "EPIPE", "", "z",
    ),
    (
        '1795777246.809477 connect(5, {sa_family=AF_INET, sin_port=htons(7777), sin_addr=inet_addr("127.0.0.1")}, 16) = -1 EISCONN (Transport endpoint is already connected) <0.000019>',
        "connect", 5, None, -1, "EISCONN", "127.0.0.1:7777", None,
    ),
    (
        '1795777246.819317 bind(6, {sa_family=AF_INET6, sin6_port=htons(0), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28) = -1 EADDRNOTAVAIL (Cannot assign requested address) <0.000018>',
        "bind", 6, None, -1, "EADDRNOTAVAIL", "::1:0", None,
    ),
    (
        '[pid  2909] 1795777151.813783 connect(8, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110) = -1 ENOENT (No such file or directory) <0.004247>',
        "connect", 8, None, -1, "ENOENT", "/var/run/nscd/socket", None,
    ),
    (
        "[pid    13] 1795777151.842126 getsockopt(8, SOL_SOCKET, SO_ERROR, [0], [4]) = 0 <0.000018>",
        "getsockopt", 8, None, 0, "", "", None,
    ),
    (
        "1795776961.639584 getsockopt(4, SOL_SOCKET, SO_ERROR, [ECONNREFUSED], [4]) = 0 <0.000013>",
        "getsockopt", 4, None, 0, "", "", None,
    ),
    (
        '199   1795776961.633911 recvmsg(3, {msg_name={sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr("10.203.92.20")}, msg_namelen=16, msg_iov=[{iov_base="X", iov_len=65536}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, 0) = 1 <0.000016>',
        "recvmsg", 3, None, 1, "", "10.203.92.20:8080", "X",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("line", "name", "fd", "new_fd", "result", "errno", "peer", "data"), LINES)
def test_one_line(
    line: str,
    name: str,
    fd: int | None,
    new_fd: int | None,
    result: int,
    errno: str,
    peer: str,
    data: str | None,
) -> None:
    call = one(line)
    assert (call.name, call.fd, call.new_fd, call.result, call.errno, call.peer, call.data) == (
        name,
        fd,
        new_fd,
        result,
        errno,
        peer,
        data,
    )
    assert call.kind == "call"
    assert call.dt is not None


def test_times_count_from_the_origin_and_threads_are_named() -> None:
    call = one("[pid  2909] 1795777151.813506 socket(AF_UNIX, SOCK_STREAM, 0) = 8 <0.000053>")
    assert call.pid == 2909
    assert call.t == pytest.approx(1795777151.813506, abs=1e-6)
    later = parse("1795777151.813506 close(8) = 0 <0.000013>", origin=1795777150.0, pid=13)
    assert later[0].t == pytest.approx(1.813506)
    assert later[0].pid == 13  # a line without [pid N] is the traced process's


def test_a_call_split_by_another_threads_is_joined_at_its_start() -> None:
    calls = parse(captured("threads"))
    accept = next(c for c in calls if c.name == "accept4")
    assert (accept.pid, accept.fd, accept.new_fd, accept.peer) == (1691, 3, 4, "127.0.0.1:37858")
    assert accept.t == pytest.approx(1795777246.059756)
    assert accept.dt == pytest.approx(0.333885)
    received = next(c for c in calls if c.name == "recvfrom")
    assert (received.fd, received.result, received.data) == (4, 4, "x\n\0\udcff")
    # In the order strace printed them: the accept began before the connect it waited for.
    names = [c.name for c in on_sockets(calls)]
    assert names.index("accept4") < names.index("connect")


def test_signals_and_exits() -> None:
    calls = parse(captured("threads"))
    sigpipe = next(c for c in calls if c.kind == "signal")
    assert sigpipe.name == "SIGPIPE"
    epipe = calls[calls.index(sigpipe) - 1]
    assert (epipe.name, epipe.errno) == ("sendto", "EPIPE")
    assert [c.args for c in calls if c.kind == "exit"] == ["exited with 0", "exited with 0"]


def test_a_call_still_blocked_when_the_trace_ends_is_kept_without_a_result() -> None:
    calls = parse("[pid 7] 1.000000 recvfrom(4,  <unfinished ...>\n[pid 8] 1.5 close(5) = 0 <0.1>")
    assert (calls[0].name, calls[0].fd, calls[0].result, calls[0].outcome) == (
        "recvfrom",
        4,
        None,
        "?",
    )
    assert calls[1].name == "close"


def test_strace_speaking_of_itself_is_not_a_call() -> None:
    text = captured("tcp-shout")
    assert text.startswith("strace: Process 13 attached")
    assert "strace: detach: tkill(13,0): Operation not permitted" in text
    calls = parse(text)
    assert len(calls) == 28
    assert all(c.kind == "call" for c in calls)


def test_the_tcp_server_accepts_a_new_descriptor_and_the_listener_stays() -> None:
    calls = on_sockets(parse(captured("tcp-shout"), pid=13))
    accepted = [c for c in calls if c.name == "accept4" and c.new_fd is not None]
    assert [(c.fd, c.new_fd) for c in accepted] == [(6, 7)] * 4
    hello = next(c for c in accepted if c.peer.startswith("10.203.92.100"))
    after = calls[calls.index(hello) :]
    assert [(c.name, c.fd, c.outcome) for c in after[3:7]] == [
        ("recvfrom", 7, "5"),
        ("sendto", 7, "5"),
        ("recvfrom", 7, "0"),
        ("close", 7, "0"),
    ]


def test_the_udp_server_answers_every_peer_on_one_descriptor() -> None:
    calls = parse(captured("udp-shout"))
    assert {c.fd for c in calls} == {3}
    assert {c.peer for c in calls if c.data in ("hello", "HELLO", "again", "AGAIN")} == {
        "10.203.92.100:48360",
        "10.203.92.100:47088",
    }


def test_closes_of_files_are_left_out_but_not_those_of_sockets() -> None:
    calls = parse(captured("http"), pid=13)
    kept = on_sockets(calls)
    dropped = [c for c in calls if c not in kept]
    assert dropped
    assert all(c.name == "close" for c in dropped)
    assert ("close", 8) in [(c.name, c.fd) for c in kept]  # the socket to db


def test_socketpair_descriptors_count_as_sockets() -> None:
    calls = parse(
        "1.0 socketpair(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC, 0, [3, 4]) = 0 <0.1>\n"
        "1.1 close(4) = 0 <0.1>\n1.2 close(3) = 0 <0.1>\n1.3 close(9) = 0 <0.1>"
    )
    assert calls[0].new_fd == 3
    assert [c.fd for c in on_sockets(calls)] == [None, 4, 3]


@pytest.mark.parametrize(
    ("quoted", "raw"),
    [
        ("ping", b"ping"),
        ("x\\n\\0\\377", b"x\n\x00\xff"),
        ("\\250\\353\\1\\0\\0\\1", b"\xa8\xeb\x01\x00\x00\x01"),
        ('say \\"hi\\"\\r\\n', b'say "hi"\r\n'),
        ("\\x41\\t\\\\", b"A\t\\"),
        ("\\0012", b"\x012"),  # an octal escape takes at most three digits
    ],
)
def test_unescape(quoted: str, raw: bytes) -> None:
    assert unescape(quoted) == raw


def test_a_long_buffer_is_marked_truncated() -> None:
    calls = parse(captured("http"))
    reply = next(c for c in calls if c.name == "sendto" and c.fd == 7)
    assert reply.truncated
    assert reply.result == 111
    assert reply.data == "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length:"


def test_peer_of_unknown_family_is_empty() -> None:
    assert peer_of("3, {sa_family=AF_NETLINK, nl_pid=0, nl_groups=00000000}, 12") == ""


def test_clock_offset_line() -> None:
    assert clock_offset("clock offset 1795772151.925067\nstrace: Process 13 attached\n") == (
        1795772151.925067
    )
    assert clock_offset("strace: Process 13 attached\n") is None


def test_command() -> None:
    attach = command(pid=13)
    assert attach[:4] == ["strace", "-f", "-ttt", "-T"]
    assert attach[-2:] == ["-p", "13"]
    assert "getsockname" not in " ".join(attach)
    assert "-p" not in command()
