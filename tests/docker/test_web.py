"""`lab web` in a real browser (Debian's headless Chromium, driven by Selenium) against the real
lab: the page shows what `lab status` shows, sends, kills and restores, replays a recorded
run with no lab, and refuses requests without the token or from a foreign Host.
Screenshots go to test-artifacts/web/ (the README shows one of them)."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
)
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

import lab as socklab
from lab.backends.engine import Engine
from tests.conftest import sigint_as_default
from tests.docker.conftest import ENV, PROJECT, ROOT, run_lab_cli, until, wait_for

ARTIFACTS = ROOT / "test-artifacts" / "web"
RECORDED = ROOT / "tests" / "pure" / "fixtures" / "results" / "dispatch.json"


def start_web(*args: str) -> tuple[subprocess.Popen[str], str]:
    """`lab web` on a free port; its process and the address it printed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab", "-p", PROJECT, "web", "--port", "0", *args],
        cwd=ROOT,
        env={**os.environ, **ENV, "COLUMNS": "300"},
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=sigint_as_default,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 1.0)
        if ready:
            line = proc.stdout.readline()
            if "open http://" in line:
                return proc, line.split("open ", 1)[1].strip()
        if proc.poll() is not None:
            break
    proc.kill()
    pytest.fail(f"lab web did not print its address: {proc.stderr.read() if proc.stderr else ''}")


