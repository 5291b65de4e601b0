"""db-kill: what does an acknowledgement promise when db dies mid-write, or the power goes?

A writer on the client host sets numbered keys as fast as one connection
allows, counting only the writes db acknowledged. Two kinds of death, once per
appendfsync policy (always, everysec, no):

- **process kill**: the db process is SIGKILLed at seeded moments and started
  again (replaying its append-only log). The kernel already holds every byte db
  wrote, so nothing acknowledged is lost, whatever the policy.
- **power loss**: a copy of db whose /data is a filesystem that can lose power
  (``lab.chaos.lazyfs``: unsynced writes live in memory until fsync) is killed
  and, at the same moment, every unsynced byte is thrown away, as a machine
  losing power would. Then fsync is what matters: `always` loses nothing,
  `everysec` at most about the last second, `no` everything since it last synced.

Afterwards every acknowledged key is looked for. Then a torn record is appended
to the log, as a death in the middle of a write would leave it, and db must drop
it on start.
"""

from __future__ import annotations

import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.chaos import powerloss
from lab.errors import ExperimentError, TimedOut
from lab.experiments.model import (
    Claim,
    Context,
    Experiment,
    Needs,
    Observations,
    Result,
    Verdicts,
)
from lab.interrupts import ctrl_c_ignored
from lab.services.protocols.resp import parse_reply
from lab.traffic import clients as send
from lab.traffic.clients import received

if TYPE_CHECKING:
    from lab.packets.dissect import Frame

POLICIES = ("always", "everysec", "no")
VOLATILE_PORT = 6390  # where the copy of db on the volatile disk listens, on db's host
POWER_CUT_AT = 3.0  # seconds into it at least: more than everysec's second since any fsync
FSYNC_WAIT_S = 1.5  # longer than everysec's period: no fsync by then means none is coming
AFTER_FSYNC_S = 0.5  # the cut falls this long after an fsync (everysec: mid-period)
# everysec's fsync runs once a second; its loss must stay within this
EVERYSEC_BOUND_S = 1.5
# The writer's run against it: on past the latest the power can go, so it is writing then.
POWER_WRITE_S = POWER_CUT_AT + FSYNC_WAIT_S + AFTER_FSYNC_S + 1.0
TORN = "*3\\r\\n$3\\r\\nSET\\r\\n$4\\r\\ntorn"  # printf text: a SET cut off mid-key


def _unless(stop: threading.Event, wait: float = 0.0) -> bool:
    """Wait ``wait`` seconds, unless ``stop`` is set first: then ExperimentError."""
    if stop.wait(wait):
        raise ExperimentError("the power-loss rows stopped: the kills beside them ended")
    return False


