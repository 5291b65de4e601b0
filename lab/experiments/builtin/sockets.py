"""sockets: a socket is a file descriptor; what system calls do to it, and the TCP states.

Everything is judged from two recorded kinds of observation, never from what the
lab's own scripts report: system calls, traced with strace (the client's and a
server script's sessions run under strace in their hosts; tcp-shout and
udp-shout are traced from a helper holding only CAP_SYS_PTRACE), and snapshots
of the hosts' socket tables read from /proc (every TCP and UDP socket, its
state, and the process and fd that hold it), each taken at a recorded moment.

The run, in four acts, with one client session and one server script on the
host of tcp-shout:

  descriptors   a fresh socket; three connections to tcp-shout held at once; two
                UDP sockets that each send udp-shout a datagram. Snapshot. The
                client closes its first connection. Snapshot.
  close-wait    the server script accepts a connection the client then closes,
                and never closes its end. Snapshot.
  restart       the server script (SO_REUSEADDR) closes a connection first, so its
                port waits in TIME_WAIT; its listener goes; a new socket binds the
                port without SO_REUSEADDR, then one with it.
  dead peer     a connection to tcp-shout; tcp-shout is killed (its host lives on):
                recv, snapshot, send, send, snapshot; then, tcp-shout back (snapshot),
                a send on the old socket, and a new socket.

A step that waits for the kernel reads the tables until the state awaited shows, to a
deadline, never for a fixed time (``sockets_facts.until_shown``).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from lab.experiments.builtin.sockets_facts import (
    Reading,
    Shown,
    calls_of,
    close_wait_shown,
    first,
    last_before,
    listed,
    ms,
    one,
    restart_shown,
    resting_on,
    reuse_set,
    rows_of,
    snapshot_time,
    time_wait_shown,
    until_shown,
    waited,
)
from lab.experiments.model import (
    Claim,
    Context,
    Experiment,
    Needs,
    Observations,
    Result,
    Verdicts,
)
from lab.services.probes.porttable import HostSocket
from lab.syscalls.strace import Syscall

if TYPE_CHECKING:
    from rich.console import RenderableType

SCRIPT_PORT = 9090  # the server script's port on tcp-shout's host (nothing else uses it)
CONNECTIONS = ("a", "b", "c")
ACCEPTS = ("accept", "accept4")
SCRIPT = "services.probes.sockscript"  # the lab's socket scripts, in the hosts' /proc


class Sockets(Experiment):
    name = "sockets"
    question = (
        "What is a socket, what do system calls do to it, and which states does a TCP "
        "connection pass through?"
    )
    needs = Needs(processes={"tcp-shout": ("8080/tcp",), "udp-shout": ("8080/udp",)})
    timeline = False  # the calls table below holds the socket events, between the calls
    claims = (
        Claim(
            "socket-is-fd",
            "socket() returns a file descriptor: the number it returns is the one "
            "/proc/<pid>/fd lists as that socket, before it has any address and once connected",
        ),
        Claim(
            "accept-new-fd",
            "accept() returns a new descriptor for each connection, while the listening "
            "socket keeps its own",
        ),
        Claim(
            "udp-one-fd",
            "A UDP server receives from and answers every peer on one and the same descriptor",
        ),
        Claim(
            "time-wait",
            "The side that closes first is left in TIME_WAIT, held by no process; the other "
            "side's entry is gone",
        ),
        Claim(
            "close-wait",
            "A peer that never closes is left in CLOSE_WAIT, its descriptor still open, while "
            "the side that closed waits in FIN_WAIT2",
        ),
        Claim(
            "dead-peer-fd",
            "A dead TCP peer's socket is a descriptor the client still holds: recv returns 0 "
            "(EOF), one send goes out, and the next fails with EPIPE",
        ),
        Claim(
            "reconnect",
            "The broken connection does not heal when the server is back: a send on the old "
            "descriptor still fails (EPIPE); a new connect() (here on a new socket) is answered",
        ),
        Claim(
            "reuseaddr",
            "A server restarted while its old connection sits in TIME_WAIT binds its port again "
            "only with SO_REUSEADDR (EADDRINUSE without it)",
        ),
    )

    # --- running --------------------------------------------------------------------

    def run(self, ctx: Context) -> None:
        lab = ctx.lab
        client = lab.topology.client.name
        server = lab.topology.processes["tcp-shout"].host
        server_ip, tcp_ip, udp_ip = ctx.ip(server), ctx.ip("tcp-shout"), ctx.ip("udp-shout")
        ctx.one_clock("the snapshots' times against the traced calls'", [client, server])
        ctx.facts.update(
            client=client,
            server=server,
            tcp_shout=f"{tcp_ip}:8080",
            udp_shout=f"{udp_ip}:8080",
            script_port=SCRIPT_PORT,
        )
        traces: dict[str, list[dict[str, Any]]] = {}
        snapshots: dict[str, dict[str, Any]] = {}
        waits: dict[str, dict[str, Any]] = {}
        ctx.facts["traces"] = traces
        ctx.facts["snapshots"] = snapshots
        ctx.facts["waits"] = waits

        def read(*hosts: str) -> dict[str, Any]:
            taken: dict[str, Any] = {"t": round(ctx.clock() - ctx.t0, 6)}
            for host in hosts:
                taken[host] = [asdict(r) for r in lab.host(host).sockets()]
            return taken

        def settle(name: str, want: str, shown: Shown, *hosts: str) -> Reading:
            """The last reading of ``hosts`` until ``want`` shows; how the wait ended kept."""
            taken, waits[name] = until_shown(lambda: read(*hosts), shown, want, ctx)
            return taken

        with (
            ctx.session(client, traced=True) as c,
            ctx.session(server, traced=True) as srv,
        ):
            with (
                lab.tracing("tcp-shout", ctx.t0) as tcp_trace,
                lab.tracing("udp-shout", ctx.t0) as udp_trace,
            ):
                c.step(op="socket", sock="fresh", type="tcp")
                local: dict[str, str] = {}  # each connection's address, as connect() saw it
                for name in CONNECTIONS:
                    c.step(op="socket", sock=name, type="tcp")
                    local[name] = c.step(op="connect", sock=name, host=tcp_ip, port=8080)[0].local
                for name in CONNECTIONS:
                    c.step(op="sendall", sock=name, data=f"hello {name}")
                    c.step(op="recv", sock=name)
                for name in ("u1", "u2"):
                    c.step(op="socket", sock=name, type="udp")
                    c.step(op="sendto", sock=name, host=udp_ip, port=8080, data=f"hi {name}")
                    c.step(op="recvfrom", sock=name)
                snapshots["held"] = read(client, server)
                c.step(op="close", sock="a")  # the client closes first
                snapshots["closed-first"] = settle(
                    "closed-first",
                    f"{client}'s {local['a']} in TIME_WAIT, and no entry for it on {server}",
                    lambda t: time_wait_shown(t, client, server, local["a"]),
                    client,
                    server,
                )
            traces["tcp-shout"] = [asdict(x) for x in tcp_trace.calls]
            traces["udp-shout"] = [asdict(x) for x in udp_trace.calls]

            # close-wait: the server script accepts, the client closes, the server never does.
            srv.step(op="socket", sock="old", type="tcp", reuseaddr=True)
            srv.step(op="bind", sock="old", host="0.0.0.0", port=SCRIPT_PORT)
            srv.step(op="listen", sock="old")
            c.step(op="socket", sock="d", type="tcp")
            local["d"] = c.step(op="connect", sock="d", host=server_ip, port=SCRIPT_PORT)[0].local
            srv.step(op="accept", sock="old", **{"as": "d"})
            c.step(op="close", sock="d")
            snapshots["close-wait"] = settle(
                "close-wait",
                f"the server script's end of {local['d']} in CLOSE_WAIT, {client}'s in FIN_WAIT2",
                lambda t: close_wait_shown(t, client, server, local["d"]),
                client,
                server,
            )
            srv.step(op="close", sock="d")

            # restart: the server closes first, its listener goes; its port is in TIME_WAIT.
            c.step(op="socket", sock="e", type="tcp")
            local["e"] = c.step(op="connect", sock="e", host=server_ip, port=SCRIPT_PORT)[0].local
            srv.step(op="accept", sock="old", **{"as": "e"})
            srv.step(op="close", sock="e")
            c.step(op="recv", sock="e")
            c.step(op="close", sock="e")
            srv.step(op="close", sock="old")
            snapshots["restart"] = settle(
                "restart",
                f"{server}'s end of {local['e']} in TIME_WAIT, and no listener on :{SCRIPT_PORT}",
                lambda t: restart_shown(t, server, local["e"], SCRIPT_PORT),
                server,
            )
            srv.step(op="socket", sock="plain", type="tcp")
            srv.step(op="bind", sock="plain", host="0.0.0.0", port=SCRIPT_PORT)
            srv.step(op="socket", sock="reuse", type="tcp", reuseaddr=True)
            srv.step(op="bind", sock="reuse", host="0.0.0.0", port=SCRIPT_PORT)
            srv.step(op="listen", sock="reuse")
            srv.step(op="close", sock="plain")
            srv.step(op="close", sock="reuse")

            # dead peer: the seed's BrokenPipeError, seen as system calls and states.
            c.step(op="socket", sock="f", type="tcp")
            local["f"] = c.step(op="connect", sock="f", host=tcp_ip, port=8080)[0].local
            c.step(op="sendall", sock="f", data="before")
            c.step(op="recv", sock="f")
            with lab.fault("kill", "tcp-shout"):
                settle(
                    "fin",
                    f"{client}'s {local['f']} in CLOSE_WAIT (a FIN from the killed tcp-shout)",
                    lambda t: bool(listed(t, client, local=local["f"], state="CLOSE_WAIT")),
                    client,
                )
                c.step(op="recv", sock="f")
                snapshots["peer-dead"] = read(client)
                c.step(op="send", sock="f", data="after")
                settle(
                    "reset",
                    f"{client}'s {local['f']} in no table (tcp-shout's kernel answered RST)",
                    lambda t: not listed(t, client, local=local["f"]),
                    client,
                )
                c.step(op="send", sock="f", data="again")
                snapshots["after-epipe"] = read(client)
            snapshots["server-back"] = read(server)  # tcp-shout restarted, healthy
            c.step(op="send", sock="f", data="still there?")
            c.step(op="socket", sock="g", type="tcp")
            c.step(op="connect", sock="g", host=tcp_ip, port=8080)
            c.step(op="sendall", sock="g", data="new socket")
            c.step(op="recv", sock="g")
        traces[client] = [asdict(x) for x in c.syscalls]
        traces[f"{server} (script)"] = [asdict(x) for x in srv.syscalls]

    # --- judging ----------------------------------------------------------------------

    def judge(self, seen: Observations) -> Verdicts:
        facts = seen.facts
        client, server = facts["client"], facts["server"]
        tcp_shout = facts["tcp_shout"]
        port = int(facts["script_port"])
        client_calls = calls_of(facts, client)
        script_calls = calls_of(facts, f"{server} (script)")
        tcp_calls, udp_calls = calls_of(facts, "tcp-shout"), calls_of(facts, "udp-shout")
        held_t = snapshot_time(facts, "held")
        v = Verdicts()

        def connections() -> list[HostSocket]:
            """The client script's connections to tcp-shout, as /proc showed them held."""
            rows = [
                r
                for r in rows_of(facts, "held", client)
                if r.protocol == "tcp" and r.remote == tcp_shout and SCRIPT in r.command
            ]
            if not rows:
                raise LookupError(f"no connection from {client} to {tcp_shout} was held")
            return rows

        @v.claim("socket-is-fd")
        def _() -> tuple[bool, str]:
            fresh = [
                r
                for r in rows_of(facts, "held", client)
                if not r.state and r.fd is not None and SCRIPT in r.command
            ]
            if len(fresh) != 1:
                return False, f"{len(fresh)} sockets with no address held in {client}, not 1"
            (row,) = fresh
            made = last_before(client_calls, held_t, "socket", new_fd=row.fd)
            used = [c for c in client_calls if c.fd == row.fd and made.t < c.t < held_t]
            conns = connections()
            linked = [
                (r.fd, last_before(client_calls, held_t, "socket", new_fd=r.fd)) for r in conns
            ]
            connected = all(
                any(
                    c.name == "connect" and c.fd == fd and c.peer == tcp_shout and c.t > made_.t
                    for c in client_calls
                )
                for fd, made_ in linked
            )
            return (
                made.new_fd == row.fd
                and row.pid is not None
                and not used
                and connected
                and len(conns) == len(CONNECTIONS),
                f"socket() returned {row.fd}; /proc/{row.pid}/fd/{row.fd} was a socket in no "
                f"table (no address yet). socket() returned "
                f"{', '.join(str(fd) for fd, _ in linked)} for the connections, and "
                f"/proc/{conns[0].pid}/fd showed those fds as its {len(conns)} ESTABLISHED "
                f"connections to {tcp_shout}",
            )

        @v.claim("accept-new-fd")
        def _() -> tuple[bool, str]:
            peers = {r.local for r in connections()}
            accepted = [c for c in tcp_calls if c.name in ACCEPTS and c.peer in peers]
            listening = {c.fd for c in accepted}
            new = [c.new_fd for c in accepted]
            server_rows = rows_of(facts, "held", server)
            listener = one(
                (r for r in server_rows if r.state == "LISTEN" and r.local.endswith(":8080")),
                "tcp-shout's listening socket",
            )
            conn_fds = sorted(
                r.fd
                for r in server_rows
                if r.state == "ESTABLISHED" and r.remote in peers and r.fd is not None
            )
            return (
                len(accepted) == len(peers) == len(set(new))
                and listening == {listener.fd}
                and listener.fd not in new
                and sorted(n for n in new if n is not None) == conn_fds
                and listener.service == "tcp-shout",
                f"accept on fd {', '.join(map(str, sorted(f for f in listening if f is not None)))}"
                f" returned fds {', '.join(map(str, new))} for {len(accepted)} connections; "
                f"/proc showed {listener.service or '?'}'s LISTEN socket still at fd "
                f"{listener.fd} and its connections at fds {', '.join(map(str, conn_fds))}",
            )

        @v.claim("udp-one-fd")
        def _() -> tuple[bool, str]:
            client_ip = seen.ip(client)
            ports = {
                r.local.rsplit(":", 1)[1]
                for r in rows_of(facts, "held", client)
                if r.protocol == "udp" and SCRIPT in r.command
            }
            ours = [
                c
                for c in udp_calls
                if c.name in ("recvfrom", "sendto", "recvmsg", "sendmsg")
                and c.peer.rsplit(":", 1)[0] == client_ip
                and c.peer.rsplit(":", 1)[1] in ports
            ]
            peers = {c.peer for c in ours}
            fds = {c.fd for c in ours}
            owned = [r for r in rows_of(facts, "held", server) if r.service == "udp-shout"]
            made = [c for c in udp_calls if c.name in ("socket", *ACCEPTS)]
            return (
                len(ports) >= 2
                and len(peers) == len(ports)
                and {c.name for c in ours} >= {"recvfrom", "sendto"}
                and len(fds) == 1
                and [r.fd for r in owned] == list(fds)
                and not made,
                f"udp-shout received from and answered {len(peers)} peers "
                f"({', '.join(sorted(peers))}) on fd(s) {', '.join(map(str, fds))}, and made "
                f"{len(made)} new sockets; /proc showed it holding {len(owned)} socket(s): "
                + ", ".join(f"{r.protocol} {r.local} at fd {r.fd}" for r in owned),
            )

        @v.claim("time-wait")
        @resting_on(facts, "closed-first")
        def _() -> tuple[bool, str]:
            by_fd = {r.fd: r for r in connections()}
            closed = first(
                (c for c in client_calls if c.name == "close" and c.t > held_t),
                f"close in {client} after the connections were held",
            )
            row = by_fd[closed.fd]  # KeyError: the first close was not of a connection
            accept = one(
                (c for c in tcp_calls if c.name in ACCEPTS and c.peer == row.local),
                f"tcp-shout's accept of {row.local}",
            )
            server_close = first(
                (
                    c
                    for c in tcp_calls
                    if c.name == "close" and c.fd == accept.new_fd and c.t > held_t
                ),
                f"close of fd {accept.new_fd} by tcp-shout",
            )
            after = rows_of(facts, "closed-first", client)
            mine = [r for r in after if r.local == row.local and r.remote == tcp_shout]
            theirs = [r for r in rows_of(facts, "closed-first", server) if r.remote == row.local]
            state = mine[0].state if mine else "no entry"
            return (
                closed.t < server_close.t
                and len(mine) == 1
                and state == "TIME_WAIT"
                and mine[0].pid is None
                and not theirs,
                f"{client} closed fd {closed.fd} ({row.local}) at {ms(closed.t)}, tcp-shout "
                f"closed its fd {accept.new_fd} at {ms(server_close.t)}; then {client}'s "
                f"{row.local} was {state}"
                + (f" ({mine[0].timer}, no process)" if mine and mine[0].timer else "")
                + f"; {server} had {len(theirs) or 'no'} entry for it",
            )

        @v.claim("close-wait")
        @resting_on(facts, "close-wait")
        def _() -> tuple[bool, str]:
            at = snapshot_time(facts, "close-wait")
            accept = first(
                (c for c in script_calls if c.name in ACCEPTS and c.new_fd is not None),
                "accept by the server script",
            )
            waiting = one(
                (
                    r
                    for r in rows_of(facts, "close-wait", server)
                    if r.local.endswith(f":{port}") and r.remote == accept.peer
                ),
                f"entry of the server script's connection from {accept.peer}",
            )
            closed_early = [
                c for c in script_calls if c.name == "close" and c.fd == accept.new_fd and c.t < at
            ]
            closer = [r for r in rows_of(facts, "close-wait", client) if r.local == waiting.remote]
            client_closed = [
                c for c in client_calls if c.name == "close" and c.t < at and c.t > accept.t
            ]
            closer_state = closer[0].state if closer else "no entry"
            return (
                waiting.state == "CLOSE_WAIT"
                and waiting.fd == accept.new_fd
                and waiting.pid is not None
                and not closed_early
                and closer_state == "FIN_WAIT2"
                and closer[0].pid is None
                and bool(client_closed),
                f"the server script's fd {waiting.fd} (accepted from {waiting.remote}, never "
                f"closed) was {waiting.state}, still held by pid {waiting.pid}; {client}'s end, "
                f"closed with close({client_closed[0].fd if client_closed else '?'}), was "
                f"{closer_state}, held by no process",
            )

        @v.claim("dead-peer-fd")
        @resting_on(facts, "fin", "reset")
        def _() -> tuple[bool, str]:
            at = snapshot_time(facts, "peer-dead")
            connects = [
                c for c in client_calls if c.name == "connect" and c.peer == tcp_shout and c.t < at
            ]
            if not connects:
                raise LookupError(f"no connect to {tcp_shout} before tcp-shout was killed")
            fd = connects[-1].fd  # the connection made last before the kill
            made = last_before(client_calls, at, "socket", fd)
            dead = one(
                (r for r in rows_of(facts, "peer-dead", client) if r.fd == fd),
                f"fd {fd} of {client}'s in /proc once tcp-shout was killed",
            )
            eof = first(
                (
                    c
                    for c in client_calls
                    if c.fd == fd and c.t > made.t and c.name in ("recvfrom", "recvmsg")
                    and c.result == 0
                ),
                f"recv returning 0 (EOF) on fd {fd}",
            )  # fmt: skip
            sends = [
                c
                for c in client_calls
                if c.fd == fd and c.t > eof.t and c.name in ("sendto", "sendmsg")
            ]
            gone = [r for r in rows_of(facts, "after-epipe", client) if r.fd == fd]
            gone_state = (gone[0].state or "held, in no table") if gone else "not held"
            first_send, next_send = [*sends, None, None][:2]
            return (
                eof.t < at
                and dead.state == "CLOSE_WAIT"
                and first_send is not None
                and (first_send.result or 0) > 0
                and next_send is not None
                and next_send.errno == "EPIPE"
                and len(gone) == 1
                and gone[0].state == ""
                and gone[0].pid is not None,
                f"recv on fd {fd} returned 0 (EOF) and /proc showed it {dead.state}; a send "
                f"returned {first_send.outcome if first_send else '-'}, the next "
                f"{next_send.outcome if next_send else '-'}; then fd {fd} was {gone_state}"
                + (f" (pid {gone[0].pid})" if gone else ""),
            )

        @v.claim("reconnect")
        def _() -> tuple[bool, str]:
            back = snapshot_time(facts, "server-back")
            listener = one(
                (
                    r
                    for r in rows_of(facts, "server-back", server)
                    if r.state == "LISTEN" and r.local.endswith(":8080")
                ),
                "tcp-shout's listening socket after its restart",
            )
            epipe = first((c for c in client_calls if c.errno == "EPIPE"), "send failing EPIPE")
            still = first(
                (
                    c
                    for c in client_calls
                    if c.name in ("sendto", "sendmsg") and c.fd == epipe.fd and c.t > back
                ),
                f"send on fd {epipe.fd} once tcp-shout was back",
            )
            fresh = first(
                (c for c in client_calls if c.name == "socket" and c.t > still.t),
                "a socket() after that send",
            )
            connect = first(
                (
                    c
                    for c in client_calls
                    if c.name == "connect" and c.fd == fresh.new_fd and c.t > fresh.t
                ),
                f"connect on the new fd {fresh.new_fd}",
            )
            answered = [
                c
                for c in client_calls
                if c.fd == fresh.new_fd
                and c.t > connect.t
                and c.name in ("recvfrom", "recvmsg")
                and (c.result or 0) > 0
            ]
            return (
                listener.pid is not None
                and still.errno == "EPIPE"
                and connect.errno in ("", "EINPROGRESS")
                and connect.peer == tcp_shout
                and bool(answered),
                f"with tcp-shout listening again (pid {listener.pid}, fd {listener.fd}), a send "
                f"on the old fd {still.fd}: {still.outcome}; socket() returned {fresh.new_fd}, "
                f"connect({fresh.new_fd}): {connect.outcome}, then recv on it "
                + (f"returned {answered[0].result} bytes" if answered else "got nothing"),
            )

        @v.claim("reuseaddr")
        @resting_on(facts, "restart")
        def _() -> tuple[bool, str]:
            at = snapshot_time(facts, "restart")
            rows = [r for r in rows_of(facts, "restart", server) if r.local.endswith(f":{port}")]
            waits = [r for r in rows if r.state == "TIME_WAIT" and r.pid is None]
            listening = [r for r in rows if r.state == "LISTEN"]
            binds = [c for c in script_calls if c.name == "bind" and c.peer.endswith(f":{port}")]
            old = first((b for b in binds if b.t < at), f"the old server's bind of :{port}")
            later = [b for b in binds if b.t > at]
            plain = [b for b in later if not reuse_set(script_calls, b)]
            reused = [b for b in later if reuse_set(script_calls, b)]
            return (
                bool(waits)
                and not listening
                and reuse_set(script_calls, old)
                and old.result == 0
                and len(plain) == 1
                and plain[0].errno == "EADDRINUSE"
                and len(reused) == 1
                and reused[0].result == 0,
                f"the old server set SO_REUSEADDR and its bind of :{port} returned "
                f"{old.outcome}; with {len(waits)} TIME_WAIT on :{port} and no listener, a new "
                f"socket's bind without it: {plain[0].outcome if plain else '-'}; with it: "
                f"{reused[0].outcome if reused else '-'}",
            )

        return v

    # --- showing ----------------------------------------------------------------------

    def tables(self, result: Result) -> list[RenderableType]:
        from lab.views import sockets as view

        facts = result.facts
        tables: list[RenderableType] = []
        for name, hosts in (("held", None), ("close-wait", None), ("restart", None)):
            snap = facts["snapshots"].get(name, {})
            for host in hosts or [h for h in snap if h != "t"]:
                rows = [HostSocket(**r) for r in snap[host] if not r["local"].startswith("127.")]
                title = f"{host} at {ms(float(snap['t']))} ({name}{waited(facts, name)})"
                tables.append(view.socket_table(title, rows))
        calls = [Syscall(**c) for trace in facts["traces"].values() for c in trace]
        tables.append(view.calls_table(calls, result.events, "system calls and socket events"))
        return tables
