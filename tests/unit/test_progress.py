import io
import logging
import time
from types import SimpleNamespace

from fruits_p8.progress import (
    CountProgress,
    ImageTally,
    SparkProgress,
    TallyAddress,
    progress_line,
    read_tally_message,
    send_tally,
    tally_message,
)


def test_progress_line_reports_share_images_rate_and_eta():
    line = progress_line("featurize", 2, 8, 10.0, 800)
    assert line == "featurize: 2/8 tasks (25%), ~200/800 images, 20 images/s, ETA 30s"


def test_progress_line_without_items_or_tasks():
    assert progress_line("write", 1, 4, 3.0, None) == "write: 1/4 tasks (25%)"
    assert progress_line("x", 0, 0, 1.0, 10).startswith("x: 0/0 tasks")


def test_eta_in_minutes():
    assert progress_line("f", 1, 100, 60.0, 1000).endswith("ETA 99m00s")


def test_progress_line_with_counted_images_uses_them_and_the_given_rate():
    line = progress_line("featurize", 0, 8, 12.0, 17845, counted=1280, rate=320.0)
    assert line == "featurize: 0/8 tasks (0%), 1280/17845 images, 320 images/s, ETA 52s"
    assert progress_line("featurize", 0, 2, 5.0, 360, counted=0, rate=None) == (
        "featurize: 0/2 tasks (0%), 0/360 images")


def test_tally_messages_of_another_run_or_garbage_are_ignored():
    assert read_tally_message(tally_message("abc", 3, 1, 640), "abc") == (3, 1, 640)
    assert read_tally_message(tally_message("abc", 3, 1, 640), "abd") is None
    for junk in (b"", b"abc 1 2", b"abc x 1 2", b"\xff\xfe", b"abc 1 2 3 4"):
        assert read_tally_message(junk, "abc") is None


def test_tally_sums_the_latest_attempt_of_each_partition():
    tally = ImageTally("127.0.0.1")
    tally.add(0, 0, 64)
    tally.add(1, 0, 128)
    tally.add(0, 0, 192)
    assert tally.done() == 320
    tally.add(1, 1, 64)  # partition 1 retried: counts again from its new attempt
    tally.add(1, 0, 256)  # a late message of the failed attempt
    assert tally.done() == 256
    tally.close()


def test_tasks_counts_reach_the_tally_over_udp_while_it_is_entered():
    with ImageTally("127.0.0.1") as tally:
        assert tally.address is not None and tally.address.host == "127.0.0.1"
        # Loopback delivers in send order: the other run's message is read before ours.
        send_tally(TallyAddress(tally.address.host, tally.address.port, "other-run"), 2, 0, 999)
        for images in (64, 128):
            send_tally(tally.address, 0, 0, images)
        send_tally(tally.address, 1, 0, 64)
        deadline = time.monotonic() + 30
        while tally.done() < 192 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert tally.done() == 192
    send_tally(tally.address, 0, 0, 512)  # after the stage: nobody listens, nothing fails
    assert tally.done() == 192


def test_a_tally_without_a_socket_is_disabled_not_an_error():
    tally = ImageTally("192.0.2.1")  # TEST-NET-1: no interface of this machine has it
    assert tally.address is None
    with tally:
        assert tally.done() == 0 and tally.rate() is None


class Clock:
    """A clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_rate_counts_from_the_first_report_not_from_the_model_build():
    clock = Clock()
    tally = ImageTally("127.0.0.1", clock=clock)
    assert tally.rate() is None
    clock.now += 30  # the model build: no count yet
    tally.add(0, 0, 64)
    clock.now += 0.5
    tally.add(0, 0, 128)
    assert tally.rate() is None  # half a second is too short to tell
    clock.now += 0.25
    tally.add(0, 0, 192)
    assert tally.rate() == 128 / 0.75
    tally.close()


class FakeTracker:
    """The two calls SparkProgress makes on Spark's status tracker: one stage, 1 of 4 done."""

    def statusTracker(self):
        return self

    def getActiveStageIds(self):
        return [7]

    def getStageInfo(self, stage_id):
        return SimpleNamespace(numCompletedTasks=1, numTasks=4)


