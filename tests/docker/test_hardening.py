"""Every container of the lab, read back through the Docker API: least privilege, really applied."""

from __future__ import annotations

from typing import Any

import pytest

from lab.backends.engine import Engine
from lab.engine import hardening, helpers


@pytest.fixture
def containers(lab: Engine) -> dict[str, dict[str, Any]]:
    found = {name: c.attrs for name, c in lab.containers().items()}
    assert set(found) == set(lab.topology.services)
    return found


def test_no_container_runs_as_root_or_can_write_or_escalate(
    lab: Engine,
    containers: dict[str, dict[str, Any]],
) -> None:
    for name, attrs in containers.items():
        host_config, config = attrs["HostConfig"], attrs["Config"]
        assert config["User"] == "10001:10001", name
        assert host_config["ReadonlyRootfs"] is True, name
        assert host_config["CapDrop"] == ["ALL"], name
        assert not host_config["CapAdd"], name
        assert "no-new-privileges:true" in host_config["SecurityOpt"], name
        assert host_config["Privileged"] is False, name
        assert 0 < host_config["PidsLimit"] <= 1024, name
        assert 0 < host_config["Memory"] <= 1024**3, name


def test_every_process_really_runs_unprivileged(lab: Engine) -> None:
    for name in lab.topology.services:
        top = lab.container(name).top(ps_args="-o pid,uid,comm")  # Docker needs the PID column
        uids = {row[top["Titles"].index("UID")] for row in top["Processes"]}
        assert uids == {"10001"}, f"{name}: {top['Processes']}"


def test_published_ports_listen_on_loopback_only(containers: dict[str, dict[str, Any]]) -> None:
    published = [
        binding
        for attrs in containers.values()
        for bindings in (attrs["NetworkSettings"].get("Ports") or {}).values()
        for binding in bindings or []
    ]
    assert len(published) == 4
    assert {b["HostIp"] for b in published} == {"127.0.0.1"}


def test_root_filesystem_refuses_writes(lab: Engine) -> None:
    out = lab.run_in("db", ["sh", "-c", "touch /opt/lab/x 2>&1 || true"])
    assert b"Read-only file system" in out


def test_every_container_the_driver_creates_is_hardened_as_its_profile(lab: Engine) -> None:
    """Each kind the driver starts through the engine's API (a helper with no capability,
    one granted a capability, a companion process with a data volume), read back from
    the engine and held to its profile in lab/engine/hardening.py. The Swarm's anchors
    are read back in the cluster tier."""
    client = lab.topology.client.name
    where = helpers.Namespace.of_host(lab, client)
    argv = ["sleep", "60"]
    made = [
        (helpers.start(lab, "hardening-check", where, argv, None), hardening.helper()),
        (
            helpers.start(lab, "hardening-check", where, argv, "NET_ADMIN"),
            hardening.helper("NET_ADMIN"),
        ),
        (
            helpers.start_process(
                lab,
                client,
                f"{lab.topology.project}-hardening-check",
                argv,
                "hardening-check",
                data_volume=True,
            ),
            hardening.PROCESS,
        ),
    ]
    try:
        for helper, profile in made:
            attrs = helper.inspect()
            assert attrs["HostConfig"]["Privileged"] is False, helper.name
            differences = profile.differences(attrs["HostConfig"], attrs["Config"]["User"])
            assert differences == [], f"{helper.name} ({profile.kind}): {differences}"
        # and a profile that is not its own is told apart: the check can fail
        plain, granted = made[0][0].inspect(), made[1][0].inspect()
        assert hardening.helper().differences(granted["HostConfig"], granted["Config"]["User"])
        assert hardening.PROCESS.differences(plain["HostConfig"], plain["Config"]["User"])
    finally:
        for helper, _ in made:
            helper.remove()