def stop_web(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out


@pytest.fixture(scope="module")
def page(net: socklab.Lab, browser: WebDriver) -> Iterator[WebDriver]:
    proc, address = start_web()
    browser.get(address)
    # The page draws the topology once its first state arrives: tests start from there.
    until(browser, "document.querySelectorAll('.process[data-process]').length > 0", "the topology")
    yield browser
    code, _ = stop_web(proc)
    assert code == 0


def shot(browser: WebDriver, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def click(browser: WebDriver, css: str, timeout: float = 10) -> None:
    """Click what ``css`` selects. The page redraws the topology on every state it is sent,
    so an element found may be replaced before the click lands: find it again until then."""

    def attempt(driver: WebDriver) -> bool:
        try:
            driver.find_element(By.CSS_SELECTOR, css).click()
        except (StaleElementReferenceException, NoSuchElementException):
            return False
        return True

    WebDriverWait(browser, timeout).until(attempt, message=f"clicking {css}")


def test_the_page_shows_hosts_addresses_and_port_owners_as_status_does(
    page: WebDriver, lab: Engine
) -> None:
    status = json.loads(run_lab_cli("-p", PROJECT, "status", "--json").stdout)
    until(page, "document.querySelectorAll('.host').length > 0", "the topology")
    for host in status:
        node = page.find_element(By.CSS_SELECTOR, f'.host[data-host="{host["host"]}"]')
        assert node.get_attribute("data-ip") == host["ip"]
        for row in host["ports"]:
            if row["pid"] and row["address"] != "127.0.0.11":
                selector = f'.port[data-host="{host["host"]}"][data-port="{row["protocol"]}/{row["port"]}"]'
                assert (
                    page.find_element(By.CSS_SELECTOR, selector).get_attribute("data-owner")
                    == row["service"]
                )
    shot(page, "topology")


def choose(page: WebDriver, element_id: str, value: str, timeout: float = 5.0) -> None:
    """Pick an option; the page rebuilds its menus when the lab changes (a process killed),
    so a menu found a moment ago may be gone: find it again, to a deadline."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            Select(page.find_element(By.ID, element_id)).select_by_value(value)
            return
        except StaleElementReferenceException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def send_from_page(page: WebDriver, target: str, words: str) -> str:
    choose(page, "send-target", target)
    choose(page, "send-origin", "client")
    box = page.find_element(By.ID, "send-words")
    box.clear()
    box.send_keys(words)
    page.execute_script("document.getElementById('send-reply').textContent = ''")
    page.find_element(By.ID, "send-button").click()
    until(
        page,
        "document.getElementById('send-reply').textContent.length > 0 && "
        "!document.getElementById('send-reply').textContent.startsWith('sending')",
        f"the answer of {target}",
    )
    return str(page.find_element(By.ID, "send-reply").text)


def test_a_tcp_message_sent_from_the_page_is_answered(page: WebDriver) -> None:
    assert send_from_page(page, "tcp-shout", "hello from the page") == "HELLO FROM THE PAGE"
    until(page, "document.querySelectorAll('#happenings li').length > 0", "the happenings log")
    logged = page.find_element(By.ID, "happenings").get_attribute("textContent") or ""
    assert "connect" in logged
    shot(page, "sent")


def test_killing_db_from_the_page_shows_it_down_and_what_a_client_then_sees(
    page: WebDriver, lab: Engine
) -> None:
    click(page, '.process[data-process="db"]')
    click(page, '#fault-buttons button[data-fault="kill"]')
    wait_for(lambda: lab.states()["db"].status == "exited", "db to be killed", timeout=30)
    killed_at = time.monotonic()
    until(
        page,
        "document.querySelector('.process[data-process=\"db\"]').classList.contains('down')",
        "db drawn as down",
        timeout=5,
    )
    assert time.monotonic() - killed_at < 3  # within a second or so of Docker saying so
    # The failure matrix: a process killed on a live host: a new connection is refused.
    assert "failed: connect: ECONNREFUSED" in send_from_page(page, "db", "PING")
    shot(page, "db-killed")
    page.find_element(By.ID, "restore-button").click()
    # Docker says "running" before db listens; the page says "restored" once the lab is
    # healthy again (restore waits for every healthcheck), and only then may PING answer.
    until(
        page,
        "document.getElementById('fault-result').textContent.startsWith('restored')",
        "the page to say the lab is restored",
        timeout=90,
    )
    until(
        page,
        "!document.querySelector('.process[data-process=\"db\"]').classList.contains('down')",
        "db back",
        timeout=5,
    )
    assert send_from_page(page, "db", "PING") == "PONG"


def test_the_seeds_broken_pipe_happens_on_the_page(page: WebDriver) -> None:
    hold = page.find_element(By.ID, "send-hold")
    if not hold.is_selected():
        hold.click()
    try:
        assert send_from_page(page, "tcp-shout", "ping") == "PING"
        click(page, '.process[data-process="tcp-shout"]')
        click(page, '#fault-buttons button[data-fault="kill"]')
        until(
            page,
            "document.querySelector('.process[data-process=\"tcp-shout\"]')"
            ".classList.contains('down')",
            "tcp-shout drawn as down",
        )
        # The seed: the dead server's FIN (EOF), then BrokenPipeError on the same socket.
        assert "failed: recv: eof" in send_from_page(page, "tcp-shout", "still there?")
        assert "failed: send: EPIPE" in send_from_page(page, "tcp-shout", "still there?")
        until(
            page,
            "[...document.querySelectorAll('#happenings li')].some(li => "
            "li.textContent.includes('EPIPE'))",
            "EPIPE in what happened",
        )
        # ...and said in words, in the live region a screen reader reads out.
        region = page.find_element(By.ID, "announce")
        assert (region.get_attribute("aria-live"), region.get_attribute("role")) == (
            "polite",
            "status",
        )
        said = until(
            page,
            "[...document.querySelectorAll('#announce p')].map(p => p.textContent)"
            ".find(t => t.includes('EPIPE'))",
            "EPIPE in the live region",
        )
        assert said == "client → shouthost:8080 send: EPIPE (BrokenPipeError)"
        assert len(page.find_elements(By.CSS_SELECTOR, "#announce p")) <= 5
        shot(page, "broken-pipe")
    finally:
        hold.click()
        page.find_element(By.ID, "release-button").click()
        page.find_element(By.ID, "restore-button").click()
    until(
        page,
        "!document.querySelector('.process[data-process=\"tcp-shout\"]').classList.contains('down')",
        "tcp-shout back",
        timeout=90,
    )


def test_ctrl_c_undoes_what_the_page_set(net: socklab.Lab, browser: WebDriver, lab: Engine) -> None:
    proc, address = start_web()
    try:
        browser.get(address)
        until(browser, "document.querySelectorAll('.process').length > 0", "the topology")
        click(browser, '.process[data-process="tcp-shout"]')
        click(browser, '#fault-buttons button[data-fault="pause"]')
        wait_for(lambda: lab.states()["tcp-shout"].status == "paused", "the pause", timeout=30)
    finally:
        code, out = stop_web(proc)
    assert code == 0, out
    assert lab.states()["tcp-shout"].status == "running"


def test_a_recorded_run_replays_with_no_lab(browser: WebDriver) -> None:
    proc, address = start_web("--replay-only", str(RECORDED))
    try:
        browser.get(address)
        until(browser, "document.getElementById('replay-select').options.length > 0", "results")
        browser.find_element(By.XPATH, "//summary[text()='Recorded runs']").click()
        Select(browser.find_element(By.ID, "replay-select")).select_by_index(0)
        Select(browser.find_element(By.ID, "replay-speed")).select_by_value("1")
        browser.find_element(By.ID, "replay-button").click()
        until(browser, "document.querySelectorAll('.host').length === 3", "the recorded hosts")
        until(
            browser,
            "[...document.querySelectorAll('#happenings li')].some(li => "
            "li.textContent.includes('ECONNREFUSED'))",
            "the recorded refusal",
            timeout=30,
        )
        assert "pick a recorded run" in browser.find_element(By.ID, "notice").text
        shot(browser, "replay")
    finally:
        code, _ = stop_web(proc)
    assert code == 0


def test_no_token_or_a_foreign_host_is_refused() -> None:
    proc, address = start_web("--replay-only")
    try:
        base, token = address.split("/?token=")

        def status(path: str, headers: dict[str, str]) -> int:
            request = urllib.request.Request(base + path, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return int(response.status)
            except urllib.error.HTTPError as exc:
                return exc.code

        assert status("/api/state", {"X-Lab-Token": token}) == 200
        assert status("/api/state", {}) == 403
        assert status("/api/state", {"X-Lab-Token": "guessed"}) == 403
        assert status("/", {}) == 403
        port = base.rsplit(":", 1)[1]
        assert status("/api/state", {"X-Lab-Token": token, "Host": f"evil.example:{port}"}) == 421
    finally:
        stop_web(proc)


def own_ipv4() -> set[str]:
    """This machine's IPv4 addresses but loopback ones, as `ip` lists them."""
    done = subprocess.run(["ip", "-j", "-4", "addr"], capture_output=True, text=True, check=True)
    return {
        a["local"]
        for link in json.loads(done.stdout)
        for a in link.get("addr_info", [])
        if not a["local"].startswith("127.")
    }


def test_bound_to_every_address_it_opens_through_this_machines_own() -> None:
    """`--bind 0.0.0.0`: it prints each of this machine's addresses (never 0.0.0.0), the
    page opens through each, and a foreign Host is still refused (421)."""
    before = own_ipv4()
    proc, address = start_web("--replay-only", "--bind", "0.0.0.0")
    try:
        after = own_ipv4()  # other labs' bridges may come and go meanwhile
        assert proc.stdout is not None
        printed = [address]
        for line in iter(proc.stdout.readline, ""):  # the lines that follow the first
            if line.startswith("  or http://"):
                printed.append(line.split()[1])
            if "Ctrl-C" in line:
                break
        base, token = address.split("/?token=")
        port = base.rsplit(":", 1)[1]

        def status(url: str, headers: dict[str, str]) -> int:
            request = urllib.request.Request(url, headers={"X-Lab-Token": token, **headers})
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return int(response.status)
            except urllib.error.HTTPError as exc:
                return exc.code

        for url in printed:
            assert status(url, {}) == 200, url
        assert status(address, {"Host": f"{socket.gethostname()}:{port}"}) == 200
        assert status(address, {"Host": f"evil.example:{port}"}) == 421
        assert status(f"http://127.0.0.1:{port}/", {}) == 200
    finally:
        stop_web(proc)
    hosts = {urllib.parse.urlsplit(url).hostname for url in printed}
    assert before & after <= hosts <= before | after, (printed, before, after)
    assert all(url.endswith(f":{port}/?token={token}") for url in printed), printed


def test_the_page_loads_nothing_from_elsewhere() -> None:
    static = Path(socklab.__file__).parent / "web" / "static"
    for path in static.iterdir():
        text = path.read_text().replace("http://www.w3.org/2000/svg", "")  # a name, not a load
        assert "http://" not in text
        assert "https://" not in text
        assert "//cdn" not in text


# --- stepping through a run, the layers panel, and the live region ---------------------


@pytest.fixture(scope="module")
def recorded_run(lab: Engine, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tcp-vs-udp run captured here, on the test lab: its result, the pcap beside it."""
    folder = tmp_path_factory.mktemp("stepped")
    done = run_lab_cli(
        "-p", PROJECT, "run", "tcp-vs-udp", "--capture", "--results", str(folder), timeout=600
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    [result] = folder.glob("tcp-vs-udp-*.json")
    assert result.with_suffix(".pcap").exists()
    return result


@pytest.fixture
def stepped(browser: WebDriver, recorded_run: Path) -> Iterator[WebDriver]:
    """`lab web --replay-only` serving the recorded run, the page open on it."""
    proc, address = start_web("--replay-only", str(recorded_run))
    try:
        browser.get(address)
        until(browser, "document.getElementById('replay-select').options.length > 0", "results")
        yield browser
    finally:
        code, _ = stop_web(proc)
    assert code == 0


def press(browser: WebDriver, *keys: str) -> None:
    """Keys as a person types them, to whatever has the focus."""
    ActionChains(browser).send_keys(*keys).perform()


def tab_to(browser: WebDriver, css: str, limit: int = 150) -> None:
    """Press Tab until what ``css`` selects has the focus: no mouse, no script focusing."""
    for _ in range(limit):
        if browser.execute_script("return document.activeElement.matches(arguments[0])", css):
            return
        press(browser, Keys.TAB)
    pytest.fail(f"{limit} presses of Tab never reached {css}")


def open_by_keyboard(browser: WebDriver) -> None:
    """Open the first recorded run with the keyboard alone: paused at its first step."""
    tab_to(browser, "details:has(#replay-select) > summary")
    press(browser, Keys.ENTER)  # opens "Recorded runs"
    tab_to(browser, "#replay-select")
    tab_to(browser, "#replay-button")
    press(browser, Keys.ENTER)
    until(browser, "!document.getElementById('stepper').classList.contains('hidden')", "steps")


def position(browser: WebDriver) -> str:
    return str(
        browser.execute_script("return document.getElementById('step-position').textContent")
    )


def expected_steps(result: Path) -> list[dict[str, Any]]:
    """The time line the page must step through: the server's own, read here."""
    from lab.web.replay import load, timeline

    return timeline(result, load(result))


def marked(browser: WebDriver) -> dict[str, Any]:
    """What the page marks as the current step: its row, its hop, the live region."""
    found: dict[str, Any] = browser.execute_script(
        """
        const row = document.querySelector('li.current');
        const hop = document.querySelector('#topology .hop');
        return {
          list: row && row.parentElement.id, step: row && row.dataset.step,
          frame: row && row.dataset.frame, current: row && row.getAttribute('aria-current'),
          marker: row && getComputedStyle(row, '::before').content,
          rows: document.querySelectorAll('li.current').length,
          hop: hop && [hop.dataset.step, hop.dataset.hopFrom, hop.dataset.hopTo],
          said: document.getElementById('announce').textContent,
          scrubber: document.getElementById('scrubber').value,
        };"""
    )
    return found


def test_a_recorded_run_is_stepped_forward_and_back_by_keyboard_alone(
    stepped: WebDriver, recorded_run: Path
) -> None:
    steps = expected_steps(recorded_run)
    n = len(steps)
    data = json.loads(recorded_run.read_text())
    assert n == len(data["events"]) + data["capture"]["frames"]  # tcp-vs-udp has no faults
    open_by_keyboard(stepped)
    assert position(stepped) == f"step 1 of {n}"
    assert stepped.execute_script("return document.activeElement.id") == "step-play"
    names = data["capture"]["names"]

    def holds_step(k: int) -> None:
        item = steps[k - 1]
        until(
            stepped,
            f"document.getElementById('step-position').textContent === 'step {k} of {n}'",
            f"step {k}",
        )
        seen = marked(stepped)
        assert seen["step"] == str(k)
        assert seen["rows"] == 1
        assert seen["current"] == "step"
        assert "now" in seen["marker"]  # a word beside the highlight, not a colour alone
        assert seen["scrubber"] == str(k)
        assert seen["said"].startswith(f"step {k} of {n}: ")
        if item["kind"] == "socket":
            e = item["event"]
            assert seen["list"] == "happenings"
            if e["remote"]:
                peer = names.get(e["remote"].rsplit(":", 1)[0])
                sender, receiver = (
                    (peer, e["host"]) if e["op"].startswith("recv") else (e["host"], peer)
                )
                assert seen["hop"] == [str(k), sender, receiver]
        else:
            assert seen["list"] == "frames"
            assert seen["frame"] == str(item["frame"]["number"])
            assert seen["hop"] == [str(k), item["frame"]["from"], item["frame"]["to"]]

    holds_step(1)
    for k in (2, 3, 4):
        press(stepped, Keys.ARROW_RIGHT)
        holds_step(k)
    press(stepped, Keys.ARROW_LEFT)
    holds_step(3)
    press(stepped, Keys.END)
    holds_step(n)
    press(stepped, Keys.HOME)
    holds_step(1)
    # Forward to the refused connect (a SYN to a port no one listens on), one step at a time.
    refused = next(
        i
        for i, s in enumerate(steps, 1)
        if s["kind"] == "socket" and s["event"]["outcome"] == "ECONNREFUSED"
    )
    for _ in range(2, refused + 1):
        press(stepped, Keys.ARROW_RIGHT)
    holds_step(refused)
    announced = marked(stepped)["said"]
    assert announced == f"step {refused} of {n}: client → shouthost:9 connect: ECONNREFUSED (RST)"
    assert "ECONNREFUSED" in str(
        stepped.execute_script("return document.querySelector('li.current').textContent")
    )
    # The time line is a range: it steps with the arrows of its own.
    tab_to(stepped, "#scrubber")
    press(stepped, Keys.ARROW_RIGHT)
    holds_step(refused + 1)
    # Space on the play button plays, and again pauses; said in words, not only shown.
    tab_to(stepped, "#step-play")
    press(stepped, Keys.SPACE)
    until(
        stepped,
        "document.getElementById('step-play').getAttribute('aria-pressed') === 'true'",
        "playing",
    )
    until(
        stepped,
        f"document.getElementById('step-position').textContent !== 'step {refused + 1} of {n}'",
        "a step played",
    )
    press(stepped, Keys.SPACE)
    until(
        stepped,
        "document.getElementById('step-play').getAttribute('aria-pressed') === 'false'",
        "paused",
    )
    assert "Play" in stepped.find_element(By.ID, "step-play").text
    shot(stepped, "stepped")


def cli_frame(pcap: Path, number: int) -> tuple[list[tuple[str, str]], list[str], dict[str, Any]]:
    """`socklab packets FILE --frame N`: its layers with their bytes, its hex lines; and the
    same frame from `--json`."""
    done = run_lab_cli("packets", str(pcap), "--frame", str(number), env={"COLUMNS": "300"})
    assert done.returncode == 0, done.stderr
    layers = [
        (m.group(1), m.group(2))
        for m in (re.match(r"^│ (\w+)\s+│\s+(\S+) │", line) for line in done.stdout.splitlines())
        if m
    ]
    hexlines = [
        line.strip() for line in done.stdout.splitlines() if re.match(r"^  [0-9a-f]{4}  ", line)
    ]
    listed = run_lab_cli("packets", str(pcap), "--json")
    assert listed.returncode == 0, listed.stderr
    frame = next(f for f in json.loads(listed.stdout) if f["number"] == number)
    return layers, hexlines, frame


# Fields whose bytes are a whole big-endian number: read back from the hex on the page.
WHOLE_NUMBERS = {"src_port", "dst_port", "seq", "ack", "window", "checksum", "ttl", "id", "length"}


def page_layers(browser: WebDriver) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = browser.execute_script(
        """return [...document.querySelectorAll('#layers .layer')].map(l => ({
          name: l.dataset.layer, span: l.dataset.span,
          fields: [...l.querySelectorAll(':scope > .field')].map(
            f => [f.dataset.field, f.dataset.value, f.dataset.span]),
        }));"""
    )
    return found


@pytest.mark.parametrize("which", ["udp", "syn-refused", "rst"])
def test_the_layers_panel_shows_what_socklab_packets_shows(
    stepped: WebDriver, recorded_run: Path, which: str
) -> None:
    pcap = recorded_run.with_suffix(".pcap")
    steps = expected_steps(recorded_run)
    frames = [s for s in steps if s["kind"] == "frame"]
    # (ARP may not be in the capture at all: the hosts' caches may hold the answer already.)
    pick = {
        "udp": lambda s: (
            s["frame"]["summary"].startswith("UDP")
            and s["detail"]["layers"][2]["fields"]["dst_port"] == 8080
        ),
        "syn-refused": lambda s: (
            s["frame"]["summary"] == "TCP [SYN]"
            and s["detail"]["layers"][2]["fields"]["dst_port"] == 9
        ),
        "rst": lambda s: (
            s["frame"]["summary"] == "TCP [RST, ACK]"
            and s["detail"]["layers"][2]["fields"]["src_port"] == 9
        ),
    }[which]
    item = next(s for s in frames if pick(s))
    number = item["frame"]["number"]
    k = steps.index(item) + 1
    open_by_keyboard(stepped)
    tab_to(stepped, "#step-goto")
    press(stepped, Keys.BACKSPACE * 6, str(k), Keys.ENTER)
    until(
        stepped,
        f"document.getElementById('inspect').dataset.frame === '{number}'",
        f"frame {number}",
    )
    assert position(stepped) == f"step {k} of {len(steps)}"
    layers, hexlines, frame = cli_frame(pcap, number)
    shown = page_layers(stepped)
    assert [(x["name"], x["span"]) for x in shown] == layers  # "Ethernet 0-13", "IPv4 14-33"...
    raw = bytes.fromhex(frame["hex"])
    for on_page, layer in zip(shown, frame["layers"], strict=True):
        assert {f: v for f, v, _ in on_page["fields"]} == {
            k: str(v) for k, v in layer["fields"].items()
        }
        for field, value, span in on_page["fields"]:
            start, end = layer["spans"][field]
            assert span == (f"{start}-{end - 1}" if end > start else "none")
            if field in WHOLE_NUMBERS and layer["name"] != "data":
                assert int.from_bytes(raw[start:end]) == int(value), (layer["name"], field)
    rows = stepped.execute_script(
        "return [...document.querySelectorAll('#hexdump .hexrow')].map(r => r.textContent)"
    )
    assert rows == hexlines  # the same bytes, 16 a line, "|" where a layer begins
    decision = stepped.find_element(By.ID, "decision").text
    if which == "syn-refused":
        assert decision == "Decision: shouthost's kernel: no socket on TCP 9 → RST"
        # A field chosen by keyboard: Tab into the layers, arrows down to the port.
        tab_to(stepped, "#layers .field")
        for _ in range(40):
            if stepped.execute_script("return document.activeElement.dataset.key") == "2|dst_port":
                break
            press(stepped, Keys.ARROW_DOWN)
        chosen = stepped.execute_script(
            "return [...document.querySelectorAll('#hexdump .byte.sel')].map(b => [Number(b.dataset.offset), b.textContent])"
        )
        assert [at for at, _ in chosen] == [36, 37]
        assert int("".join(text for _, text in chosen), 16) == 9
        info = stepped.find_element(By.ID, "field-info").text
        assert info.startswith("TCP dst_port = 9: bytes 36-37 (00 09)")
        shot(stepped, "layers")
    elif which == "rst":
        assert decision == "Decision: shouthost's kernel: no socket on TCP 9 → RST"
    else:
        assert (
            decision == "Decision: shouthost's kernel: UDP port 8080 → a bound socket (it answered)"
        )
