"""The experiments: each a question, its claims, and the traffic that tests them."""

from __future__ import annotations

from lab.experiments.builtin.cross_host import CrossHost
from lab.experiments.builtin.db_kill import DbKill
from lab.experiments.builtin.dispatch import Dispatch
from lab.experiments.builtin.failures import Failures
from lab.experiments.builtin.http_bytes import HttpBytes
from lab.experiments.builtin.impaired_delivery import ImpairedDelivery
from lab.experiments.builtin.tcp_vs_udp import TcpVsUdp
from lab.experiments.model import Experiment

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
