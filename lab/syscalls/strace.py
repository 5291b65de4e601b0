"""strace's output, read into system calls (sans-IO: text in, events out).

strace prints one line per system call a traced process makes, as the kernel
answered it::

    [pid  14] 1795777183.210650 accept4(6, {sa_family=AF_INET, sin_port=htons(45690),
        sin_addr=inet_addr("127.0.0.1")}, [16], SOCK_CLOEXEC) = 7 <0.000111>

(``-f``: the thread in brackets; ``-ttt``: the wall-clock time the call began;
``-T``: how long it took). A call that blocks while another thread's call is
printed comes in two lines, ``accept4(3,  <unfinished ...>`` and later
``<... accept4 resumed>{...}) = 4``; signals come as ``--- SIGPIPE {...} ---``
and the end as ``+++ exited with 0 +++``. ``parse`` turns every such line into
a ``Syscall``: the descriptor it acted on, the one it returned, the peer
address and bytes in its arguments, its return value and errno name, on the
caller's clock. Lines strace says about itself (``strace: Process 13
attached``) are not calls and are left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

# What `lab trace` and traced socket scripts ask strace to show: the calls that make,
# use and end sockets. getsockname/getpeername are left out: the lab's own recorder
# (sockscript) and asyncio call them after nearly every step to note addresses, and
# they change nothing. close is every close: `on_sockets` keeps those of sockets.
TRACED = (
    "socket",
    "socketpair",
    "bind",
    "listen",
    "accept",
    "accept4",
    "connect",
    "shutdown",
    "sendto",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "sendmmsg",
    "recvmmsg",
    "setsockopt",
    "getsockopt",
    "close",
)
STRING_SIZE = 64  # bytes of each buffer strace shows (its -s); longer ones end in "..."


def command(*, pid: int | None = None) -> list[str]:
    """strace's argv: attached to ``pid``, or (None) to run the program that follows."""
    argv = ["strace", "-f", "-ttt", "-T", "-s", str(STRING_SIZE)]
    argv += ["-e", "trace=" + ",".join(TRACED)]
    return [*argv, "-p", str(pid)] if pid is not None else argv


NEW_FD = ("socket", "accept", "accept4")  # calls whose result is a new descriptor
NO_FD = ("socket", "socketpair")  # calls whose first argument is not a descriptor
DATA = ("sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg")


@dataclass(frozen=True)
class Syscall:
    """One system call (or signal, or exit) of a traced process, as strace saw it."""

    t: float  # when it began, in seconds from the caller's origin (see ``parse``)
    pid: int | None  # the thread that made it; None where strace does not say
    name: str  # "accept4"; a signal's name ("SIGPIPE"); "exit"
    args: str = ""  # as strace printed them
    result: int | None = None  # None: no return value (a signal, an unfinished call)
    errno: str = ""  # "EPIPE", "EAGAIN"... when it failed
    fd: int | None = None  # the descriptor it acted on (its first argument)
    new_fd: int | None = None  # the descriptor it returned (socket, accept)
    peer: str = ""  # the address in its arguments: "10.203.0.100:41234", or a Unix path
    data: str | None = None  # the bytes in its buffer (C escapes undone; surrogateescape)
    truncated: bool = False  # strace showed only the first STRING_SIZE bytes
    dt: float | None = None  # seconds it took (-T)
    kind: str = "call"  # "call", "signal" or "exit"
    process: str = ""  # what was traced (a lab process, or the host a script ran on)

    @property
    def failed(self) -> bool:
        return self.result == -1 and bool(self.errno)

    @property
    def outcome(self) -> str:
        """The kernel's answer, as the lab's socket events name theirs."""
        if self.kind != "call":
            return self.args
        if self.errno:
            return self.errno
        return "?" if self.result is None else str(self.result)


