"""The output lease: one run at a time, a dead run's lease taken over."""

import pytest

from fruits_p8.errors import OutputInUseError
from fruits_p8.io.lease import Lease, LeaseRecord, LocalLeaseStore, is_stale


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def lease(path, run_id, clock, host="h1", pid=1):
    return Lease(LocalLeaseStore(path), "out", run_id, ttl_s=60, heartbeat_s=0, clock=clock,
                 host=host, pid=pid)


def test_a_second_run_is_refused_while_the_first_lives(tmp_path):
    clock = Clock()
    first = lease(tmp_path / "l", "run-a", clock)
    first.acquire()
    second = lease(tmp_path / "l", "run-b", clock, host="h2")
    with pytest.raises(OutputInUseError, match="run run-a, pid 1 on h1"):
        second.acquire()
    with pytest.raises(OutputInUseError, match="run-a"):
        second.check_free()
    first.release()
    assert not (tmp_path / "l").exists()
    second.acquire()
    assert "run-b" in (tmp_path / "l").read_text()


def test_a_silent_lease_is_taken_over_and_its_holder_cannot_commit(tmp_path):
    clock = Clock()
    first = lease(tmp_path / "l", "run-a", clock)
    first.acquire()
    clock.now += 61
    second = lease(tmp_path / "l", "run-b", clock, host="h2")
    second.acquire()
    first.renew()
    with pytest.raises(OutputInUseError, match="took over"):
        first.check()
    first.release()  # must not remove the lease it lost
    assert "run-b" in (tmp_path / "l").read_text()
    second.check()


def test_renewing_keeps_a_lease_fresh(tmp_path):
    clock = Clock()
    first = lease(tmp_path / "l", "run-a", clock)
    first.acquire()
    for _ in range(5):
        clock.now += 40
        first.renew()
    with pytest.raises(OutputInUseError):
        lease(tmp_path / "l", "run-b", clock, host="h2").acquire()


def test_a_lease_of_a_dead_process_on_this_host_is_taken_over_at_once(tmp_path):
    clock = Clock()
    dead = LeaseRecord("dead", "h1", 2 ** 22 + 12345, 990.0, 999.0)  # above any pid_max
    assert is_stale(dead, clock.now, 60, "h1")
    assert not is_stale(dead, clock.now, 60, "h2")  # another host: only time tells
    (tmp_path / "l").write_text(dead.to_text())
    lease(tmp_path / "l", "new", clock, host="h1").acquire()
    assert "new" in (tmp_path / "l").read_text()


def test_an_unreadable_lease_is_stale(tmp_path):
    (tmp_path / "l").write_text("garbage")
    fresh = lease(tmp_path / "l", "run-b", Clock())
    fresh.acquire()
    assert LeaseRecord.from_text((tmp_path / "l").read_text()).run_id == "run-b"


def test_the_heartbeat_thread_renews(tmp_path):
    import time

    live = Lease(LocalLeaseStore(tmp_path / "l"), "out", "run-a", ttl_s=60, heartbeat_s=0.05)
    live.acquire()
    first = LeaseRecord.from_text((tmp_path / "l").read_text()).heartbeat
    time.sleep(0.3)
    assert LeaseRecord.from_text((tmp_path / "l").read_text()).heartbeat > first
    live.release()
    assert not (tmp_path / "l").exists()
