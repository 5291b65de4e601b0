"""Processes dying and coming back on a live host, and `down` leaving nothing behind.

Runs last in the Docker tier (file name), because it ends by taking the lab down.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from lab.backends.engine import Engine
from lab.traffic import clients as send
from tests.docker.conftest import wait_for


def http_get(lab: Engine, path: str) -> tuple[int, bytes]:
    url = f"http://127.0.0.1:{lab.published_port('http', 80)}{path}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def state(lab: Engine, service: str) -> str:
    s = lab.states()[service]
    return f"{s.status}/{s.health}"


def test_db_process_dies_but_its_host_and_http_live_on(lab: Engine) -> None:
    apphost_ip = lab.states()["apphost"].ip
    lab.container("db").kill()
    wait_for(lambda: lab.states()["db"].status == "exited", "db to exit")

    assert state(lab, "apphost") == "running/healthy"
    assert lab.states()["apphost"].ip == apphost_ip
    status, body = http_get(lab, "/")
    assert status == 200
    assert json.loads(body)["ip"] == apphost_ip  # same host, same IP, still answering
    status, body = http_get(lab, "/kv/anything")
    assert status == 503
    assert "db unreachable" in json.loads(body)["error"]
    listening = {(r.protocol, r.port) for r in lab.port_table("apphost")}
    assert ("tcp", 80) in listening
    assert ("tcp", 6379) not in listening  # the kernel closed the dead process's socket

    lab.container("db").start()
    wait_for(lambda: lab.states()["db"].ready, "db to be healthy again")
    assert http_get(lab, "/kv/anything")[0] == 404  # reachable again, and empty: in-memory


def test_restarted_process_comes_back_on_the_same_ip_and_port(lab: Engine) -> None:
    ip_before = lab.states()["shouthost"].ip
    lab.container("tcp-shout").restart(timeout=1)
    wait_for(lambda: lab.states()["tcp-shout"].ready, "tcp-shout to be healthy again")
    assert lab.states()["shouthost"].ip == ip_before
    events = lab.run_script("client", send.tcp_script("tcp-shout", 8080, "back"))
    assert (send.reply_text("tcp", events), send.failure(events)) == ("BACK", "")


def test_down_removes_every_container_network_and_volume(lab: Engine) -> None:
    before = lab.owned()
    assert len(before.containers) == len(lab.topology.services)
    assert before.networks == [f"{lab.topology.project}_{lab.topology.network}"]
    removed = lab.down()
    assert removed.containers == before.containers
    assert not lab.owned()
    assert lab.client.containers.list(all=True, filters={"name": lab.topology.project}) == []
