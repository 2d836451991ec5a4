import logging
import time
from types import SimpleNamespace

from fruits_p8.progress import (
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
        for images in (64, 128):
            send_tally(tally.address, 0, 0, images)
        send_tally(tally.address, 1, 0, 64)
        send_tally(TallyAddress(tally.address.host, tally.address.port, "other-run"), 2, 0, 999)
        deadline = time.monotonic() + 5
        while tally.done() < 192 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)
        assert tally.done() == 192
    send_tally(tally.address, 0, 0, 512)  # after the stage: nobody listens, nothing fails
    assert tally.done() == 192


def test_a_tally_without_a_socket_is_disabled_not_an_error():
    tally = ImageTally("192.0.2.1")  # TEST-NET-1: no interface of this machine has it
    assert tally.address is None
    with tally:
        assert tally.done() == 0 and tally.rate() is None


def test_rate_counts_from_the_first_report_not_from_the_model_build():
    tally = ImageTally("127.0.0.1")
    assert tally.rate() is None
    begin = time.perf_counter()
    tally.add(0, 0, 64)
    time.sleep(0.6)
    tally.add(0, 0, 192)
    rate = tally.rate()
    elapsed = time.perf_counter() - begin
    assert rate is not None and 128 / elapsed <= rate <= 128 / 0.6
    tally.close()


class FakeTracker:
    """The two calls SparkProgress makes on Spark's status tracker: one stage, 1 of 4 done."""

    def statusTracker(self):
        return self

    def getActiveStageIds(self):
        return [7]

    def getStageInfo(self, stage_id):
        return SimpleNamespace(numCompletedTasks=1, numTasks=4)


def test_progress_lines_count_images_once_a_task_reports_else_estimate(caplog):
    caplog.set_level(logging.INFO, logger="fruits_p8.progress")
    def lines() -> list[str]:
        return [r.getMessage() for r in caplog.records]

    def wait_for(condition) -> None:
        deadline = time.monotonic() + 5
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.01)

    tally = ImageTally("127.0.0.1")
    with SparkProgress(FakeTracker(), "featurize", 800, interval=0.05, tally=tally, first=0.01):
        wait_for(lambda: lines())
        tally.add(2, 0, 64)
        wait_for(lambda: "64/800" in lines()[-1])
    tally.close()
    logged = lines()
    assert logged[0].startswith("featurize: 1/4 tasks (25%), ~200/800 images")
    assert logged[-1] == "featurize: 1/4 tasks (25%), 64/800 images"


class StartingTracker(FakeTracker):
    def getStageInfo(self, stage_id):
        return SimpleNamespace(numCompletedTasks=0, numTasks=8)


def test_before_any_count_the_line_says_the_workers_are_starting(caplog):
    caplog.set_level(logging.INFO, logger="fruits_p8.progress")
    tally = ImageTally("127.0.0.1")
    with SparkProgress(StartingTracker(), "featurize", 800, interval=60.0, tally=tally,
                       first=0.01, poll=0.01):
        deadline = time.monotonic() + 5
        while not caplog.records and time.monotonic() < deadline:
            time.sleep(0.01)
    tally.close()
    assert caplog.records[0].getMessage() == (
        "featurize: 0/8 tasks (0%), ~0/800 images; workers starting (TensorFlow, the model), "
        "images counted from their first batch")


def test_the_first_line_with_a_rate_and_eta_comes_without_waiting_for_the_interval(caplog):
    caplog.set_level(logging.INFO, logger="fruits_p8.progress")
    def lines() -> list[str]:
        return [r.getMessage() for r in caplog.records]

    tally = ImageTally("127.0.0.1")
    with SparkProgress(FakeTracker(), "featurize", 800, interval=60.0, tally=tally, first=0.01,
                       poll=0.01):
        deadline = time.monotonic() + 5
        while not lines() and time.monotonic() < deadline:
            time.sleep(0.01)
        tally.add(0, 0, 64)
        time.sleep(0.6)
        tally.add(0, 0, 128)
        began = time.monotonic()
        while "ETA" not in lines()[-1] and time.monotonic() - began < 5:
            time.sleep(0.01)
        waited = time.monotonic() - began
        time.sleep(0.1)
    tally.close()
    logged = lines()
    assert waited < 2, logged  # not the 60 s interval
    assert logged[0].startswith("featurize: 1/4 tasks (25%), ~200/800 images")
    assert logged[-1].startswith("featurize: 1/4 tasks (25%), 128/800 images, ")
    assert "images/s, ETA " in logged[-1]
    assert len(logged) == 2  # then quiet again until the interval
