"""What the topology declares beyond what Compose makes: routes and link impairments.

A host's ``socklab.routes`` (how to reach a network behind a router host) and
``socklab.link`` (an impairment on its link) live in its network namespace, which
Compose knows nothing about. They are put in place at `lab up`, again whenever
a host comes back with a new namespace or interface (started again, or
reconnected), and by `lab chaos restore`, which also takes away any impairment
set by hand since. A helper with CAP_NET_ADMIN does it; the hosts stay
unprivileged.
"""

from __future__ import annotations

from lab.backends.engine import Engine
from lab.chaos import impairment, links
from lab.engine import helpers
from lab.errors import HelperFailed, LinkError
from lab.progress import Progress, silent
from lab.topology import Host


def routes_script(host: Host) -> str:
    """``ip route replace`` for each declared route (replace: harmless when already there)."""
    return "\n".join(
        ["set -e", *(f"ip route replace {r.destination} via {r.via}" for r in host.routes)]
    )


def apply_routes(backend: Engine, host: Host) -> None:
    if not host.routes:
        return
    try:
        helpers.run(
            backend,
            "routes",
            helpers.Namespace.of_host(backend, host.name),
            ["sh", "-c", routes_script(host)],
            "NET_ADMIN",
        )
    except HelperFailed as exc:
        raise LinkError(f"adding {host.name}'s routes failed: {exc.what}") from None


def apply_link(backend: Engine, host: Host) -> str:
    """The declared impairment on ``host``'s link, or a clean link; which netem is at work."""
    if host.link:
        return links.apply(backend, host.name, impairment.parse(host.link.split()))
    links.reset(backend, host.name)
    return ""


def apply(backend: Engine, host_name: str, *, reset_link: bool = False) -> None:
    """Put one host's declared routes and link in place. ``reset_link``: also clear a link
    that declares nothing (a restore; a host that just came back is clean already)."""
    host = backend.topology.hosts[host_name]
    apply_routes(backend, host)
    if host.link or reset_link:
        apply_link(backend, host)


def apply_all(backend: Engine, progress: Progress = silent, *, reset_links: bool = False) -> None:
    for host in backend.topology.hosts.values():
        if host.routes:
            progress(f"{host.name}: routes {'; '.join(map(str, host.routes))}")
        if host.link:
            progress(f"{host.name}: link {host.link}")
        apply(backend, host.name, reset_link=reset_links)
