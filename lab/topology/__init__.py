"""The topology: what the Compose files say the lab is (see ``model`` for the lab's labels)."""

from __future__ import annotations

from lab.topology.model import (
    PROTOCOLS,
    Endpoint,
    Host,
    Interface,
    Network,
    Port,
    Process,
    PublishedPort,
    Route,
    Topology,
    from_config,
)

__all__ = [
    "PROTOCOLS",
    "Endpoint",
    "Host",
    "Interface",
    "Network",
    "Port",
    "Process",
    "PublishedPort",
    "Route",
    "Topology",
    "from_config",
]