_LINE = re.compile(
    r"^(?:\[pid\s+(?P<pid>\d+)\]\s+|(?P<bare_pid>\d+)\s+(?=\d+\.\d+\s))?"
    r"(?P<ts>\d+\.\d+)\s+(?P<rest>.*)$"
)
_RESULT = re.compile(
    r"^(?P<value>-?\d+|0x[0-9a-fA-F]+|\?)"
    r"(?:\s+(?P<errno>E[A-Z0-9]+)(?:\s+\([^)]*\))?)?"
    r"(?:.*?<(?P<dt>\d+\.\d+)>)?\s*$"
)
_CALL = re.compile(r"^(?P<name>\w+)\((?P<args>.*)\)\s+=\s+(?P<result>.*)$")
_UNFINISHED = re.compile(r"^(?P<name>\w+)\((?P<args>.*?)\s*<(?:unfinished|detached) \.\.\.>$")
_RESUMED = re.compile(r"^<\.\.\. (?P<name>\w+) resumed>\s*(?P<args>.*)\)\s+=\s+(?P<result>.*)$")
_SIGNAL = re.compile(r"^--- (?P<name>SIG\w+) (?P<info>.*) ---$")
_EXIT = re.compile(r"^\+\+\+ (?P<how>.*) \+\+\+$")
_QUOTED = r'"((?:[^"\\]|\\.)*)"(\.\.\.)?'
# The buffer: a send/recv's second argument, or the first iov_base of a msghdr.
_BUFFER = re.compile(rf"^-?\d+,\s*{_QUOTED}|iov_base={_QUOTED}")
_IPV4 = re.compile(r'sin_port=htons\((\d+)\), sin_addr=inet_addr\("([^"]*)"\)')
_IPV6 = re.compile(r'sin6_port=htons\((\d+)\).*?inet_pton\(AF_INET6, "([^"]*)"')
_UNIX = re.compile(r'sun_path=(@?"[^"]*")')
_PAIR = re.compile(r"\[(\d+), (\d+)\]\s*$")  # socketpair's two descriptors, its last argument
_ESCAPES = {"n": 10, "t": 9, "r": 13, "v": 11, "f": 12, "a": 7, "b": 8, '"': 34, "\\": 92}


def unescape(text: str) -> bytes:
    """A string as strace quotes it (C escapes, octal for the rest) back into its bytes."""
    out = bytearray()
    i = 0
    while i < len(text):
        c = text[i]
        if c != "\\" or i + 1 == len(text):
            out += c.encode()
            i += 1
            continue
        nxt = text[i + 1]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt == "x":
            out.append(int(text[i + 2 : i + 4], 16))
            i += 4
        else:
            digits = re.match(r"[0-7]{1,3}", text[i + 1 :])
            if digits is None:
                out += nxt.encode()
                i += 2
            else:
                out.append(int(digits.group(), 8) & 0xFF)
                i += 1 + len(digits.group())
    return bytes(out)


def peer_of(args: str) -> str:
    """The first socket address in a call's arguments, as "ip:port" (or a Unix path)."""
    if m := _IPV4.search(args):
        return f"{m.group(2)}:{m.group(1)}"
    if m := _IPV6.search(args):
        return f"{m.group(2)}:{m.group(1)}"
    if m := _UNIX.search(args):
        return m.group(1).replace('"', "")
    return ""


def _call(t: float, pid: int | None, name: str, args: str, result_text: str) -> Syscall:
    result: int | None = None
    errno, dt = "", None
    if m := _RESULT.match(result_text.strip()):
        value = m.group("value")
        if value != "?":
            result = int(value, 16) if value.startswith("0x") else int(value)
        errno = m.group("errno") or ""
        dt = float(m.group("dt")) if m.group("dt") else None
    first = args.split(",", 1)[0].strip()
    fd = int(first) if name not in NO_FD and re.fullmatch(r"-?\d+", first) else None
    new_fd = result if name in NEW_FD and result is not None and result >= 0 else None
    if name == "socketpair" and (pair := _PAIR.search(args)):
        new_fd = int(pair.group(1))  # the second one is in ``args``
    data, truncated = None, False
    if name in DATA and (b := _BUFFER.search(args)):
        quoted, more = (b.group(1), b.group(2)) if b.group(1) is not None else b.group(3, 4)
        data = unescape(quoted).decode("utf-8", "surrogateescape")
        truncated = bool(more)
    return Syscall(
        t=t,
        pid=pid,
        name=name,
        args=args,
        result=result,
        errno=errno,
        fd=fd,
        new_fd=new_fd,
        peer=peer_of(args),
        data=data,
        truncated=truncated,
        dt=dt,
    )


