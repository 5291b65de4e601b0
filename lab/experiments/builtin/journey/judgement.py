"""Each step of the journey judged from what the run recorded (pure: saved results are
judged again the same way, and the tests feed it observations where a step must fail).

What a run records (``facts``):
  target       the process followed: process, host, name (what the client resolves),
               port, protocol, address (the host's own, on the network the client reaches)
  hosts_file   the client's /etc/hosts, and ``nsswitch``: its `hosts:` line
  ttl          the client's default IP time-to-live (/proc/sys/net/ipv4/ip_default_ttl)
  route        `ip route get ADDRESS` in the client: the next hop
  links        `ip -j addr` of every host: its addresses and MACs
  subnets      each lab network's subnet (a frame's place is a network's name)
  flushed      the next hop, and the client's neighbour table for it after the flush
  port_tables  the target host's port table before the request (host -> rows)
  server       the target process's pid, and its socket system calls (strace)
  frames       every frame captured: place, time, bytes
"""

from __future__ import annotations

import itertools
from typing import Any

from lab.experiments.builtin.journey import wire
from lab.experiments.model import Observations, Verdicts, ip_of
from lab.services.probes.sockscript import raw

CLIENT_SOCK = "c"


def listed(hosts_file: str, name: str) -> str:
    """The address /etc/hosts gives ``name`` ('' if it does not list it)."""
    for line in hosts_file.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) > 1 and name.lower() in (w.lower() for w in words[1:]):
            return words[0]
    return ""


def hosts_line(nsswitch: str) -> str:
    """The `hosts:` line of an /etc/nsswitch.conf ('' when there is none, as with musl)."""
    for line in nsswitch.splitlines():
        if line.split("#", 1)[0].strip().startswith("hosts:"):
            return line.split("#", 1)[0].strip()
    return ""


def files_first(nsswitch: str) -> bool:
    words = nsswitch.split()
    return "files" in words and ("dns" not in words or words.index("files") < words.index("dns"))


