"""ttl-across-router: what a router does to the packets it forwards.

Needs a topology with a router between the client and udp-shout:

    lab -f examples/topologies/router/compose.yaml up
    lab -f examples/topologies/router/compose.yaml run examples/experiments/ttl_across_router.py

The judgement reads only the frames captured on the two networks' bridges and the
hosts' Ethernet addresses: a frame on the client's network is addressed to the
router's card, the same datagram on the server's network comes from the router's
other card, one hop older.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import lab
from lab.packets import dissect

MARK = "across?"  # the datagram to follow
SHORT = "ttl one?"  # the one that may cross no router


class TtlAcrossRouter(lab.Experiment):
    name = "ttl-across-router"
    question = "What does a router do to a packet it forwards, and to one that may not cross it?"
    needs = lab.Needs(processes={"udp-shout": ("8080/udp",)}, hosts=("router",))
    claims = (
        lab.Claim(
            "addressed-to-the-router",
            "On the client's network the datagram is addressed (Ethernet) to the router, "
            "not to the server, whose IP address it carries: the client knows its next hop",
        ),
        lab.Claim(
            "one-hop-older",
            "On the server's network the same datagram comes from the router's other card "
            "with a TTL one lower: forwarding costs one hop",
        ),
        lab.Claim("answered-across", "The server's answer crosses back and reaches the client"),
        lab.Claim(
            "ttl-one-dies",
            "A datagram sent with TTL 1 never reaches the server's network: the router drops "
            "it and says so with ICMP time exceeded, from its address on the client's side",
        ),
    )

    def run(self, ctx: lab.Context) -> None:
        net = ctx.lab
        server = net.topology.host_of("udp-shout")
        ctx.facts["server_ip"] = server.ip
        ctx.facts["macs"] = {h.name: h.macs for h in net.hosts.values()}
        ctx.facts["router_ips"] = net.host("router").ips
        script = lab.Script()
        script.udp("far", timeout=2.0).sendto(server.ip, 8080, MARK).recvfrom()
        script.udp("short", ttl=1, timeout=1.0).sendto(server.ip, 8080, SHORT).recvfrom()
        with tempfile.TemporaryDirectory() as folder:
            with net.capture(Path(folder) / "router.pcap") as info:
                ctx.on(net.topology.client.name, script)
            ctx.facts["frames"] = [
                frame_facts(f) for f in dissect.read(info.path) if f.layer("IPv4")
            ]

    def judge(self, seen: lab.Observations) -> lab.Verdicts:
        facts = seen.facts
        macs, frames = facts["macs"], facts["frames"]
        client, router, server = seen.client, "router", "server"
        marked = [f for f in frames if f["payload"] == MARK]
        v = lab.Verdicts()

        @v.claim("addressed-to-the-router")
        def _() -> tuple[bool, str]:
            first = next(f for f in marked if f["eth_src"] in macs[client].values())
            return (
                first["dst"] == facts["server_ip"]
                and first["eth_dst"] in macs[router].values()
                and first["eth_dst"] not in macs[server].values(),
                f"to IP {first['dst']}, to Ethernet {first['eth_dst']} "
                f"(the router's cards: {', '.join(macs[router].values())}), TTL {first['ttl']}",
            )

        @v.claim("one-hop-older")
        def _() -> tuple[bool, str]:
            before = next(f for f in marked if f["eth_src"] in macs[client].values())
            after = next(f for f in marked if f["eth_src"] in macs[router].values())
            return (
                after["ttl"] == before["ttl"] - 1
                and after["eth_dst"] in macs[server].values()
                and after["src"] == before["src"],
                f"TTL {before['ttl']} leaving {before['src']}, TTL {after['ttl']} after the "
                f"router, from its card {after['eth_src']} to {after['eth_dst']}",
            )

        @v.claim("answered-across")
        def _() -> tuple[bool, str]:
            reply = seen.events.first("far", "recvfrom")
            return (
                reply.outcome == "ok" and reply.data == MARK.upper(),
                f"recvfrom: {reply.outcome} {reply.data!r} from {reply.remote}",
            )

        @v.claim("ttl-one-dies")
        def _() -> tuple[bool, str]:
            short = [f for f in frames if f["payload"] == SHORT]
            beyond = [f for f in short if f["eth_src"] in macs[router].values()]
            exceeded = [f for f in frames if f["icmp"] == [11, 0]]
            router_side = {f["src"] for f in exceeded}
            return (
                bool(short)
                and not beyond
                and bool(exceeded)
                and router_side <= set(facts["router_ips"].values())
                and all(f["eth_src"] in macs[router].values() for f in exceeded),
                f"{len(short)} frame(s) of it on the wire, {len(beyond)} beyond the router; "
                f"ICMP time exceeded from {', '.join(sorted(router_side)) or 'nobody'}",
            )

        return v


def frame_facts(frame: dissect.Frame) -> dict[str, Any]:
    """What the judgement needs of one captured frame."""
    eth, ip, icmp = frame.layer("Ethernet"), frame.layer("IPv4"), frame.layer("ICMP")
    assert eth is not None
    assert ip is not None
    return {
        "eth_src": eth.fields["src"],
        "eth_dst": eth.fields["dst"],
        "src": ip.fields["src"],
        "dst": ip.fields["dst"],
        "ttl": ip.fields["ttl"],
        "icmp": [icmp.fields["type"], icmp.fields["code"]] if icmp else None,
        "payload": frame.payload.decode("utf-8", "replace") if frame.layer("UDP") else "",
    }
