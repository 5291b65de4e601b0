"""The power-loss cache of one file, against the simplest model of a machine: what programs
see, and what the disk holds. Hypothesis drives random writes, truncations, syncs and power
cuts; after each, a read must see what the model sees, and a sync or a cut must leave the
disk, and the view, as the model says."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from lab.chaos.volatile import Unsynced

SETTINGS = settings(derandomize=True, max_examples=400, deadline=None)

ops = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.integers(0, 64), st.binary(min_size=1, max_size=24)),
        st.tuples(st.just("truncate"), st.integers(0, 80), st.just(b"")),
        st.tuples(st.just("sync"), st.just(0), st.just(b"")),
        st.tuples(st.just("drop"), st.just(0), st.just(b"")),
    ),
    max_size=30,
)


def apply_plan(disk: bytearray, plan: list[tuple[str, int, bytes]]) -> None:
    for kind, at, data in plan:
        if kind == "truncate":
            del disk[at:]
            disk.extend(bytes(at - len(disk)))
        else:
            disk.extend(bytes(max(0, at + len(data) - len(disk))))
            disk[at : at + len(data)] = data


@SETTINGS
@given(st.binary(max_size=40), ops)
def test_reads_syncs_and_power_cuts_behave_as_a_machine_does(
    start: bytes, steps: list[tuple[str, int, bytes]]
) -> None:
    disk = bytearray(start)  # what survives a power cut
    view = bytearray(start)  # what programs see
    cache = Unsynced(len(disk))
    for kind, at, data in steps:
        if kind == "write":
            view.extend(bytes(max(0, at + len(data) - len(view))))
            view[at : at + len(data)] = data
            cache.write(at, data)
        elif kind == "truncate":
            del view[at:]
            view.extend(bytes(at - len(view)))
            cache.truncate(at)
        elif kind == "sync":
            apply_plan(disk, cache.sync_plan())
            cache.synced()
            assert disk == view
        else:
            cache.drop(len(disk))
            view = bytearray(disk)
        seen = cache.read(0, 1000, lambda o, n: bytes(disk[o : o + n]), len(disk))
        assert (cache.size, seen) == (len(view), bytes(view))
        assert cache.read(3, 5, lambda o, n: bytes(disk[o : o + n]), len(disk)) == bytes(view[3:8])


def test_a_power_cut_loses_exactly_the_unsynced_bytes() -> None:
    cache = Unsynced(0)
    cache.write(0, b"synced ")
    cache.synced()
    cache.write(7, b"lost")
    assert (cache.dirty, cache.unsynced_bytes) == (True, 4)
    assert cache.drop(backing_size=7) == 4
    assert (cache.dirty, cache.size) == (False, 7)


def test_appends_stay_one_extent() -> None:
    cache = Unsynced(0)
    for i in range(100):
        cache.write(i * 10, b"0123456789")
    assert len(cache.starts) == 1
    assert cache.unsynced_bytes == 1000
