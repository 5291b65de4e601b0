"""db-kill: what does an acknowledgement promise when db dies mid-write, or the power goes?

A writer on the client host sets numbered keys as fast as one connection
allows, counting only the writes db acknowledged. Two kinds of death, once per
appendfsync policy (always, everysec, no):

- **process kill**: the db process is SIGKILLed at seeded moments while the writer
  writes, and started again (replaying its append-only log). The kernel already holds
  every byte db wrote, so nothing acknowledged is lost, whatever the policy; and so a
  kill cannot show whether db fsynced: only the power cut can.
- **power loss**: a copy of db whose /data is a filesystem that can lose power
  (``lab.chaos.lazyfs``: unsynced writes live in memory until fsync) is killed
  and, at the same moment, every unsynced byte is thrown away, as a machine
  losing power would. Then fsync is what matters: `always` loses nothing,
  `everysec` at most about the last second, `no` everything since it last synced.

Afterwards every acknowledged key is looked for. Each kill and cut counts only if
it landed while the writer was writing (after an acknowledgement, and breaking its
connection), which compares the driver's clock with the writer's: both must run on
one kernel (``Context.one_clock``). Then a torn record is appended to the log, as a
death in the middle of a write would leave it; the log's own bytes, read before and
after db starts again, show what db cut off (``evidence.py``).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.chaos import powerloss
from lab.errors import ExperimentError, TimedOut
from lab.experiments.builtin.db_kill.evidence import across_kernels, off_write, torn_tail
from lab.experiments.model import (
    Claim,
    Context,
    Experiment,
    Judgement,
    Needs,
    Observations,
    Result,
    Verdict,
    Verdicts,
)
from lab.interrupts import ctrl_c_ignored
from lab.services.protocols.resp import parse_reply
from lab.traffic import clients as send
from lab.traffic.clients import received

if TYPE_CHECKING:
    from lab.engine.attached import AttachedExec
    from lab.packets.dissect import Frame

POLICIES = ("always", "everysec", "no")
VOLATILE_PORT = 6390  # where the copy of db on the volatile disk listens, on db's host
POWER_CUT_AT = 3.0  # seconds into it at least: more than everysec's second since any fsync
FSYNC_WAIT_S = 1.5  # longer than everysec's period: no fsync by then means none is coming
AFTER_FSYNC_S = 0.5  # the cut falls this long after an fsync (everysec: mid-period)
# everysec's fsync runs once a second; its loss must stay within this
EVERYSEC_BOUND_S = 1.5
# The writer's run against it, from its first acknowledgement: on past the latest the power
# can go, so it is writing then, and until the copy answers again, at the least.
POWER_WRITE_S = POWER_CUT_AT + FSYNC_WAIT_S + AFTER_FSYNC_S + 1.0
AFTER_RESTART_S = 0.25  # the writer reconnects every 50 ms: by then it writes again
WRITER_LIMIT_S = 600.0  # a writer stops when the driver says; at the latest, then
TORN = "*3\\r\\n$3\\r\\nSET\\r\\n$4\\r\\ntorn"  # printf text: a SET cut off mid-key
AOF = "/data/appendonly.aof"  # the lab's db's log (DB_AOF_PATH in compose.yaml)
# The log's size, and its bytes from an offset on, as hex: what the kernel has in the file.
READ_FROM = (
    "import os, sys; n = os.path.getsize(sys.argv[1]); f = open(sys.argv[1], 'rb'); "
    "f.seek(min(n, int(sys.argv[2]))); print(n, f.read().hex())"
)


def _writing(report: dict[str, Any]) -> dict[str, Any]:
    """When the writer wrote (its clock): its first and last acknowledgement, its breaks."""
    times = [float(at) for _, at in report["acked_at"]]
    return {
        "first_ack_at": min(times, default=None),
        "last_ack_at": max(times, default=None),
        "broken_at": [float(at) for at in report["broken_at"]],
    }


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
            # A kill shows that the bytes reached the kernel, never that they were fsynced:
            # a db that never fsyncs passes it. The fsync promise is power-always's.
            Claim(
                "fsync-always",
                f"appendfsync always: every acknowledged write survives {kills} SIGKILLs, "
                "each landing mid-write: the bytes were handed to the kernel before the "
                "reply (whether they were also on disk, only the power cut shows)",
            ),
            Claim(
                "fsync-everysec",
                "appendfsync everysec: a process kill mid-write loses no acknowledged write "
                "either: the bytes were handed to the kernel before the reply; only a "
                "machine crash could lose the last second",
            ),
            Claim(
                "fsync-no",
                "appendfsync no: the same for a process kill mid-write; without fsync the "
                "loss comes with a power cut (power-no)",
            ),
            Claim(
                "power-always",
                "After a power loss mid-write (db killed, every unsynced byte dropped), "
                "appendfsync always has lost no acknowledged write: each was fsynced before "
                "its reply (the filesystem counted the fsyncs)",
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
                "A record torn by a crash mid-write (the log's last record unfinished, as "
                "its bytes show) is cut off the file on start, never replayed as garbage: "
                "the log ends where its last whole record did, and no key appears",
            ),
        )
        self.claims = tuple(
            c for c in every if c.id.split("-")[-1] in policies or c.id == "torn-record"
        )

    def run(self, ctx: Context) -> None:
        rng = random.Random(self.seed)
        # before any kill, not after the kill rows have run
        powerloss.check_possible(ctx.lab.backend)
        # Kill and cut times (the driver's clock) are compared with the writer's (the
        # client host's). On one Docker Engine, and on the test cluster, whose machines
        # are containers on one kernel, this passes; hosts on other machines are refused.
        ctx.one_clock("db-kill's kill and power-cut times", [ctx.lab.topology.client.name])
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
        facts = seen.facts
        v = Verdicts()
        apart = across_kernels(facts.get("kernels"))

        def timed(claim_id: str) -> Callable[[Judgement], Judgement]:
            """A claim that compares the driver's clock with the writer's: not judged when
            the two were taken on different kernels."""
            if apart is None:
                return v.claim(claim_id)

            def not_judged(judgement: Judgement) -> Judgement:
                v[claim_id] = Verdict(False, f"not judged: {apart}", judged=False)
                return judgement

            return not_judged

        def missed(row: dict[str, Any], kills_at: list[float]) -> list[str]:
            return off_write(kills_at, row["first_ack_at"], row["last_ack_at"], row["broken_at"])

        for policy in POLICIES:  # those a result lacks are not in its claims either

            @timed(f"fsync-{policy}")
            def _(policy: str = policy) -> tuple[bool, str]:
                outcome = facts["runs"][policy]
                off = missed(outcome, outcome["kills_at"])
                return (
                    outcome["lost"] == 0
                    and outcome["acked"] > 0
                    and outcome["kills"] == facts["kills_planned"]
                    and not off,
                    f"{outcome['acked']} writes acknowledged through {outcome['kills']} kills "
                    f"({outcome['broken']} broken connections"
                    + (f"; {'; '.join(off)}" if off else "; every kill landed mid-write")
                    + f"); {outcome['lost']} of them missing afterwards",
                )

        def loss(policy: str) -> tuple[bool, str]:
            """Whether the cut landed mid-write, and what it took."""
            p = facts["power"][policy]
            off = missed(p, [p["cut_at"]])
            window = f", acknowledged up to {p['window_s']:.2f} s before it" if p["lost"] else ""
            return not off, (
                f"{policy}: {p['lost']} of {p['acked_before']} acknowledged writes lost to the "
                f"power cut{window}; {p['fsyncs']} fsyncs reached the disk"
                + (f"; the cut missed the writing: {off[0]}" if off else "")
            )

        @timed("power-always")
        def _() -> tuple[bool, str]:
            p = facts["power"]["always"]
            mid, said = loss("always")
            return mid and p["acked_before"] > 0 and p["lost"] == 0 and p["fsyncs"] > 0, said

        @timed("power-everysec")
        def _() -> tuple[bool, str]:
            p = facts["power"]["everysec"]
            mid, said = loss("everysec")
            return mid and p["acked_before"] > 0 and p["window_s"] < EVERYSEC_BOUND_S, said

        @timed("power-no")
        def _() -> tuple[bool, str]:
            p = facts["power"]["no"]
            mid, said = loss("no")
            return mid and p["lost"] > 0 and p["window_s"] >= EVERYSEC_BOUND_S, said

        @v.claim("torn-record")
        def _() -> tuple[bool, str]:
            # The file's bytes, not db's word for what it did: the tail past the intact log
            # before the restart, and the file's length after it.
            torn = facts["torn"]
            tail = bytes.fromhex(torn["tail"])
            wrong = torn_tail(tail)
            found = wrong or f"an unfinished record of {len(tail)} bytes"
            intact, after = torn["log_bytes"], torn["log_bytes_after"]
            return (
                wrong is None and after == intact and torn["before"] == torn["after"],
                f"past the intact log ({intact} bytes): {found}"
                f"; after the restart the log was {after} bytes; keys before {torn['before']}, "
                f"after {torn['after']}",
            )

        return v

    def _writes_through_kills(
        self, ctx: Context, policy: str, rng: random.Random
    ) -> dict[str, Any]:
        lab = ctx.lab
        db = lab.process("db")
        prefix = f"dbkill:{policy}:{int(time.time() * 1000)}"
        self._set_policy(ctx, policy)
        writer = self._writer(ctx, "db", 6379, prefix)
        kills_at: list[float] = []
        started = time.monotonic()  # the writer's first acknowledgement
        try:
            for k in range(self.kills):
                # A moment inside this kill's slice of the writing, drawn with the seed; if
                # the last restart ran past it, shortly after db took writes again.
                at = started + self.seconds_per_kill * (k + rng.uniform(0.4, 0.9))
                ctx.wait(max(at - time.monotonic(), AFTER_RESTART_S))
                kills_at.append(round(time.monotonic(), 4))
                db.kill()
                db.start()
                lab.wait_healthy()
                self._set_policy(ctx, policy)  # a restart reads the default from its environment
            end = started + self.seconds_per_kill * (self.kills + 1)
            ctx.wait(max(end - time.monotonic(), AFTER_RESTART_S))  # writes after it, too
            report = self._written(writer)
        finally:
            writer.close()
        acked = {n for first, last in report["acked"] for n in range(first, last + 1)}
        present = self._present(ctx, prefix)
        return {
            "acked": len(acked),
            "lost": len(acked - present),
            "kills": len(kills_at),
            "broken": int(report["broken"]),
            "attempted": int(report["attempted"]),
            **_writing(report),
            "kills_at": kills_at,
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
            # The cut is timed from the writer's first acknowledgement, not from its start:
            # a busy machine can take seconds to start it (seen: a cut before any write).
            writer = self._writer(ctx, address, VOLATILE_PORT, prefix)
            try:
                writing = time.monotonic()
                _unless(stop, wait=POWER_CUT_AT)
                self._between_fsyncs(disk, stop)
                fsyncs = disk.stats()["fsyncs"] - fsyncs_before
                cut_at = round(time.monotonic(), 4)
                lost_bytes = powerloss.power_cut(container, disk)
                container.start()
                self._until_answering(ctx, address, stop)
                _unless(stop, wait=POWER_WRITE_S - (time.monotonic() - writing))
                report = self._written(writer)
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
                "cut_at": cut_at,
                **_writing(report),
            }
        finally:
            container.remove()

    @staticmethod
    def _writer(ctx: Context, host: str, port: int, prefix: str) -> AttachedExec:
        """The writer on the client host, once its first write was acknowledged. It goes
        on until its input ends (``_written``): a replay that grows with the log, or a busy
        machine, must not push a kill past the end of the writing. Its limit is only for
        a driver that vanished without ending it."""
        argv = ["python3", "-m", "services.probes.writer", host, str(port), prefix]
        argv += [str(WRITER_LIMIT_S), "--until-input-ends"]
        writer = ctx.lab.backend.attach(ctx.lab.topology.client.name, argv)
        try:
            writer.read_line()  # "writing"
        except BaseException:
            writer.close()
            raise
        return writer

    @staticmethod
    def _written(writer: AttachedExec) -> dict[str, Any]:
        """The writer's report, once told to stop."""
        writer.end_input()
        report: dict[str, Any] = json.loads(writer.read_to_end())
        return report

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

    def _torn_record(self, ctx: Context) -> dict[str, Any]:
        """A torn tail appended to the log, db killed and started: the file's bytes past
        its intact length before the restart, and its length after (what db cut off)."""
        lab = ctx.lab
        db = lab.process("db")
        before = self._dbsize(ctx)
        intact, _ = self._log_from(ctx)
        db.exec(["sh", "-c", f"printf '{TORN}' >> {AOF}"])
        _, tail = self._log_from(ctx, intact)  # the kill below leaves the file as it is
        db.kill()
        db.start()
        lab.wait_healthy()
        after = self._dbsize(ctx)
        length_after, _ = self._log_from(ctx)
        return {
            "before": before,
            "after": after,
            "log_bytes": intact,
            "tail": tail.hex(),
            "log_bytes_after": length_after,
        }

    @staticmethod
    def _log_from(ctx: Context, offset: int | None = None) -> tuple[int, bytes]:
        """The lab's db's log: its length, and its bytes from ``offset`` on (none without)."""
        offset = (1 << 62) if offset is None else offset  # past the end: nothing read
        out = ctx.lab.process("db").exec(["python3", "-c", READ_FROM, AOF, str(offset)])
        length, _, data = out.decode().strip().partition(" ")
        return int(length), bytes.fromhex(data)
