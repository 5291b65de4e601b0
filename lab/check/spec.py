"""What a server under check must do: an assignment (a role of the lab, or a teacher's spec).

An assignment says which transport and port the server uses, where in the lab it runs
(in place of which process), what it answers, and which properties apply. The lab's
two shout roles are built in; a teacher describes any other server in a small YAML
file (docs/checking.md)::

    name: echo
    protocol: tcp            # tcp or udp
    port: 7000
    in-place-of: tcp-shout   # the lab process whose host it runs on (stopped meanwhile)
    args: [tcp, "{port}"]    # its command-line arguments; {port} is the port
    reply: echo              # upper | echo | none: the answer to any text
    examples:                # request -> reply, exactly (bytes as UTF-8 text)
      - {send: "hello", reply: "hello"}
    properties: [answers, sequential, concurrent]   # default: every one that applies

With ``reply: none`` only the examples say what a right answer is, so the properties
that need an answer for any text (non-ASCII, a split character, large messages) do not
apply.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from lab.check.properties import DATAGRAM, STREAM, Property
from lab.errors import UsageError

RESULT_PREFIX = "check-"  # a check result's experiment name: check-<assignment>

RULES: dict[str, Callable[[str], str] | None] = {
    "upper": str.upper,
    "echo": lambda text: text,
    "none": None,
}


@dataclass(frozen=True)
class Example:
    send: str
    reply: str


@dataclass(frozen=True)
class Assignment:
    name: str
    protocol: str  # "tcp" or "udp"
    port: int
    in_place_of: str  # the lab process whose place (host, port) it takes
    reply: str = "upper"  # a key of RULES
    examples: tuple[Example, ...] = (Example("hello", "HELLO"),)
    properties: tuple[str, ...] = ()  # empty: every property that applies
    args: tuple[str, ...] = ()
    source: str = ""  # the spec file it came from; "" for a built-in role

    @property
    def stream(self) -> bool:
        return self.protocol == "tcp"

    def answer(self, text: str) -> str | None:
        """The right reply to ``text``; None when the assignment has no rule for any text."""
        rule = RULES[self.reply]
        return None if rule is None else rule(text)

    def applicable(self) -> tuple[Property, ...]:
        """The properties checked, in battery order."""
        battery = STREAM if self.stream else DATAGRAM
        chosen = [
            p
            for p in battery
            if (not self.properties or p.id in self.properties)
            and (self.reply != "none" or not p.needs_rule)
        ]
        return tuple(chosen)

    def argv(self, port: int) -> list[str]:
        return [a.replace("{port}", str(port)) for a in self.args]

    def with_port(self, port: int | None) -> Assignment:
        return self if port is None else replace(self, port=port)


ROLES: dict[str, Assignment] = {
    "tcp-shout": Assignment("tcp-shout", "tcp", 8080, "tcp-shout"),
    "udp-shout": Assignment("udp-shout", "udp", 8080, "udp-shout"),
}


@dataclass(frozen=True)
class _Reader:
    path: Path

    def fail(self, what: str) -> UsageError:
        return UsageError(f"{self.path}: {what}", "docs/checking.md shows an assignment file")


def resolve(role: str) -> Assignment:
    """A built-in role by name, or an assignment file (.yaml/.yml)."""
    if role in ROLES:
        return ROLES[role]
    path = Path(role)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return load(path)
    raise UsageError(
        f"no role {role!r}",
        f"use one of {', '.join(ROLES)}, or an assignment file (docs/checking.md)",
    )


def load(path: Path) -> Assignment:
    """An assignment from a YAML file; UsageError naming the field that is wrong."""
    reader = _Reader(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise reader.fail("not UTF-8 text") from None
    except yaml.YAMLError as exc:
        raise reader.fail(f"not YAML ({' '.join(str(exc).split())})") from None
    return parse(data, reader)


def parse(data: Any, reader: _Reader) -> Assignment:
    if not isinstance(data, dict):
        raise reader.fail("an assignment is a mapping (name:, protocol:, port:, ...)")
    known = {"name", "protocol", "port", "in-place-of", "reply", "examples", "properties", "args"}
    known |= {"framing"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise reader.fail(f"unknown field {unknown[0]!r} (known: {', '.join(sorted(known))})")
    protocol = data.get("protocol")
    if protocol not in ("tcp", "udp"):
        raise reader.fail("protocol: is tcp or udp")
    port = data.get("port")
    if not isinstance(port, int) or not 0 < port < 65536:
        raise reader.fail("port: is a number from 1 to 65535")
    reply = data.get("reply", "none")
    if reply not in RULES:
        raise reader.fail(f"reply: is one of {', '.join(RULES)}")
    framing = data.get("framing", "none")
    if framing not in ("none", "line"):
        raise reader.fail("framing: is none or line")
    if framing == "line" and reply != "none":
        raise reader.fail("framing: line goes with reply: none (the examples give each line)")
    if not isinstance(data.get("examples") or [], list):
        raise reader.fail("examples: is a list of {send:, reply:}")
    if not isinstance(data.get("properties") or [], list):
        raise reader.fail("properties: is a list of property names")
    examples = []
    for i, item in enumerate(data.get("examples") or []):
        if not isinstance(item, dict) or not {"send", "reply"} <= set(item):
            raise reader.fail(f"examples[{i}]: needs send: and reply:")
        examples.append(Example(str(item["send"]), str(item["reply"])))
    if not examples:
        raise reader.fail("examples: give at least one request and its reply")
    battery = STREAM if protocol == "tcp" else DATAGRAM
    ids = {p.id for p in battery}
    properties = tuple(str(p) for p in data.get("properties") or ())
    wrong = [p for p in properties if p not in ids]
    if wrong:
        raise reader.fail(
            f"properties: {wrong[0]!r} is not a {protocol} property ({', '.join(sorted(ids))})"
        )
    args = data.get("args") or []
    if not isinstance(args, list):
        raise reader.fail("args: is a list")
    return Assignment(
        name=str(data.get("name") or reader.path.stem),
        protocol=protocol,
        port=port,
        in_place_of=str(data.get("in-place-of") or f"{protocol}-shout"),
        reply=reply,
        examples=tuple(examples),
        properties=properties,
        args=tuple(str(a) for a in args),
        source=str(reader.path),
    )
