"""db-kill: what does an acknowledgement promise when the db process is killed mid-write?

A writer on the client host sets numbered keys as fast as one connection
allows, counting only the writes db acknowledged. Meanwhile the db process is
SIGKILLed at seeded random moments and started again (replaying its
append-only log). Afterwards every acknowledged key is looked for. This runs
once per appendfsync policy. Then a torn record is appended to the log, as a
death in the middle of a write would leave it, and db must drop it on start.
"""

from __future__ import annotations

import json
import random
import time

from lab.engine.session import AttachedExec
from lab.errors import ExperimentError
from lab.experiments.model import Claim, Context, Experiment, Needs, Observations, Verdicts
from lab.traffic import clients as send
from lab.traffic.clients import received
from services.protocols.resp import parse_reply

POLICIES = ("always", "everysec", "no")
TORN = "*3\\r\\n$3\\r\\nSET\\r\\n$4\\r\\ntorn"  # printf text: a SET cut off mid-key


class DbKill(Experiment):
    name = "db-kill"
    needs = Needs(processes={"db": ("6379/tcp",)})
    question = "What does an acknowledgement promise when the db process is killed mid-write?"

    def __init__(self, kills: int = 4, seconds_per_kill: float = 1.5, seed: int = 1) -> None:
        self.kills = kills
        self.seconds_per_kill = seconds_per_kill
        self.seed = seed
        self.claims = (
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
                "torn-record",
                "A record torn by a crash mid-write is detected on start and dropped, "
                "never replayed as garbage",
            ),
        )

    def run(self, ctx: Context) -> None:
        rng = random.Random(self.seed)
        ctx.facts["kills_planned"] = self.kills
        ctx.facts["runs"] = {
            policy: self._writes_through_kills(ctx, policy, rng) for policy in POLICIES
        }
        ctx.facts["torn"] = self._torn_record(ctx)

    def judge(self, seen: Observations) -> Verdicts:
        runs, planned = seen.facts["runs"], seen.facts["kills_planned"]
        v = Verdicts()
        for policy in POLICIES:

            @v.claim(f"fsync-{policy}")
            def _(policy: str = policy) -> tuple[bool, str]:
                outcome = runs[policy]
                return (
                    outcome["lost"] == 0 and outcome["acked"] > 0 and outcome["kills"] == planned,
                    f"{outcome['acked']} writes acknowledged through {outcome['kills']} kills "
                    f"({outcome['broken']} broken connections); {outcome['lost']} of them "
                    f"missing afterwards",
                )

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
        writer = AttachedExec(
            lab.stack.client,
            lab.stack.container(lab.topology.client.name),
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
    def _present(ctx: Context, prefix: str) -> set[int]:
        events = ctx.lab.run(send.db_script("db", 6379, ["KEYS", f"{prefix}:*"]))
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
