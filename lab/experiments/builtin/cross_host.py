"""cross-host: how a message gets from one host to another, and what each end sees."""

from __future__ import annotations

import ipaddress
import json
import time

from lab.experiments.model import (
    Claim,
    Context,
    Experiment,
    Needs,
    Observations,
    Verdicts,
    ip_of,
)
from lab.services.protocols.http11 import RawResponse, WireError, split_responses
from lab.traffic import clients
from lab.traffic.script import Events, Script


class CrossHost(Experiment):
    name = "cross-host"
    question = "How does a message get from one host to another, and what does each end see?"
    needs = Needs(
        processes={"http": ("80/tcp",), "db": ("6379/tcp",), "tcp-shout": ("8080/tcp",)},
        hosts=("apphost", "shouthost"),
    )
    claims = (
        Claim(
            "distinct-ips",
            "The client, apphost and shouthost each have an IP address of their own on the "
            "lab network: http's accept() sees each one's connection come from a different "
            "address in the network's subnet, the one Docker gave that host",
        ),
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

    def run(self, ctx: Context) -> None:
        lab = ctx.lab
        ctx.facts["hosts"] = {h: s.ip for h, s in lab.states().items() if h in lab.topology.hosts}
        ctx.facts["subnet"] = lab.topology.subnet
        since = time.time() - 1  # db's log from here on: the lines this run caused
        client = Script().resolve("tcp-shout")
        client.extend(clients.tcp_script("tcp-shout", 8080, "across"), rename="shout")
        client.extend(clients.http_script("http", 80, "PUT", "/kv/cross-host", "hop"), rename="put")
        client.extend(clients.http_script("http", 80, "GET", "/"), rename="whoami")
        # Each host, http's own included, asks http who it is: the peer its accept() saw.
        for host in _asking(lab.topology.client.name, self.needs.hosts):
            asks = clients.http_script("http", 80, "GET", "/")
            if host == lab.topology.client.name:
                client.extend(asks, rename=f"from-{host}")
            else:
                ctx.on(host, Script().extend(asks, rename=f"from-{host}"))
        ctx.on(lab.topology.client.name, client)
        ctx.facts["db_log"] = lab.process("db").logs(since=since).splitlines()
        port = lab.published_port("http", 80)
        ctx.on_docker_host(
            Script().extend(clients.http_script("127.0.0.1", port, "GET", "/"), rename="published")
        )
        ctx.facts["gateway"] = lab.gateway()

    def judge(self, seen: Observations) -> Verdicts:
        events, facts = seen.events, seen.facts
        ips: dict[str, str] = facts["hosts"]
        client = ips.get(seen.client)
        v = Verdicts()

        @v.claim("distinct-ips")
        def _() -> tuple[bool, str]:
            # Not Docker's word for the addresses (compose.yaml fixes them): what the peer saw.
            subnet = ipaddress.ip_network(facts["subnet"])
            saw = {
                h: _whoami(events.of(f"from-{h}")).get("peer", {}).get("ip")
                for h in _asking(seen.client, self.needs.hosts)
            }
            return (
                len(set(saw.values())) == len(saw)
                and all(ip and ipaddress.ip_address(ip) in subnet for ip in saw.values())
                and all(ip == ips.get(h) for h, ip in saw.items()),
                "http's accept() saw "
                + ", ".join(f"{h} from {ip or 'nowhere'}" for h, ip in saw.items())
                + f" (network {subnet}; Docker gave "
                + ", ".join(f"{h} {ips.get(h, '?')}" for h in saw)
                + ")",
            )

        @v.claim("dns-by-name")
        def _() -> tuple[bool, str]:
            resolved = next(e for e in events if e.op == "resolve")
            shout = events.first("shout", "connect")
            reply = events.received("shout")
            return (
                resolved.outcome == "ok"
                and resolved.data == ips.get("shouthost")
                and ip_of(shout.remote) == ips.get("shouthost")
                and ip_of(shout.local) == client
                and reply == b"ACROSS",
                f"tcp-shout resolved to {resolved.data} ({resolved.outcome}); "
                f"{shout.local} -> {shout.remote} answered {reply!r}",
            )

        @v.claim("two-hops")
        def _() -> tuple[bool, str]:
            put = events.first("put", "connect")
            response = _one_response(events.of("put"))
            db_local = response.headers.get("x-lab-db-local", "") if response else ""
            db_remote = response.headers.get("x-lab-db-remote", "") if response else ""
            # The very connection http reported, arriving at db: db logs each as
            # "connect PEER", PEER being http's end of it (db_local).
            arrived = [line for line in facts["db_log"] if line.endswith(f" connect {db_local}")]
            return (
                response is not None
                and response.status == 200
                and ip_of(db_remote) == ips.get("apphost")
                and db_remote.endswith(":6379")
                and bool(db_local)
                and len(arrived) == 1,
                f"hop 1: {put.local} -> {put.remote} (client to http); "
                f"hop 2: {db_local or '?'} -> {db_remote or '?'} (http to db), "
                + (f"which db logged: {arrived[0]!r}" if arrived else "which db did not log"),
            )

        @v.claim("peer-inside")
        def _() -> tuple[bool, str]:
            peer = _whoami(events.of("whoami")).get("peer", {}).get("ip")
            return peer == client, f"http saw the peer {peer}; the client host is {client}"

        @v.claim("publish-rewrites")
        def _() -> tuple[bool, str]:
            sent = events.first("published", "connect")
            peer = _whoami(events.of("published")).get("peer", {}).get("ip")
            gateway = facts["gateway"]
            return (
                peer is not None and peer != "127.0.0.1" and peer == gateway,
                f"sent from {sent.local} to {sent.remote}; http saw the peer {peer} "
                f"(the network's gateway is {gateway})",
            )

        return v


def _asking(client: str, hosts: tuple[str, ...]) -> list[str]:
    """The hosts that ask http for the peer it sees: the client and the needed hosts."""
    return [client, *(h for h in hosts if h != client)]


def _one_response(events: Events) -> RawResponse | None:
    try:
        responses = split_responses(events.received())
    except WireError:
        return None
    return responses[0] if len(responses) == 1 else None


def _whoami(events: Events) -> dict[str, dict[str, str]]:
    response = _one_response(events)
    if response is None or response.status != 200:
        return {}
    data: dict[str, dict[str, str]] = json.loads(response.body)
    return data