def judge(seen: Observations) -> Verdicts:
    facts = seen.facts
    target: dict[str, Any] = facts["target"]
    name, port = str(target["name"]), int(target["port"])
    frames = wire.frames_of(facts)
    connect = seen.events.first(CLIENT_SOCK, "connect")
    here, there = connect.local, connect.remote
    # The addresses the kernel used, not the topology's first ones: either end may be on
    # more than one network.
    client_ip, address = ip_of(here), ip_of(there)
    segments = wire.segments(frames, here, there) if here and there else []
    target_net = wire.network_of(address, facts["subnets"])
    client_net = wire.network_of(client_ip, facts["subnets"])
    on_target_net = [s for s in segments if s.place == target_net]
    macs = {ip: mac for links in facts["links"].values() for ip, mac in wire.macs(links).items()}
    v = Verdicts()

    @v.claim("name")
    def _() -> tuple[bool, str]:
        resolved = seen.events.first(CLIENT_SOCK, "resolve")
        got = resolved.data or ""
        lookups = [x for x in wire.dns_lookups(frames) if x.name.lower() == name.lower()]
        in_file = listed(facts["hosts_file"], name)
        owned = _addresses(facts, str(target["host"]))
        watched = f"lo of {seen.client}" in facts.get("captures", [])
        if in_file and files_first(facts["nsswitch"]):
            return (
                watched and not lookups and got == in_file == address and address in owned,
                f"/etc/hosts lists {name} at {in_file}; {len(lookups)} DNS queries for it "
                f"on the wire{'' if watched else ' (the client loopback was not captured)'}; "
                f"the client got {got or resolved.outcome}, connected to {there}",
            )
        answered = [x for x in lookups if x.answer is not None]
        said = sorted({a for x in answered for a in x.answer.addresses(name)})  # type: ignore[union-attr]
        return (
            bool(answered) and got in said and set(said) <= owned and got == address,
            f"{len(lookups)} DNS queries for {name} on the client's wire, "
            f"{len(answered)} answered with {', '.join(said) or 'no address'}; the client got "
            f"{got or resolved.outcome} and connected to {there}; {target['host']} has "
            f"{', '.join(sorted(owned)) or 'no address its kernel listed'}",
        )

    @v.claim("arp")
    def _() -> tuple[bool, str]:
        hop = wire.next_hop(facts["route"], address)
        since = float(facts["flushed"].get("t", float("-inf")))
        asked = wire.arp(frames, 1, client_ip, hop, since)
        told = wire.arp(frames, 2, hop, client_ip, since)
        syn = next((s for s in segments if s.flags == "SYN" and s.place == client_net), None)
        told_mac = str(told.frame.layer("ARP").fields["sender_mac"]) if told else ""  # type: ignore[union-attr]
        broadcast = asked is not None and (
            asked.frame.layer("Ethernet").fields["dst"] == wire.BROADCAST  # type: ignore[union-attr]
        )
        left = facts["flushed"]["after"]
        flushed = not any(word in left for word in ("REACHABLE", "STALE", "DELAY", "PERMANENT"))
        return (
            flushed
            and asked is not None
            and broadcast
            and told is not None
            and asked.t <= told.t
            and told_mac == macs.get(hop)
            and syn is not None
            and told.t <= syn.t
            and syn.mac_dst == told_mac,
            f"next hop {hop}: "
            + ("" if flushed else f"its neighbour entry was still there ({left}); ")
            + ("asked to all (broadcast)" if broadcast else "no ARP request to all")
            + (f"; {hop} answered {told_mac}" if told else "; no ARP reply")
            + f" (its MAC is {macs.get(hop, 'unknown')})"
            + (f"; the SYN went to {syn.mac_dst}" if syn else "; no SYN on the client's network"),
        )

    @v.claim("handshake")
    def _() -> tuple[bool, str]:
        syn = next((s for s in on_target_net if s.flags == "SYN" and s.src == here), None)
        synack = next((s for s in on_target_net if s.flags == "SYN, ACK" and s.src == there), None)
        ack = next(
            (s for s in on_target_net if s.flags == "ACK" and s.src == here and not s.payload),
            None,
        )
        data = next((s for s in on_target_net if s.payload), None)
        ok = (
            syn is not None
            and synack is not None
            and ack is not None
            and synack.ack == (syn.seq + 1) % 2**32
            and ack.ack == (synack.seq + 1) % 2**32
            and syn.t <= synack.t <= ack.t
            and (data is None or ack.t <= data.t)
        )
        found = [x.flags for x in (syn, synack, ack) if x is not None]
        return ok, f"{here} → {there} on {target_net or '?'}: {' / '.join(found) or 'nothing'}"

    @v.claim("request")
    def _() -> tuple[bool, str]:
        sent = b"".join(raw(e.data or "") for e in seen.events.every(CLIENT_SOCK, "sendall"))
        on_wire = wire.stream(on_target_net, here)
        reads = _server_reads(facts, here)
        count = sum(n for n, _, _ in reads)
        at, shown_match = 0, True
        for n, shown, cut in reads:  # strace shows each call's bytes, or its first ones
            whole = len(shown) == n or (cut and 0 < len(shown) < n)
            shown_match = shown_match and whole and on_wire[at : at + len(shown)] == shown
            at += n
        return (
            bool(sent) and on_wire == sent and count == len(on_wire) and shown_match,
            f"the client sent {len(sent)} bytes; {len(on_wire)} crossed to {there} "
            f"({'the same' if on_wire == sent else 'not the same'}); the process read "
            f"{count} in {len(reads)} call{'' if len(reads) == 1 else 's'}"
            + ("" if shown_match else ", not these bytes"),
        )

    @v.claim("process")
    def _() -> tuple[bool, str]:
        server = facts["server"]
        owner = next(
            (
                int(r["pid"])
                for r in facts["port_tables"][target["host"]]
                if str(r["protocol"]).startswith("tcp")
                and int(r["port"]) == port
                and r.get("pid") is not None
            ),
            None,
        )
        accepts = [
            c for c in server["calls"] if c["name"] in ("accept", "accept4") and _returned(c)
        ]
        mine = [c for c in accepts if c["peer"] == here]
        return (
            owner is not None and owner == server["pid"] and bool(mine),
            f"tcp/{port} on {target['host']} is owned by pid {owner}; {target['process']} "
            f"(pid {server['pid']}) accepted "
            + (f"fd {mine[0]['result']} from {here}" if mine else f"nothing from {here}"),
        )

    @v.claim("answer")
    def _() -> tuple[bool, str]:
        received = seen.events.received(CLIENT_SOCK)
        on_wire = wire.stream(on_target_net, there)
        return (
            bool(received) and on_wire == received,
            f"{len(on_wire)} bytes from {there} to {here} on the wire; the client received "
            f"{len(received)} ({'the same' if on_wire == received else 'not the same'})",
        )

    @v.claim("hops")
    def _() -> tuple[bool, str]:
        ends = (macs.get(client_ip, "?"), macs.get(address, "?"))
        return _hops(segments, here, int(facts["ttl"]), macs, facts["subnets"], ends)

    return v


