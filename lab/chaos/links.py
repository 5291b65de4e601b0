"""Impaired links: loss, rate, delay, jitter, reorder, duplicate, corrupt.

Loss is an iptables statistic match, rate a tc token bucket, the rest tc-netem, or
the lab's own netem in user space (services/helpers/netem.py) where the kernel has none.
Every change is made by a helper container holding CAP_NET_ADMIN in the host's
network namespace; the lab's services stay unprivileged. The parsing and the
commands are pure (tested without Docker); ``apply``/``reset``/``impaired``
carry them out. Impairments vanish with the namespace: a restarted host is clean.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, fields

import docker.errors

from lab.engine import helpers
from lab.engine.stack import Lab, ctrl_c_ignored
from lab.errors import LabError, UsageError

HELP = """\
Impair one host's link, to see what loss, a slow link or delay does to TCP and UDP.

    loss P%        frames *arriving at* HOST are dropped at random with probability P
                   (iptables' statistic match in HOST's namespace). They still cross the
                   lab network first, so a capture there shows every lost frame and, for
                   TCP, the retransmission that replaced it.
    rate R         what HOST sends is limited to R (a token bucket, tc-tbf): 1mbit, 500kbit
    delay T        what HOST sends waits T first, with optional
    jitter T       variation (+/- T); reorder P% of the frames skip the delay and overtake;
    duplicate P%   frames sent twice; corrupt P%: one bit flipped after the IP header

delay, jitter, reorder, duplicate and corrupt use tc-netem; on a kernel without it
(CONFIG_NET_SCH_NETEM unset) the lab's own netem in user space does the same through
an NFQUEUE rule (services/helpers/netem.py), and `lab link` says which one is at work.
A helper container with CAP_NET_ADMIN makes the change inside the host's network
namespace; the services themselves stay unprivileged. A restarted host starts clean.
"""

# The host's one interface, found by the script: eth0 at first, eth1 after a heal.
INTERFACE = '"$IF"'
FIND_INTERFACE = (
    """IF=$(ip -o link show | awk -F': ' '$2 != "lo" { sub(/@.*/, "", $2); print $2; exit }')"""
)
CHAIN = "NETLAB-LOSS"
NETEM_CHAIN = "NETLAB-NETEM"  # sends what the host sends to the user-space netem
QUEUE = 7  # the netfilter queue it reads
NETEM_MARK = "0x4e4c"  # services.helpers.netem marks its duplicates: they pass the rule
USER_SPACE = "user-space netem: this kernel has no sch_netem"
NETEM_KINDS = ("delay", "jitter", "duplicate", "corrupt", "reorder")
KINDS = ("loss", "rate", *NETEM_KINDS)
NO_NETEM = "Specified qdisc kind is unknown"


class LinkError(LabError):
    """An impairment could not be set or removed."""


class NetemMissing(LinkError):
    """The kernel has no sch_netem (``apply`` then uses the lab's own, in user space)."""

    def __init__(self) -> None:
        super().__init__("this kernel has no netem (CONFIG_NET_SCH_NETEM is not set)")


@dataclass(frozen=True)
class Impairment:
    loss: float = 0.0  # percent
    rate: str = ""  # tc rate: 1mbit, 500kbit
    delay: float = 0.0  # milliseconds
    jitter: float = 0.0  # milliseconds
    duplicate: float = 0.0  # percent
    corrupt: float = 0.0  # percent
    reorder: float = 0.0  # percent

    @property
    def needs_netem(self) -> list[str]:
        return [k for k in NETEM_KINDS if getattr(self, k)]

    def text(self) -> str:
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value:
                unit = {"loss": "%", "duplicate": "%", "corrupt": "%", "reorder": "%"}.get(
                    f.name, "ms" if f.name in ("delay", "jitter") else ""
                )
                parts.append(f"{f.name} {value:g}{unit}" if unit else f"{f.name} {value}")
        return ", ".join(parts) or "none"


PERCENT = re.compile(r"^(\d+(?:\.\d+)?)%?$")
DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|us)?$")
RATE = re.compile(r"^\d+(?:\.\d+)?(bit|kbit|mbit|gbit|bps|kbps|mbps)$")


