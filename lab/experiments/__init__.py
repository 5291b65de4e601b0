"""Experiments: the model every experiment follows, the built-in ones, and files of your own."""

from __future__ import annotations

from lab.experiments.builtin.cross_host import CrossHost
from lab.experiments.builtin.db_kill import DbKill
from lab.experiments.builtin.dispatch import Dispatch
from lab.experiments.builtin.failures import Failures
from lab.experiments.builtin.http_bytes import HttpBytes
from lab.experiments.builtin.impaired_delivery import ImpairedDelivery
from lab.experiments.builtin.journey import Journey
from lab.experiments.builtin.sockets import Sockets
from lab.experiments.builtin.tcp_vs_udp import TcpVsUdp
from lab.experiments.model import Experiment


def builtin() -> dict[str, Experiment]:
    """The experiments that ship with the lab, by name, in teaching order."""
    return {
        e.name: e
        for e in (
            Dispatch(),
            CrossHost(),
            TcpVsUdp(),
            HttpBytes(),
            Journey(),
            Failures(),
            DbKill(),
            ImpairedDelivery(),
            Sockets(),
        )
    }


EXPERIMENTS = builtin()