def _returned(call: dict[str, Any]) -> bool:
    """A call that returned a descriptor (0 included) rather than failing."""
    return call["result"] is not None and int(call["result"]) >= 0


def _server_reads(facts: dict[str, Any], peer: str) -> list[tuple[int, bytes, bool]]:
    """What the target process read on the connection it accepted from ``peer`` (how
    many bytes each call returned, the ones strace showed, and whether it showed only the
    first ones). The descriptor
    counts from that accept until an accept returns its number for another peer; a
    thread or forked child that closed its copy reads no more on it, others still may."""
    out: list[tuple[int, bytes, bool]] = []
    tracked: set[int] = set()
    closed: set[tuple[int | None, int]] = set()
    for c in facts["server"]["calls"]:
        if c["name"] in ("accept", "accept4") and _returned(c):
            fd = int(c["result"])
            if c["peer"] == peer:
                tracked.add(fd)
                closed = {(p, f) for p, f in closed if f != fd}
            else:
                tracked.discard(fd)
            continue
        if c["fd"] not in tracked or (c["pid"], c["fd"]) in closed:
            continue
        if c["name"] == "close":
            closed.add((c["pid"], c["fd"]))
        elif c["name"] in ("read", "recvfrom", "recv", "recvmsg") and (c["result"] or 0) > 0:
            shown = (c["data"] or "").encode("utf-8", "surrogateescape")
            out.append((int(c["result"]), shown, bool(c.get("truncated"))))
    return out


def _addresses(facts: dict[str, Any], host: str) -> set[str]:
    """A host's IPv4 addresses as its own kernel listed them, loopback aside."""
    return {ip for ip in wire.macs(facts["links"].get(host, [])) if not ip.startswith("127.")}


def _hops(
    segments: list[wire.Segment],
    here: str,
    ttl: int,
    macs: dict[str, str],
    subnets: dict[str, str],
    ends: tuple[str, str],
) -> tuple[bool, str]:
    """The SYN, network by network: the TTL one less after each router, new MACs on each
    network, the IP addresses as they were."""
    syns = [s for s in segments if s.flags == "SYN" and s.src == here]
    if not syns:
        return False, "no SYN was captured on any network"
    # One IP packet, as each network saw it: the first SYN and its copies with the same IP
    # id (a retransmitted SYN is another packet, with another id: not another hop).
    first: dict[str, wire.Segment] = {}
    for s in syns:
        if s.ip_id == syns[0].ip_id:
            first.setdefault(s.place, s)
    copies = sorted(first.values(), key=lambda s: -s.ttl)
    owner = {mac: ip for ip, mac in macs.items()}
    problems = []
    if copies[0].ttl != ttl:
        problems.append(f"it left with TTL {copies[0].ttl}, not the client's {ttl}")
    if copies[0].mac_src != ends[0]:
        problems.append(f"it left from {copies[0].mac_src}, not the client's {ends[0]}")
    if copies[-1].mac_dst != ends[1]:
        problems.append(f"it arrived at {copies[-1].mac_dst}, not the target's {ends[1]}")
    for before, after in itertools.pairwise(copies):
        if after.ttl != before.ttl - 1:
            problems.append(f"TTL {before.ttl} on {before.place} but {after.ttl} on {after.place}")
        if after.mac_src == before.mac_src or after.mac_dst == before.mac_dst:
            problems.append(f"the MACs did not change from {before.place} to {after.place}")
        router = owner.get(after.mac_src, "")
        if not router or wire.network_of(router, subnets) != after.place:
            problems.append(f"{after.mac_src} on {after.place} is no router's interface there")
    if len({(s.src, s.dst, s.ip_id) for s in copies}) != 1:
        problems.append("the IP addresses or the IP id changed on the way")
    path = "; ".join(f"{s.place}: TTL {s.ttl}, {s.mac_src} → {s.mac_dst}" for s in copies)
    routers = len(copies) - 1
    return not problems, f"{routers} router(s) on the way. {path}" + (
        f". But {'; '.join(problems)}" if problems else ""
    )
