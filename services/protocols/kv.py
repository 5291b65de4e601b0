"""The db service's command logic: an in-memory key-value store with Redis semantics.

Sans-IO: ``Store.execute`` takes one command (a list of byte strings) and the
current time, and returns a RESP reply. The socket server, and later an
append-only log, sit around it. ``Store.execute`` reports whether a command
changed the data (``Outcome.wrote``) so a log knows what to persist.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass

from .resp import OK, Error, Reply, Simple

WRONG_ARGS = "ERR wrong number of arguments for '{}' command"
NOT_INTEGER = Error("ERR value is not an integer or out of range")
SYNTAX = Error("ERR syntax error")
INT64 = (-(2**63), 2**63 - 1)


@dataclass(frozen=True)
class Outcome:
    reply: Reply
    wrote: bool = False
    close: bool = False  # QUIT: reply, then close the connection
    protocol: int | None = None  # HELLO: the RESP version the connection speaks from now on


@dataclass
class Entry:
    value: bytes
    expires_at: float | None = None  # seconds on the store's clock


Handler = Callable[["Store", list[bytes], float], Outcome]


class Store:
    """Keys to byte-string values, each with an optional expiry time.

    ``server`` holds the facts INFO reports about the process (pid, port...);
    the store itself never asks the operating system.
    """

    def __init__(self, server: dict[str, str | int] | None = None) -> None:
        self.entries: dict[bytes, Entry] = {}
        self.server = server or {}

    def execute(self, command: list[bytes], now: float) -> Outcome:
        if not command:
            return Outcome(Error("ERR empty command"))
        name = command[0].decode("utf-8", "replace").lower()
        spec = COMMANDS.get(name)
        if spec is None:
            shown = " ".join(f"'{a.decode('utf-8', 'replace')}'" for a in command[1:4])
            return Outcome(
                Error(f"ERR unknown command '{name}', with args beginning with: {shown}")
            )
        handler, min_args, max_args = spec
        argc = len(command) - 1
        if argc < min_args or (max_args is not None and argc > max_args):
            return Outcome(Error(WRONG_ARGS.format(name)))
        return handler(self, command[1:], now)

    # --- helpers ---

    def lookup(self, key: bytes, now: float) -> Entry | None:
        entry = self.entries.get(key)
        if entry is not None and entry.expires_at is not None and entry.expires_at <= now:
            del self.entries[key]  # lazy expiry, as Redis does on access
            return None
        return entry

    def live_keys(self, now: float) -> list[bytes]:
        return [k for k in list(self.entries) if self.lookup(k, now) is not None]

    def __len__(self) -> int:
        return len(self.entries)


def _ping(store: Store, args: list[bytes], now: float) -> Outcome:
    return Outcome(args[0] if args else Simple("PONG"))


def _echo(store: Store, args: list[bytes], now: float) -> Outcome:
    return Outcome(args[0])


def _get(store: Store, args: list[bytes], now: float) -> Outcome:
    entry = store.lookup(args[0], now)
    return Outcome(None if entry is None else entry.value)


def _set(store: Store, args: list[bytes], now: float) -> Outcome:
    key, value, options = args[0], args[1], args[2:]
    expires_at: float | None = None
    condition: str | None = None
    i = 0
    while i < len(options):
        option = options[i].upper()
        if option in (b"NX", b"XX"):
            if condition is not None:
                return Outcome(SYNTAX)
            condition = option.decode()
            i += 1
        elif option in (b"EX", b"PX", b"EXAT", b"PXAT"):
            if expires_at is not None or i + 1 >= len(options):
                return Outcome(SYNTAX)
            amount = _int(options[i + 1])
            if amount is None:
                return Outcome(NOT_INTEGER)
            if amount <= 0:
                return Outcome(Error("ERR invalid expire time in 'set' command"))
            # EX/PX count from now; EXAT/PXAT are absolute (the clock is the wall clock).
            expires_at = {
                b"EX": now + amount,
                b"PX": now + amount / 1000,
                b"EXAT": float(amount),
                b"PXAT": amount / 1000,
            }[option]
            i += 2
        else:
            return Outcome(SYNTAX)
    exists = store.lookup(key, now) is not None
    if (condition == "NX" and exists) or (condition == "XX" and not exists):
        return Outcome(None)
    store.entries[key] = Entry(value, expires_at)
    return Outcome(OK, wrote=True)


def _del(store: Store, args: list[bytes], now: float) -> Outcome:
    removed = 0
    for key in args:
        if store.lookup(key, now) is not None:
            del store.entries[key]
            removed += 1
    return Outcome(removed, wrote=removed > 0)


def _exists(store: Store, args: list[bytes], now: float) -> Outcome:
    return Outcome(sum(1 for key in args if store.lookup(key, now) is not None))


def _incr_by(store: Store, key: bytes, delta: int, now: float) -> Outcome:
    entry = store.lookup(key, now)
    current = 0
    if entry is not None:
        parsed = _int(entry.value)
        if parsed is None:
            return Outcome(NOT_INTEGER)
        current = parsed
    result = current + delta
    if not INT64[0] <= result <= INT64[1]:
        return Outcome(Error("ERR increment or decrement would overflow"))
    expires_at = entry.expires_at if entry is not None else None
    store.entries[key] = Entry(str(result).encode(), expires_at)
    return Outcome(result, wrote=True)


def _incr(store: Store, args: list[bytes], now: float) -> Outcome:
    return _incr_by(store, args[0], 1, now)


def _decr(store: Store, args: list[bytes], now: float) -> Outcome:
    return _incr_by(store, args[0], -1, now)


def _incrby(store: Store, args: list[bytes], now: float) -> Outcome:
    delta = _int(args[1])
    return Outcome(NOT_INTEGER) if delta is None else _incr_by(store, args[0], delta, now)


def _decrby(store: Store, args: list[bytes], now: float) -> Outcome:
    delta = _int(args[1])
    return Outcome(NOT_INTEGER) if delta is None else _incr_by(store, args[0], -delta, now)


def _keys(store: Store, args: list[bytes], now: float) -> Outcome:
    pattern = args[0].decode("latin-1")
    matched = [k for k in store.live_keys(now) if fnmatch.fnmatchcase(k.decode("latin-1"), pattern)]
    return Outcome(list[Reply](sorted(matched)))


def _dbsize(store: Store, args: list[bytes], now: float) -> Outcome:
    return Outcome(len(store.live_keys(now)))


def _flushall(store: Store, args: list[bytes], now: float) -> Outcome:
    if args and args[0].upper() not in (b"SYNC", b"ASYNC"):
        return Outcome(SYNTAX)
    store.entries.clear()
    return Outcome(OK, wrote=True)


def _quit(store: Store, args: list[bytes], now: float) -> Outcome:
    return Outcome(OK, close=True)


def _command(store: Store, args: list[bytes], now: float) -> Outcome:
    # redis-cli sends COMMAND DOCS on start-up; an empty answer satisfies it.
    return Outcome([])


def _config(store: Store, args: list[bytes], now: float) -> Outcome:
    # redis-benchmark asks CONFIG GET save / appendonly; answer "not set".
    if args and args[0].upper() == b"GET":
        return Outcome({})  # a map: empty
    return Outcome(Error("ERR CONFIG subcommand not supported by this stub"))


def _info(store: Store, args: list[bytes], now: float) -> Outcome:
    # Redis' INFO layout: "# Section" headers and key:value lines, CRLF-separated.
    server = {"redis_version": "7.0.0-socklab", "redis_mode": "standalone", **store.server}
    lines = [
        "# Server",
        *(f"{k}:{v}" for k, v in server.items()),
        "",
        "# Keyspace",
        f"db0:keys={len(store.live_keys(now))},expires=0",
    ]
    return Outcome(("\r\n".join(lines) + "\r\n").encode())


def _hello(store: Store, args: list[bytes], now: float) -> Outcome:
    # redis-py 5+ opens every connection with HELLO 3 (RESP3); redis-cli with HELLO too.
    protocol = 2
    if args:
        version = _int(args[0])
        if version not in (2, 3):
            return Outcome(Error("NOPROTO unsupported protocol version"))
        protocol = version
    info: Reply = {
        "server": b"socklab-db",
        "version": b"0.1.0",
        "proto": protocol,
        "id": 1,
        "mode": b"standalone",
        "role": b"master",
        "modules": [],
    }
    return Outcome(info, protocol=protocol)


def _client(store: Store, args: list[bytes], now: float) -> Outcome:
    # Clients announce themselves (CLIENT SETINFO / SETNAME); accept and forget.
    if args[0].upper() in (b"SETINFO", b"SETNAME"):
        return Outcome(OK)
    return Outcome(Error("ERR CLIENT subcommand not supported by this stub"))


def _int(raw: bytes) -> int | None:
    try:
        value = int(raw)
    except ValueError:
        return None
    # Redis accepts only canonical decimal integers (no '+', spaces or '_').
    if raw != str(value).encode() or not INT64[0] <= value <= INT64[1]:
        return None
    return value


# name -> (handler, minimum argument count, maximum or None)
COMMANDS: dict[str, tuple[Handler, int, int | None]] = {
    "ping": (_ping, 0, 1),
    "echo": (_echo, 1, 1),
    "get": (_get, 1, 1),
    "set": (_set, 2, None),
    "del": (_del, 1, None),
    "exists": (_exists, 1, None),
    "incr": (_incr, 1, 1),
    "decr": (_decr, 1, 1),
    "incrby": (_incrby, 2, 2),
    "decrby": (_decrby, 2, 2),
    "keys": (_keys, 1, 1),
    "dbsize": (_dbsize, 0, 0),
    "flushall": (_flushall, 0, 1),
    "quit": (_quit, 0, None),
    "command": (_command, 0, None),
    "config": (_config, 1, None),
    "hello": (_hello, 0, None),
    "info": (_info, 0, None),
    "client": (_client, 1, None),
}