def parse(words: list[str]) -> Impairment:
    """``["delay", "100ms", "loss", "10%"]`` -> Impairment; UsageError says what is wrong."""
    if len(words) % 2:
        raise UsageError(f"{words[-1]} needs a value (e.g. loss 10%, delay 100ms, rate 1mbit)")
    values: dict[str, float | str] = {}
    for kind, raw in zip(words[::2], words[1::2], strict=True):
        if kind not in KINDS:
            raise UsageError(f"no impairment {kind!r}; one of: {', '.join(KINDS)}")
        if kind in values:
            raise UsageError(f"{kind} given twice")
        values[kind] = _value(kind, raw)
    if values.get("jitter") and not values.get("delay"):
        raise UsageError("jitter varies a delay: give delay too (delay 100ms jitter 20ms)")
    return Impairment(**values)  # type: ignore[arg-type]


def _value(kind: str, raw: str) -> float | str:
    if kind == "rate":
        if not RATE.match(raw.lower()):
            raise UsageError(f"rate {raw!r}: give a number and a unit, e.g. 1mbit or 500kbit")
        return raw.lower()
    if kind in ("delay", "jitter"):
        m = DURATION.match(raw)
        if not m:
            raise UsageError(f"{kind} {raw!r}: give a time, e.g. 100ms")
        scale = {"s": 1000.0, "us": 0.001}.get(m.group(2) or "ms", 1.0)
        return float(m.group(1)) * scale
    m = PERCENT.match(raw)
    if not m or not 0 <= float(m.group(1)) <= 100:
        raise UsageError(f"{kind} {raw!r}: give a percentage from 0 to 100, e.g. 10%")
    return float(m.group(1))


def reset_script() -> str:
    """Remove whatever this module may have set; harmless where nothing was."""
    return "\n".join(
        [
            FIND_INTERFACE,
            f"tc qdisc del dev {INTERFACE} root 2>/dev/null || true",
            # every jump to the chain, whichever interface it named (eth0 before a heal)
            f"iptables -S INPUT 2>/dev/null | grep -e '-j {CHAIN}$' | sed 's/^-A/-D/' "
            "| while read -r rule; do iptables $rule; done || true",
            f"iptables -F {CHAIN} 2>/dev/null || true",
            f"iptables -X {CHAIN} 2>/dev/null || true",
            f"iptables -S OUTPUT 2>/dev/null | grep -e '-j {NETEM_CHAIN}$' | sed 's/^-A/-D/' "
            "| while read -r rule; do iptables $rule; done || true",
            f"iptables -F {NETEM_CHAIN} 2>/dev/null || true",
            f"iptables -X {NETEM_CHAIN} 2>/dev/null || true",
        ]
    )


def apply_script(imp: Impairment, kernel_netem: bool = True) -> str:
    """Shell commands that put ``imp`` in place, starting from a clean link.

    Every value in them has passed ``parse``: numbers, and rates like ``1mbit``.
    Without ``kernel_netem``, netem's kinds go to the user-space netem's queue
    (``--queue-bypass``: should it be gone, frames pass unimpaired, not dropped).
    """
    lines = ["set -e", reset_script()]
    if imp.loss:
        lines += [
            f"iptables -N {CHAIN}",
            f"iptables -A {CHAIN} -m statistic --mode random "
            f"--probability {imp.loss / 100:.6f} -j DROP",
            f"iptables -I INPUT -i {INTERFACE} -j {CHAIN}",
        ]
    netem = netem_args(imp)
    if netem and kernel_netem:
        lines.append(f"tc qdisc add dev {INTERFACE} root netem {' '.join(netem)}")
        return "\n".join(lines)
    if netem:
        lines += [
            f"iptables -N {NETEM_CHAIN}",
            f"iptables -A {NETEM_CHAIN} -m mark ! --mark {NETEM_MARK} "
            f"-j NFQUEUE --queue-num {QUEUE} --queue-bypass",
            f"iptables -A OUTPUT -o {INTERFACE} -j {NETEM_CHAIN}",
        ]
    if imp.rate:
        # 32 kbit of burst: a few full frames, so the rate holds at small time scales too.
        lines.append(
            f"tc qdisc add dev {INTERFACE} root tbf rate {imp.rate} burst 32kbit latency 400ms"
        )
    return "\n".join(lines)


