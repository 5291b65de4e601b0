"""The experiments: each a question, its claims, and the traffic that tests them."""

from __future__ import annotations

from lab.experiments.cross_host import CrossHost
from lab.experiments.db_kill import DbKill
from lab.experiments.dispatch import Dispatch
from lab.experiments.failures import Failures
from lab.experiments.http_bytes import HttpBytes
from lab.experiments.impaired_delivery import ImpairedDelivery
from lab.experiments.model import Experiment
from lab.experiments.tcp_vs_udp import TcpVsUdp

EXPERIMENTS: dict[str, Experiment] = {
    e.name: e
    for e in (
        Dispatch(),
        CrossHost(),
        TcpVsUdp(),
        HttpBytes(),
        Failures(),
        DbKill(),
        ImpairedDelivery(),
    )
}