class DbKill(Experiment):
    name = "db-kill"
    needs = Needs(processes={"db": ("6379/tcp",)})
    question = "What does an acknowledgement promise when db dies mid-write, or the power goes?"
    timeline = False  # a writer's thousands of writes: the checks and the picture tell it

    def __init__(
        self,
        kills: int = 4,
        seconds_per_kill: float = 1.5,
        seed: int = 1,
        *,
        unsafe_always: bool = False,
        policies: tuple[str, ...] = POLICIES,
    ) -> None:
        """``unsafe_always``: run the power-loss copy of db with a deliberately wrong
        `always` that acknowledges before fsync, to see the claim fail. ``policies``: the
        appendfsync policies to run (all three by default; the claims follow)."""
        self.kills = kills
        self.seconds_per_kill = seconds_per_kill
        self.seed = seed
        self.unsafe_always = unsafe_always
        self.policies = policies
        every = (
            Claim(
                "fsync-always",
                f"appendfsync always: every acknowledged write survives {kills} SIGKILLs "
                "(written and fsynced before the reply)",
            ),
            Claim(
                "fsync-everysec",
                "appendfsync everysec: a process kill loses no acknowledged write either: "
                "the bytes were handed to the kernel before the reply; only a machine crash "
                "could lose the last second",
            ),
            Claim(
                "fsync-no",
                "appendfsync no: the same for a process kill; without fsync the loss would "
                "come with a power cut, which a container cannot simulate",
            ),
            Claim(
                "power-always",
                "After a power loss (db killed, every unsynced byte dropped), appendfsync "
                "always has lost no acknowledged write: each was fsynced before its reply "
                "(the filesystem counted the fsyncs)",
            ),
            Claim(
                "power-everysec",
                f"appendfsync everysec loses at most about the last second: every write lost "
                f"to the power cut was acknowledged less than {EVERYSEC_BOUND_S:g} s before it",
            ),
            Claim(
                "power-no",
                "appendfsync no can lose much more: writes acknowledged well over a second "
                "before the power cut are gone (nothing fsynced them)",
            ),
            Claim(
                "torn-record",
                "A record torn by a crash mid-write is detected on start and dropped, "
                "never replayed as garbage",
            ),
        )
        self.claims = tuple(
            c for c in every if c.id.split("-")[-1] in policies or c.id == "torn-record"
        )

    def run(self, ctx: Context) -> None:
        rng = random.Random(self.seed)
        # before any kill, not after the kill rows have run
        powerloss.check_possible(ctx.lab.backend)
        ctx.facts["kills_planned"] = self.kills
        # The power-loss rows use copies of db of their own (their own port, their own
        # disk), so they run beside the kills of the lab's db rather than after them: the
        # experiment takes as long as the longer of the two, and no window is shortened.
        stop = threading.Event()  # set when the kills fail or Ctrl-C: no next power row
        with ThreadPoolExecutor(max_workers=1) as pool:
            power = pool.submit(self._power_losses, ctx, stop)
            try:
                ctx.facts["runs"] = {
                    policy: self._writes_through_kills(ctx, policy, rng) for policy in self.policies
                }
                ctx.facts["torn"] = self._torn_record(ctx)
            except BaseException:
                stop.set()  # the power row under way stops at its next wait and cleans up
                with ctrl_c_ignored(), suppress(Exception):
                    power.result()  # (the first error is the one that counts)
                # A Ctrl-C between a kill and its start left db down (seen in CI): mended.
                with ctrl_c_ignored(), suppress(Exception):
                    ctx.lab.restore()
                raise
            ctx.facts["power"] = power.result()

    def judge(self, seen: Observations) -> Verdicts:
        runs, planned = seen.facts["runs"], seen.facts["kills_planned"]
        v = Verdicts()
        for policy in runs:

            @v.claim(f"fsync-{policy}")
            def _(policy: str = policy) -> tuple[bool, str]:
                outcome = runs[policy]
                return (
                    outcome["lost"] == 0 and outcome["acked"] > 0 and outcome["kills"] == planned,
                    f"{outcome['acked']} writes acknowledged through {outcome['kills']} kills "
                    f"({outcome['broken']} broken connections); {outcome['lost']} of them "
                    f"missing afterwards",
                )

        power = seen.facts["power"]

        def loss(policy: str) -> str:
            p = power[policy]
            window = f", acknowledged up to {p['window_s']:.2f} s before it" if p["lost"] else ""
            return (
                f"{policy}: {p['lost']} of {p['acked_before']} acknowledged writes lost to the "
                f"power cut{window}; {p['fsyncs']} fsyncs reached the disk"
            )

        @v.claim("power-always")
        def _() -> tuple[bool, str]:
            p = power["always"]
            return p["acked_before"] > 0 and p["lost"] == 0 and p["fsyncs"] > 0, loss("always")

        @v.claim("power-everysec")
        def _() -> tuple[bool, str]:
            p = power["everysec"]
            return (
                p["acked_before"] > 0 and p["window_s"] < EVERYSEC_BOUND_S,
                loss("everysec"),
            )

        @v.claim("power-no")
        def _() -> tuple[bool, str]:
            p = power["no"]
            return p["lost"] > 0 and p["window_s"] >= EVERYSEC_BOUND_S, loss("no")

        @v.claim("torn-record")
        def _() -> tuple[bool, str]:
            torn = seen.facts["torn"]
            dropped = "dropped a torn tail of" in torn["said"]
            return (
                dropped and torn["before"] == torn["after"],
                f"keys before {torn['before']}, after the restart {torn['after']}; db said: "
                f"{torn['said'] or 'nothing about its log'}",
            )

        return v

    def _writes_through_kills(
        self, ctx: Context, policy: str, rng: random.Random
    ) -> dict[str, int]:
        lab = ctx.lab
        db = lab.process("db")
        prefix = f"dbkill:{policy}:{int(time.time() * 1000)}"
        self._set_policy(ctx, policy)
        seconds = self.seconds_per_kill * (self.kills + 1)
        writer = lab.backend.attach(
            lab.topology.client.name,
            ["python3", "-m", "services.probes.writer", "db", "6379", prefix, str(seconds)],
        )
        started = time.monotonic()
        kills = 0
        try:
            for k in range(self.kills):
                # A moment inside this kill's slice of the writing window, drawn with the seed.
                at = self.seconds_per_kill * (k + rng.uniform(0.4, 0.9))
                ctx.wait(at - (time.monotonic() - started))
                db.kill()
                kills += 1
                db.start()
                lab.wait_healthy()
                self._set_policy(ctx, policy)  # a restart reads the default from its environment
            report = json.loads(writer.read_to_end())
        finally:
            writer.close()
        acked = {n for first, last in report["acked"] for n in range(first, last + 1)}
        present = self._present(ctx, prefix)
        return {
            "acked": len(acked),
            "lost": len(acked - present),
            "kills": kills,
            "broken": int(report["broken"]),
            "attempted": int(report["attempted"]),
        }

    def pictures(
        self, result: Result, folder: Path, frames: list[Frame] | None = None
    ) -> list[Path]:
        from lab.experiments.builtin.db_kill import picture  # matplotlib: slow to load

        facts = result.facts
        return [picture.power_loss(facts["power"], facts["runs"], folder / "power-loss.png")]

    def _power_losses(self, ctx: Context, stop: threading.Event) -> dict[str, dict[str, Any]]:
        lab = ctx.lab
        host = lab.topology.host_of("db").name
        out = {}
        shared = lab.backend.shared_folder(lab.topology.host_of("db").name)
        with powerloss.volatile_disk(lab.project, shared) as disk:
            for policy in self.policies:
                unsafe = self.unsafe_always and policy == "always"
                out[policy] = self._power_loss(ctx, disk, host, policy, unsafe, stop)
        return out

    def _power_loss(
        self,
        ctx: Context,
        disk: powerloss.VolatileDisk,
        host: str,
        policy: str,
        unsafe: bool,
        stop: threading.Event,
    ) -> dict[str, Any]:
        """One policy's power cut. Every wait ends early, with ExperimentError, once ``stop``
        is set (the kills beside it failed, or Ctrl-C): the container and disk still go."""
        _unless(stop)
        lab = ctx.lab
        address = lab.topology.hosts[host].ip
        container = powerloss.db_on(lab.backend, disk, host, VOLATILE_PORT, policy, unsafe=unsafe)
        try:
            self._until_answering(ctx, address, stop)
            fsyncs_before = disk.stats()["fsyncs"]
            prefix = f"power:{policy}:{int(time.time() * 1000)}"
            writer = lab.backend.attach(
                lab.topology.client.name,
                [
                    "python3",
                    "-m",
                    "services.probes.writer",
                    address,
                    str(VOLATILE_PORT),
                    prefix,
                    str(POWER_WRITE_S),
                ],
            )
            try:
                _unless(stop, wait=POWER_CUT_AT)
                self._between_fsyncs(disk, stop)
                fsyncs = disk.stats()["fsyncs"] - fsyncs_before
                cut_at = time.monotonic()
                lost_bytes = powerloss.power_cut(container, disk)
                container.start()
                self._until_answering(ctx, address, stop)
                report = json.loads(writer.read_to_end())
            finally:
                writer.close()
            acked_at = {int(n): float(at) for n, at in report["acked_at"]}
            before = {n for n, at in acked_at.items() if at < cut_at}
            present = self._present(ctx, prefix, address, VOLATILE_PORT)
            lost = sorted(before - present)
            return {
                "acked_before": len(before),
                "lost": len(lost),
                "window_s": round(cut_at - min(acked_at[n] for n in lost), 3) if lost else 0.0,
                "fsyncs": fsyncs,
                "unsynced_bytes_dropped": lost_bytes,
                "unsafe": unsafe,
            }
        finally:
            container.remove()

    @staticmethod
    def _between_fsyncs(disk: powerloss.VolatileDisk, stop: threading.Event) -> None:
        """Wait for the next fsync the disk sees, then half of everysec's period: the cut
        then falls where a once-a-second fsync leaves acknowledged writes unsynced, never
        by chance just after one (db's timer and this one would otherwise keep the same
        phase from run to run). A policy that never fsyncs (no) is cut at once."""
        from lab.waiting import wait_until

        seen = disk.stats()["fsyncs"]
        with suppress(TimedOut):
            wait_until(
                lambda: _unless(stop) or disk.stats()["fsyncs"] > seen,
                FSYNC_WAIT_S,
                "an fsync",
                poll=0.01,
            )
            _unless(stop, wait=AFTER_FSYNC_S)

    def _until_answering(self, ctx: Context, address: str, stop: threading.Event) -> None:
        from lab.waiting import wait_until

        def pong() -> bool:
            _unless(stop)
            events = ctx.lab.run(send.db_script(address, VOLATILE_PORT, ["PING"]))
            return send.reply_text("resp", events) == "PONG"

        wait_until(pong, 30, "the copy of db on the volatile disk", poll=0.2)

    def _set_policy(self, ctx: Context, policy: str) -> None:
        events = ctx.on(
            ctx.lab.topology.client.name,
            send.db_script("db", 6379, ["CONFIG", "SET", "appendfsync", policy]),
        )
        if send.reply_text("resp", events) != "OK":
            raise ExperimentError(
                f"db refused appendfsync {policy}: {send.reply_text('resp', events)}"
            )

    @staticmethod
    def _present(ctx: Context, prefix: str, host: str = "db", port: int = 6379) -> set[int]:
        events = ctx.lab.run(send.db_script(host, port, ["KEYS", f"{prefix}:*"]))
        parsed = parse_reply(received(events))
        if parsed is None or not isinstance(parsed[0], list):
            raise ExperimentError(f"KEYS {prefix}:* did not answer with a list")
        return {int(k.rsplit(b":", 1)[1]) for k in parsed[0] if isinstance(k, bytes)}

    @staticmethod
    def _dbsize(ctx: Context) -> str:
        return send.reply_text("resp", ctx.lab.run(send.db_script("db", 6379, ["DBSIZE"])))

    def _torn_record(self, ctx: Context) -> dict[str, str]:
        lab = ctx.lab
        db = lab.process("db")
        before = self._dbsize(ctx)
        db.exec(["sh", "-c", f"printf '{TORN}' >> /data/appendonly.aof"])
        db.kill()
        db.start()
        lab.wait_healthy()
        after = self._dbsize(ctx)
        startup = [line for line in db.logs().splitlines() if "replayed" in line][-1:]
        said = startup[0].split("] ", 1)[-1] if startup else ""
        return {"before": before, "after": after, "said": said}
