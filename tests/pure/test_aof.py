"""The append-only log's framing: what is written, what is replayed, what a torn tail loses."""

from __future__ import annotations

import tracemalloc

import pytest

from lab.services.protocols.aof import record, replay, replay_stream
from lab.services.protocols.kv import Store
from lab.services.protocols.resp import encode_command
from lab.services.servers.db_log import AppendOnlyLog


def test_a_relative_expiry_is_logged_as_an_absolute_one() -> None:
    logged = record([b"SET", b"k", b"v", b"EX", b"10"], now=1000.0)
    assert logged == encode_command("SET", "k", "v", "PXAT", "1010000")
    assert record([b"SET", b"k", b"v", b"PX", b"1500"], now=1000.0) == encode_command(
        "SET", "k", "v", "PXAT", "1001500"
    )
    assert record([b"DEL", b"k"], now=1.0) == encode_command("DEL", "k")


def test_replaying_after_a_restart_keeps_the_original_deadline() -> None:
    before = Store()
    command = [b"SET", b"k", b"v", b"EX", b"10"]
    before.execute(command, now=1000.0)
    after = Store()
    for c in replay(record(command, now=1000.0)).commands:
        after.execute(c, now=1005.0)  # replayed five seconds later
    assert after.execute([b"GET", b"k"], now=1009.9).reply == b"v"
    assert after.execute([b"GET", b"k"], now=1010.0).reply is None


LOG = b"".join(encode_command("SET", f"k{i}", str(i)) for i in range(3))


@pytest.mark.parametrize("cut", range(len(LOG) + 1))
def test_a_log_cut_anywhere_replays_only_whole_records(cut: int) -> None:
    result = replay(LOG[:cut])
    whole = replay(LOG).commands
    assert result.commands == whole[: len(result.commands)]
    assert result.valid_bytes + result.dropped_bytes == cut
    assert LOG[: result.valid_bytes] == b"".join(encode_command(*c) for c in result.commands)


def test_garbage_is_dropped_never_replayed() -> None:
    result = replay(LOG + b"\x00\xffnot resp at all\r\n" + LOG)
    assert len(result.commands) == 3
    assert result.dropped_bytes > 0


def test_read_cuts_the_torn_tail_off_the_file(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "appendonly.aof"
    torn = b"*3\r\n$3\r\nSET\r\n$2\r\nk3"  # the process died in the middle of this record
    path.write_bytes(LOG + torn)
    seen: list[list[bytes]] = []
    assert AppendOnlyLog.read(str(path), seen.append) == (3, len(torn))
    assert len(seen) == 3
    assert path.read_bytes() == LOG


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 16, 1000])
@pytest.mark.parametrize("cut", range(0, len(LOG) + 1, 5))
def test_streaming_in_any_chunks_replays_what_the_whole_log_does(chunk: int, cut: int) -> None:
    data = LOG[:cut] + b"\x00garbage" if cut % 2 else LOG[:cut]
    whole = replay(data)
    seen: list[list[bytes]] = []
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    count, valid, dropped = replay_stream(pieces, seen.append)
    assert seen == whole.commands
    assert (count, valid, dropped) == (len(whole.commands), whole.valid_bytes, whole.dropped_bytes)


def test_a_flood_of_overwrites_replays_in_little_memory() -> None:
    """A flood of SETs to one key made an 84 MB log that no longer fit in db's 256 MB at
    replay (OOM-killed at every start). Streaming holds one chunk, not the log."""
    record_bytes = encode_command("SET", "flood", "x" * 100)
    chunks = (record_bytes * 2000 for _ in range(20))  # 40,000 records: 5.3 MB
    store = Store()
    tracemalloc.start()
    try:
        count, _, dropped = replay_stream(chunks, lambda c: store.execute(c, 0.0))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (count, dropped) == (40_000, 0)
    assert store.execute([b"DBSIZE"], 0.0).reply == 1
    assert peak < 2_000_000, f"replay peaked at {peak / 1e6:.1f} MB for a 5.3 MB log"


def test_policies_are_checked() -> None:
    with pytest.raises(ValueError, match="appendfsync must be one of"):
        AppendOnlyLog("/dev/null", "sometimes")
