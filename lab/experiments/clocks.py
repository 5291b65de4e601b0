"""Whether a time taken by the driver and one taken in a lab host can be compared.

Every container shares its machine's kernel, and so its CLOCK_MONOTONIC: on one
Docker Engine (the test cluster's machines are containers too) the driver's
``time.monotonic()`` and a socket script's are one clock. Across real machines
(``ssh://``, ``tcp://``) each kernel counts from its own boot, and comparing the two
means nothing. A kernel is named by ``/proc/sys/kernel/random/boot_id``, which no
namespace changes: the same id is the same kernel, hence the same clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

BOOT_ID = "/proc/sys/kernel/random/boot_id"


def kernel_here() -> str:
    """The boot id of the kernel the driver runs on."""
    return Path(BOOT_ID).read_text().strip()


def strangers(here: str, there: Mapping[str, str]) -> list[str]:
    """The hosts whose kernel is not the driver's (their clocks cannot be compared)."""
    return sorted(host for host, boot_id in there.items() if boot_id.strip() != here.strip())


def refusal(what: str, hosts: list[str]) -> str:
    """One line saying why a timed claim is not judged across kernels."""
    return (
        f"{what} compares the driver's clock with {', '.join(hosts)}'s, which run on "
        "another kernel: their monotonic clocks count from different boots"
    )
