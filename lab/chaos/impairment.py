"""What an impaired link is, in words and in the commands that make it (pure: no Docker).

``parse`` turns ``loss 10% delay 50ms`` into an ``Impairment``; the ``*_script``
functions are the shell commands a helper runs in a host's network namespace
to put one in place, show it, or remove it. ``lab.chaos.links`` runs them.
Every interface of the host but loopback is impaired: a router host has several.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

from lab.errors import UsageError

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

# The host's interfaces but loopback, found by the script (eth0 at first, eth1 after a
# heal; a router host has one per network). Loopback stays clean: healthchecks use it.
FIND_INTERFACES = (
    """IFACES=$(ip -o link show | awk -F': ' '$2 != "lo" { sub(/@.*/, "", $2); print $2 }')"""
)


def each_interface(command: str) -> str:
    """``command`` (which names ``"$IF"``) once for every interface found."""
    return f"for IF in $IFACES; do {command}; done"


CHAIN = "SOCKLAB-LOSS"
NETEM_CHAIN = "SOCKLAB-NETEM"  # sends what the host sends to the user-space netem
QUEUE = 7  # the netfilter queue it reads
NETEM_MARK = "0x4e4c"  # services.helpers.netem marks its duplicates: they pass the rule
USER_SPACE = "user-space netem: this kernel has no sch_netem"
NETEM_KINDS = ("delay", "jitter", "duplicate", "corrupt", "reorder")
KINDS = ("loss", "rate", *NETEM_KINDS)
NO_NETEM = "Specified qdisc kind is unknown"


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
            FIND_INTERFACES,
            each_interface('tc qdisc del dev "$IF" root 2>/dev/null || true'),
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
            f"iptables -I INPUT ! -i lo -j {CHAIN}",
        ]
    netem = netem_args(imp)
    if netem and kernel_netem:
        lines.append(each_interface(f'tc qdisc add dev "$IF" root netem {" ".join(netem)}'))
        return "\n".join(lines)
    if netem:
        lines += [
            f"iptables -N {NETEM_CHAIN}",
            f"iptables -A {NETEM_CHAIN} -m mark ! --mark {NETEM_MARK} "
            f"-j NFQUEUE --queue-num {QUEUE} --queue-bypass",
            f"iptables -A OUTPUT ! -o lo -j {NETEM_CHAIN}",
        ]
    if imp.rate:
        # 32 kbit of burst: a few full frames, so the rate holds at small time scales too.
        lines.append(
            each_interface(
                f'tc qdisc add dev "$IF" root tbf rate {imp.rate} burst 32kbit latency 400ms'
            )
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
            FIND_INTERFACES,
            each_interface('tc qdisc show dev "$IF"'),
            f"iptables -S {CHAIN} 2>/dev/null | grep -- '-A' || true",
            f"iptables -S {NETEM_CHAIN} 2>/dev/null | grep -- '-A' || true",
        ]
    )
