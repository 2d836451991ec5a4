"""The output lease: one run at a time, a dead run's lease taken over."""

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from fruits_p8.errors import OutputInUseError
from fruits_p8.io import lease as lease_module
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
    old = time.time() - 6
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
    """Each beat is seen through an event, with a clock that moves between beats."""
    clock = Clock()
    beats = threading.Semaphore(0)

    class Watched(Lease):
        def renew(self) -> None:
            super().renew()
            clock.now += 1
            beats.release()

    live = Watched(LocalLeaseStore(tmp_path / "l"), "out", "run-a", ttl_s=60,
                   heartbeat_s=0.001, clock=clock)
    live.acquire()
    first = LeaseRecord.from_text((tmp_path / "l").read_text()).heartbeat
    assert beats.acquire(timeout=120) and beats.acquire(timeout=120)  # two beats ran
    assert LeaseRecord.from_text((tmp_path / "l").read_text()).heartbeat > first
    live.release()
    assert not (tmp_path / "l").exists() and not live.lost


def test_a_heartbeat_and_the_check_before_commit_never_both_renew_one_version(tmp_path):
    """Two renewals at once from the same run would compare the same token: the later one
    would find the lease changed and call it lost (the run then refuses its commit)."""
    beating, checking, go = threading.Event(), threading.Event(), threading.Event()
    store = LocalLeaseStore(tmp_path / "l")
    real_replace = store.replace

    def replace(text, token):
        if threading.current_thread().name == "beat":
            beating.set()
            go.wait(timeout=120)
        else:
            checking.set()
        return real_replace(text, token)

    store.replace = replace
    ticks = iter(range(1000, 2000))
    held = Lease(store, "out", "run-a", ttl_s=60, heartbeat_s=0, clock=lambda: next(ticks))
    held.acquire()
    beat = threading.Thread(target=held.renew, name="beat")
    beat.start()
    assert beating.wait(timeout=120)
    check = threading.Thread(target=held.renew, name="check")
    check.start()
    checking.wait(timeout=2)  # where renewals exclude each other, it waits for the beat
    go.set()
    beat.join(timeout=120)
    check.join(timeout=120)
    assert held.lost is None
    held.check()


def test_a_lease_left_empty_is_taken_over_after_a_short_grace_not_the_ttl(tmp_path):
    """fc8355e refused it for the whole ttl (120 s), as if another run were writing it."""
    path = tmp_path / "l"
    path.write_text("")  # an older fruits_p8 interrupted between creating and writing it
    written = path.stat().st_mtime
    for text in ("", '{"run_id": "run-a", "ho'):  # empty, or cut short mid-write
        path.write_text(text)
        os.utime(path, (written, written))
        young = Lease(LocalLeaseStore(path), "out", "run-b", ttl_s=120, heartbeat_s=0,
                      clock=lambda: written + 1)
        with pytest.raises(OutputInUseError, match="being claimed"):
            young.acquire()
        later = Lease(LocalLeaseStore(path), "out", "run-b", ttl_s=120, heartbeat_s=0,
                      clock=lambda: written + 10)
        later.acquire()
        assert LeaseRecord.from_text(path.read_text()).run_id == "run-b"
        later.release()


def interrupted(step: int, action, module_files: set[str]) -> bool:
    """Run `action`, raising KeyboardInterrupt (as Ctrl-C does) before the `step`-th line
    executed in `module_files`; whether it was interrupted."""
    count = 0

    def line(frame, event, arg):
        nonlocal count
        if event == "line":
            count += 1
            if count == step:
                raise KeyboardInterrupt
        return line

    sys.settrace(lambda frame, event, arg: line if frame.f_code.co_filename in module_files
                 else None)
    try:
        action()
    except KeyboardInterrupt:
        return True
    finally:
        sys.settrace(None)
    return False


@pytest.mark.parametrize("what", ["create", "renew", "take over"])
def test_ctrl_c_at_any_line_of_a_lease_write_leaves_a_whole_lease(tmp_path, what):
    """Interrupted before each line of the lease code in turn: the lease file is absent or a
    whole record, never empty (fc8355e truncated it, then wrote it: empty 2 times of 2 under
    Ctrl-C in a commit, 15 of 20 in a renewal)."""
    files = {lease_module.__file__, sys.modules[LocalLeaseStore.__module__].__file__}
    path = tmp_path / "l"
    clock = Clock()
    for step in range(1, 500):
        path.unlink(missing_ok=True)
        holder = lease(path, "run-a", clock)
        if what != "create":
            holder.acquire()
        if what == "renew":
            clock.now += 1
            action = holder.renew
        elif what == "take over":
            clock.now += 61
            action = lease(path, "run-b", clock, host="h2").acquire
        else:
            action = holder.acquire
        if not interrupted(step, action, files):
            break
        if path.exists() or what != "create":
            assert LeaseRecord.from_text(path.read_text()) is not None, step
    else:
        pytest.fail("the write never completed")
    assert step > 3
