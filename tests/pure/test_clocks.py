"""Times taken on two kernels are not compared: the boot id names the kernel."""

from lab.experiments import clocks


def test_hosts_on_the_drivers_kernel_are_not_strangers() -> None:
    assert clocks.strangers("abc\n", {"client": "abc", "server": "abc\n"}) == []


def test_a_host_on_another_kernel_is_named() -> None:
    there = {"client": "abc", "db": "def", "web": "abc"}
    assert clocks.strangers("abc", there) == ["db"]
    assert "db" in clocks.refusal("db-kill's window", ["db"])


def test_the_drivers_boot_id_is_read() -> None:
    assert len(clocks.kernel_here()) == 36  # a UUID