def netem_args(imp: Impairment) -> list[str]:
    """netem's own words for the kinds only it can do (rate rides along when netem is used)."""
    if not imp.needs_netem:
        return []
    args: list[str] = []
    if imp.delay:
        args += ["delay", f"{imp.delay:g}ms"] + ([f"{imp.jitter:g}ms"] if imp.jitter else [])
    if imp.duplicate:
        args += ["duplicate", f"{imp.duplicate:g}%"]
    if imp.corrupt:
        args += ["corrupt", f"{imp.corrupt:g}%"]
    if imp.reorder:
        if not imp.delay:
            raise UsageError("reorder sends some frames ahead of delayed ones: give delay too")
        args += ["reorder", f"{imp.reorder:g}%"]
    if imp.rate:
        args += ["rate", imp.rate]
    return args


def user_space_argv(imp: Impairment) -> list[str]:
    """The user-space netem's command line for ``imp``'s netem kinds."""
    numbers = (imp.delay, imp.jitter, imp.reorder, imp.duplicate, imp.corrupt)
    return ["python3", "-m", "services.helpers.netem", str(QUEUE), *(f"{x:g}" for x in numbers)]


def show_script() -> str:
    return "\n".join(
        [
            FIND_INTERFACE,
            f"tc qdisc show dev {INTERFACE}",
            f"iptables -S {CHAIN} 2>/dev/null | grep -- '-A' || true",
            f"iptables -S {NETEM_CHAIN} 2>/dev/null | grep -- '-A' || true",
        ]
    )


def _run(lab: Lab, host: str, script: str) -> str:
    if host not in lab.topology.hosts:
        raise UsageError(f"{host} is not a host; one of: {', '.join(lab.topology.hosts)}")
    try:
        return helpers.run(
            lab, "link", helpers.Namespace.of_host(lab, host), ["sh", "-c", script], "NET_ADMIN"
        )
    except helpers.HelperFailed as exc:
        if NO_NETEM in exc.output:
            raise NetemMissing from None
        raise LinkError(f"changing {host}'s link failed: {exc.what}") from None


def apply(lab: Lab, host: str, imp: Impairment) -> str:
    """Put ``imp`` on ``host``'s link, replacing what was there; which netem is at work."""
    _stop_user_space(lab, host)
    try:
        _run(lab, host, apply_script(imp))
        return "tc netem" if imp.needs_netem else ""
    except NetemMissing:
        pass  # set -e stopped at tc netem; the next script starts from a clean link
    where = helpers.Namespace.of_host(lab, host)
    container = helpers.start(
        lab, "netem", where, user_space_argv(imp), "NET_ADMIN", also=("NET_RAW",), lasting=True
    )
    try:
        helpers.wait_ready(container, "delaying packets")
        _run(lab, host, apply_script(imp, kernel_netem=False))
    except helpers.HelperFailed as exc:
        reset(lab, host)
        raise LinkError(f"the user-space netem on {host} did not start: {exc.what}") from None
    except BaseException:
        reset(lab, host)
        raise
    return USER_SPACE


def _stop_user_space(lab: Lab, host: str) -> None:
    for container_id in helpers.find(lab, "netem", host):
        with suppress(docker.errors.NotFound):
            lab.client.api.remove_container(container_id, force=True)


def reset(lab: Lab, host: str) -> None:
    _stop_user_space(lab, host)
    _run(lab, host, reset_script())


def show(lab: Lab, host: str) -> str:
    running = helpers.find(lab, "netem", host)
    shown = _run(lab, host, show_script())
    if running:
        argv = lab.client.api.inspect_container(running[0])["Config"]["Cmd"]
        shown += f"user-space netem running: {' '.join(argv)}\n"
    return shown


@contextmanager
def impaired(lab: Lab, host: str, imp: Impairment) -> Iterator[str]:
    """``imp`` on ``host``'s link for the length of a block; removed however it ends.

    Yields which netem is at work (see ``apply``)."""
    try:
        yield apply(lab, host, imp)
    finally:
        with ctrl_c_ignored():
            reset(lab, host)