def parse(
    text: str, origin: float = 0.0, process: str = "", pid: int | None = None
) -> list[Syscall]:
    """Every call, signal and exit in strace's output, in the order strace printed them.

    ``origin``: the wall-clock time (seconds since the epoch, as ``-ttt`` prints) that
    becomes t = 0; ``process``: what was traced, stamped on each; ``pid``: the thread
    of the lines strace prints without one (it names threads only once there are
    several). A call split by another thread's is joined again, at the time it began;
    one still unfinished when the trace ended is kept with no result.
    """
    main = pid
    calls: list[Syscall] = []
    pending: dict[int | None, tuple[int, float, str, str]] = {}  # pid -> (index, t, name, args)
    for raw_line in text.splitlines():
        line = _LINE.match(raw_line.strip())
        if line is None:
            continue  # strace speaking of itself, or the traced program's own output
        pid_text = line.group("pid") or line.group("bare_pid")
        pid = int(pid_text) if pid_text else main
        t = round(float(line.group("ts")) - origin, 6)
        rest = line.group("rest")
        if m := _RESUMED.match(rest):
            index, began, name, first = pending.pop(pid, (-1, t, m.group("name"), ""))
            gap = " " if first.endswith(",") else ""
            call = _call(began, pid, name, first + gap + m.group("args"), m.group("result"))
            if index >= 0:
                calls[index] = call
            else:
                calls.append(call)
        elif m := _UNFINISHED.match(rest):
            pending[pid] = (len(calls), t, m.group("name"), m.group("args"))
            calls.append(Syscall(t, pid, m.group("name"), m.group("args")))
        elif m := _CALL.match(rest):
            calls.append(_call(t, pid, m.group("name"), m.group("args"), m.group("result")))
        elif m := _SIGNAL.match(rest):
            calls.append(Syscall(t, pid, m.group("name"), m.group("info"), kind="signal"))
        elif m := _EXIT.match(rest):
            calls.append(Syscall(t, pid, "exit", m.group("how"), kind="exit"))
    for index, _, _, _ in pending.values():
        unfinished = calls[index]
        fd_text = unfinished.args.split(",", 1)[0].strip()
        fd = int(fd_text) if unfinished.name not in NO_FD and fd_text.isdigit() else None
        calls[index] = replace(unfinished, fd=fd)
    return [replace(c, process=process) for c in calls] if process else calls


def on_sockets(calls: Iterable[Syscall]) -> list[Syscall]:
    """The calls that concern sockets: every socket call, signal and exit, and a ``close``
    only of a descriptor a socket call made or used (a traced program also closes files)."""
    sockets: set[int] = set()
    kept = []
    for c in calls:
        if c.name == "close":
            if c.fd not in sockets:
                continue
            sockets.discard(c.fd)
        else:
            sockets.update(n for n in (c.fd, c.new_fd) if n is not None and n >= 0)
            if c.name == "socketpair" and (pair := _PAIR.search(c.args)):
                sockets.add(int(pair.group(2)))
        kept.append(c)
    return kept


def clock_offset(text: str) -> float | None:
    """The ``clock offset SECONDS`` line a trace helper prints before strace starts:
    wall clock minus CLOCK_MONOTONIC, read in the traced host."""
    m = re.search(r"^clock offset (-?\d+\.\d+)$", text, re.MULTILINE)
    return float(m.group(1)) if m else None