class StartingTracker(FakeTracker):
    def getStageInfo(self, stage_id):
        return SimpleNamespace(numCompletedTasks=0, numTasks=8)


def messages(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records]


def test_progress_lines_count_images_once_a_task_reports_else_estimate(caplog):
    caplog.set_level(logging.INFO, logger="fruits_p8.progress")
    clock = Clock()
    tally = ImageTally("127.0.0.1", clock=clock)
    progress = SparkProgress(FakeTracker(), "featurize", 800, interval=10.0, tally=tally,
                             first=5.0, clock=clock)
    clock.now += 4.9
    assert progress.check() and messages(caplog) == []  # not before `first`
    clock.now += 0.1
    progress.check()
    tally.add(2, 0, 64)
    clock.now += 9.9
    progress.check()
    assert messages(caplog) == ["featurize: 1/4 tasks (25%), ~200/800 images, 40 images/s, "
                                "ETA 15s"]
    clock.now += 0.1
    progress.check()
    tally.close()
    assert messages(caplog)[1:] == ["featurize: 1/4 tasks (25%), 64/800 images"]


def test_before_any_count_the_line_says_the_workers_are_starting(caplog):
    caplog.set_level(logging.INFO, logger="fruits_p8.progress")
    clock = Clock()
    tally = ImageTally("127.0.0.1", clock=clock)
    progress = SparkProgress(StartingTracker(), "featurize", 800, tally=tally, first=5.0,
                             clock=clock)
    clock.now += 5
    progress.check()
    tally.close()
    assert messages(caplog) == [
        "featurize: 0/8 tasks (0%), ~0/800 images; workers starting (TensorFlow, the model), "
        "images counted from their first batch"]


def test_the_first_line_with_a_rate_and_eta_comes_without_waiting_for_the_interval(caplog):
    caplog.set_level(logging.INFO, logger="fruits_p8.progress")
    clock = Clock()
    tally = ImageTally("127.0.0.1", clock=clock)
    progress = SparkProgress(FakeTracker(), "featurize", 800, interval=60.0, tally=tally,
                             first=5.0, poll=0.5, clock=clock)
    clock.now += 5
    progress.check()
    tally.add(0, 0, 64)
    clock.now += 0.5
    progress.check()  # counting, no rate yet: the next line waits for the interval
    clock.now += 0.1
    tally.add(0, 0, 128)
    progress.check()  # a rate now: its line comes at once, 54 s before the interval
    logged = messages(caplog)
    assert len(logged) == 2, logged
    assert logged[0].startswith("featurize: 1/4 tasks (25%), ~200/800 images")
    assert logged[1] == "featurize: 1/4 tasks (25%), 128/800 images, 107 images/s, ETA 6s"
    while clock.now < 100 + 5 + 0.6 + 60:  # then quiet again until the interval
        clock.now += 0.5
        progress.check()
    assert len(messages(caplog)) == 3
    tally.close()


def test_entered_it_checks_on_its_own_and_stops_when_spark_cannot_answer(caplog):
    caplog.set_level(logging.INFO, logger="fruits_p8.progress")
    with SparkProgress(FakeTracker(), "featurize", 800, first=0.01, poll=0.01):
        deadline = time.monotonic() + 30
        while not caplog.records and time.monotonic() < deadline:
            time.sleep(0.01)
    assert messages(caplog)[0].startswith("featurize: 1/4 tasks (25%), ~")

    class Stopped(FakeTracker):
        def getActiveStageIds(self):
            raise RuntimeError("SparkContext was shut down")

    assert SparkProgress(Stopped(), "featurize", 800, first=0.0).check() is False


def test_count_progress_logs_the_first_update_then_one_per_interval_and_the_last(caplog):
    caplog.set_level(logging.INFO, logger="fruits_p8.progress")
    clock = Clock()
    bar = CountProgress(io.StringIO(), interactive=False, interval=5.0, clock=clock)
    for done in range(1, 10):
        bar.update(done, 9, done * 1000, 9000)
        clock.now += 1
    assert [m.split("] ")[1] for m in messages(caplog)] == [
        "1/9 files, 1.0 kB/9.0 kB", "6/9 files, 6.0 kB/9.0 kB", "9/9 files, 9.0 kB/9.0 kB"]
