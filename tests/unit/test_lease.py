"""The output lease: one run at a time, a dead run's lease taken over."""

import json
import os
import subprocess
import time

import pytest

from fruits_p8.errors import OutputInUseError
from fruits_p8.io.lease import Lease, LeaseRecord, LocalLeaseStore, is_stale, this_machine


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def lease(path, run_id, clock, host="h1", pid=1):
    return Lease(LocalLeaseStore(path), "out", run_id, ttl_s=60, heartbeat_s=0, clock=clock,
                 host=host, pid=pid, machine=host)


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


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_a_lease_of_a_dead_process_on_this_machine_is_taken_over_at_once(tmp_path):
    clock = Clock()
    dead = LeaseRecord("dead", "h1", 4242, 990.0, 999.0, machine="m1")
    assert is_stale(dead, clock.now, 60, "m1", alive=lambda pid: False)
    assert not is_stale(dead, clock.now, 60, "m1", alive=lambda pid: True)
    assert not is_stale(dead, clock.now, 60, "m2", alive=lambda pid: False)  # only time tells
    (tmp_path / "l").write_text(LeaseRecord("dead", "h1", dead_pid(), 990.0, 999.0,
                                            this_machine()).to_text())
    Lease(LocalLeaseStore(tmp_path / "l"), "out", "new", ttl_s=60, heartbeat_s=0,
          clock=clock).acquire()
    assert "new" in (tmp_path / "l").read_text()


def test_a_file_at_the_lease_path_that_is_no_lease_is_never_taken_over(tmp_path):
    (tmp_path / "l").write_text("my notes")
    for pid in ("0", str(2 ** 40)):  # nor records whose pid no process can have
        with pytest.raises(OutputInUseError, match="did not write"):
            lease(tmp_path / "l", "run-b", Clock()).acquire()
        (tmp_path / "l").write_text(json.dumps({"run_id": "x", "host": "h", "pid": pid,
                                                "started": 1, "heartbeat": 1}))
    assert LeaseRecord.from_text((tmp_path / "l").read_text()) is None


def test_an_empty_lease_is_taken_over_only_once_it_is_old(tmp_path):
    (tmp_path / "l").write_text("")  # a run died between creating and writing it
    with pytest.raises(OutputInUseError, match="being claimed"):
        Lease(LocalLeaseStore(tmp_path / "l"), "out", "run-b", ttl_s=60, heartbeat_s=0
              ).acquire()
    old = time.time() - 61
    os.utime(tmp_path / "l", (old, old))
    Lease(LocalLeaseStore(tmp_path / "l"), "out", "run-b", ttl_s=60, heartbeat_s=0).acquire()
    assert LeaseRecord.from_text((tmp_path / "l").read_text()).run_id == "run-b"


def test_the_renewal_before_commit_finds_a_lease_taken_over_meanwhile(tmp_path):
    clock = Clock()
    first = lease(tmp_path / "l", "run-a", clock)
    first.acquire()
    clock.now += 61  # silent for longer than the ttl: no heartbeat ran in between
    second = lease(tmp_path / "l", "run-b", clock, host="h2")
    second.acquire()
    with pytest.raises(OutputInUseError, match="took over"):
        first.check()
    second.check()


def test_the_heartbeat_thread_renews(tmp_path):
    import time

    live = Lease(LocalLeaseStore(tmp_path / "l"), "out", "run-a", ttl_s=60, heartbeat_s=0.05)
    live.acquire()
    first = LeaseRecord.from_text((tmp_path / "l").read_text()).heartbeat
    time.sleep(0.3)
    assert LeaseRecord.from_text((tmp_path / "l").read_text()).heartbeat > first
    live.release()
    assert not (tmp_path / "l").exists()
