"""cross-host: how a message gets from one host to another, and what each end sees."""

from __future__ import annotations

import ipaddress
import json

from lab.experiments.model import Claim, Context, Experiment, every, first, ip_of, rename
from lab.httpwire import RawResponse, WireError, split_responses
from lab.traffic import clients as send
from lab.traffic.clients import received
from services.probes.sockscript import Event


class CrossHost(Experiment):
    name = "cross-host"
    question = "How does a message get from one host to another, and what does each end see?"
    claims = (
        Claim("distinct-ips", "Every host has an IP address of its own on the lab network"),
        Claim(
            "dns-by-name",
            "The client finds tcp-shout by name through Docker's DNS, at shouthost's IP, "
            "and a TCP exchange crosses from the client host to shouthost",
        ),
        Claim(
            "two-hops",
            "One HTTP request to /kv/... makes two TCP connections: client to http, then "
            "http to db, and the db process sees the second one arrive",
        ),
        Claim(
            "peer-inside",
            "Inside the network nothing rewrites addresses: http sees the client's own IP",
        ),
        Claim(
            "publish-rewrites",
            "Through a published port on the Docker host, http sees the bridge gateway "
            "as the peer, not 127.0.0.1: publishing rewrites the source address",
        ),
    )

    def run(self, ctx: Context) -> dict[str, tuple[bool, str]]:
        topo = ctx.lab.topology
        states = ctx.lab.states()
        ips = {h: states[h].ip for h in topo.hosts if h in states}
        ctx.facts["hosts"] = ips
        subnet = ipaddress.ip_network(topo.subnet)
        findings: dict[str, tuple[bool, str]] = {}
        findings["distinct-ips"] = (
            len(set(ips.values())) == len(topo.hosts)
            and all(ipaddress.ip_address(ip) in subnet for ip in ips.values() if ip),
            ", ".join(f"{h} {ip}" for h, ip in ips.items()) + f" (network {subnet})",
        )

        events = ctx.on(
            "client",
            [
                {"op": "resolve", "host": "tcp-shout"},
                *rename(send.tcp_script("tcp-shout", 8080, "across"), "shout"),
                *rename(send.http_script("http", 80, "PUT", "/kv/cross-host", "hop"), "put"),
                *rename(send.http_script("http", 80, "GET", "/"), "whoami"),
            ],
        )
        resolved = next(e for e in events if e.op == "resolve")
        shout = first(events, "shout", "connect")
        reply = received(every(events, "shout", "recv_all"))
        findings["dns-by-name"] = (
            resolved.outcome == "ok"
            and resolved.data == ips.get("shouthost")
            and ip_of(shout.remote) == ips.get("shouthost")
            and ip_of(shout.local) == ips.get("client")
            and reply == b"ACROSS",
            f"tcp-shout resolved to {resolved.data} ({resolved.outcome}); "
            f"{shout.local} -> {shout.remote} answered {reply!r}",
        )

        put = first(events, "put", "connect")
        put_response = _one_response(every(events, "put", "recv_all"))
        db_local = put_response.headers.get("x-lab-db-local", "") if put_response else ""
        db_remote = put_response.headers.get("x-lab-db-remote", "") if put_response else ""
        db_saw = db_local != "" and f"connect {db_local}" in ctx.lab.logs("db")
        findings["two-hops"] = (
            put_response is not None
            and put_response.status == 200
            and ip_of(db_remote) == ips.get("apphost")
            and db_remote.endswith(":6379")
            and db_saw,
            f"hop 1: {put.local} -> {put.remote} (client to http); "
            f"hop 2: {db_local or '?'} -> {db_remote or '?'} (http to db), "
            + ("which db logged as a connect" if db_saw else "which db did not log"),
        )

        inside = _whoami(every(events, "whoami", "recv_all"))
        inside_peer = inside.get("peer", {}).get("ip")
        findings["peer-inside"] = (
            inside_peer == ips.get("client"),
            f"http saw the peer {inside_peer}; the client host is {ips.get('client')}",
        )

        port = ctx.lab.published_port("http", 80)
        outside_events = ctx.on_docker_host(
            rename(send.http_script("127.0.0.1", port, "GET", "/"), "published")
        )
        outside = _whoami(every(outside_events, "published", "recv_all"))
        outside_peer = outside.get("peer", {}).get("ip")
        gateway = ctx.lab.gateway()
        findings["publish-rewrites"] = (
            outside_peer is not None and outside_peer != "127.0.0.1" and outside_peer == gateway,
            f"sent from 127.0.0.1 to 127.0.0.1:{port}; http saw the peer {outside_peer} "
            f"(the network's gateway is {gateway})",
        )
        return findings


def _one_response(events: list[Event]) -> RawResponse | None:
    try:
        responses = split_responses(received(events))
    except WireError:
        return None
    return responses[0] if len(responses) == 1 else None


def _whoami(events: list[Event]) -> dict[str, dict[str, str]]:
    response = _one_response(events)
    if response is None or response.status != 200:
        return {}
    data: dict[str, dict[str, str]] = json.loads(response.body)
    return data
