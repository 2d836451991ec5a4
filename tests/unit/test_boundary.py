"""The error boundary: each family of failure, as Spark, the JVM, the workers and the OS raise
it, becomes one line with its exit code, and the full trace goes to the command's log."""

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from botocore.exceptions import EndpointConnectionError

import fruits_p8.commands.run as run_commands
from fruits_p8.boundary import Where, describe
from fruits_p8.cli import main
from fruits_p8.errors import Interrupted, StorageError, WeightsError
from fruits_p8.java import refusal
from tests.support.failures import TRACE_MARKS, one_error_line, trace_in

WHERE = Where(input="/data/in", output="/data/out")


class FakeThrowable:
    """A Java exception as Py4J shows it: class, message, cause."""

    def __init__(self, name, message, cause=None):
        self.name, self.message, self.cause = name, message, cause

    def getClass(self):  # noqa: N802 (Java's names)
        return self

    def getName(self):  # noqa: N802
        return self.name

    def getMessage(self):  # noqa: N802
        return self.message

    def getCause(self):  # noqa: N802
        return self.cause


class FakePy4JError(Exception):
    """What a failed Spark action raises in the driver: a Java chain behind a Python error."""

    def __init__(self, java_exception, text):
        super().__init__(text)
        self.java_exception = java_exception


def job_failure(worker_error: str) -> FakePy4JError:
    """A Spark job aborted by a Python worker's exception, as the driver receives it."""
    worker = ("Traceback (most recent call last):\n  File \"/x/worker.py\", line 1, in main\n"
              f"{worker_error}\n")
    cause = FakeThrowable("org.apache.spark.api.python.PythonException", worker)
    top = FakeThrowable("org.apache.spark.SparkException",
                        "Job aborted due to stage failure: Task 0 in stage 5.0 failed 1 times, "
                        f"most recent failure: {worker}", cause)
    return FakePy4JError(top, "An error occurred while calling o123.collect.\n: "
                         "org.apache.spark.SparkException: Job aborted\n\tat org.apache.spark."
                         "scheduler.DAGScheduler.failJobAndIndependentStages(DAGScheduler.scala:1)")


@pytest.mark.parametrize(("exc", "code", "fragment"), [
    (job_failure("OSError: [Errno 28] No space left on device: '/data/out.incomplete-1/x'"),
     7, "no space left on the device holding /data/out.incomplete-1/x"),
    (FakePy4JError(FakeThrowable("org.apache.spark.SparkException", "Job aborted", FakeThrowable(
        "java.io.IOException", "No space left on device")), "o9.parquet"), 7, "no space left"),
    (FakePy4JError(FakeThrowable("java.nio.file.AccessDeniedException",
                                 "/data/in/Apple: Permission denied"), "o52.load"),
     3, "cannot read /data/in/Apple: permission denied"),
    (job_failure('botocore.exceptions.EndpointConnectionError: Could not connect to the endpoint '
                 'URL: "http://127.0.0.1:1/b/in/x.jpg"'), 7, "cannot reach the S3 endpoint"),
    (job_failure("botocore.exceptions.ClientError: An error occurred (SlowDown)"), 7,
     "failed in a Spark task (ClientError"),
    (job_failure("MemoryError"), 8, "out of memory"),
    (FakePy4JError(FakeThrowable("org.apache.spark.SparkException",
                                 "Python worker exited unexpectedly (crashed)"), "o1"),
     8, "a Spark Python worker crashed"),
    (FakePy4JError(FakeThrowable("java.lang.IllegalArgumentException",
                                 "spark.sql.shuffle.partitions should be > 0"), "o2"),
     2, "Spark refused a setting: spark.sql.shuffle.partitions"),
    (FakePy4JError(FakeThrowable("java.lang.NullPointerException", "boom"), "o3"),
     1, "internal error (NullPointerException: boom)"),
    (ValueError("something unforeseen"), 1,
     "internal error (ValueError: something unforeseen); please report"),
])
def test_each_family_is_one_line_with_its_exit_code(exc, code, fragment):
    failure = describe(exc, WHERE)
    line = failure.line("/logs/run.log")
    assert failure.exit_code == code
    assert fragment in line and "\n" not in line
    assert line.startswith("fruits-p8: error: ") and line.endswith("(full trace: /logs/run.log)")
    assert not any(mark in line for mark in TRACE_MARKS)


def test_the_s3_client_error_itself_says_what_to_do():
    failure = describe(EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
                       Where(input="s3://b/in", output="s3://b/out"))
    assert failure.exit_code == 7
    assert "cannot reach the S3 endpoint for s3://b/in" in failure.message
    assert "check --endpoint-url" in failure.message


def test_an_interrupt_anywhere_in_the_chain_wins():
    try:
        try:
            raise Interrupted(signal.SIGTERM)
        finally:  # clean-up that fails because the JVM is going away too
            raise FakePy4JError(FakeThrowable("java.lang.IllegalStateException", "stopped"), "o")
    except FakePy4JError as exc:
        failure = describe(exc, WHERE)
    assert failure.exit_code == 143 and "interrupted (SIGTERM)" in failure.message
    assert describe(KeyboardInterrupt(), WHERE).exit_code == 130


def test_our_own_errors_keep_their_line_and_name_the_log_only_with_a_cause():
    plain = describe(WeightsError("weights file not found: w.pth"), WHERE)
    assert plain.line("/l") == "fruits-p8: error: weights file not found: w.pth"
    try:
        raise StorageError("listing failed") from OSError(5, "I/O error")
    except StorageError as exc:
        assert describe(exc, WHERE).line("/l").endswith("(full trace: /l)")


def test_os_errors_of_this_process_are_one_plain_line():
    full = describe(OSError(errno.ENOSPC, "No space left on device", "/data/out/.lease"), WHERE)
    assert full.exit_code == 7 and "no space left on the device holding /data/out/.lease" in (
        full.message)
    denied = describe(PermissionError(13, "Permission denied", "/data/in/Kiwi"), WHERE)
    assert denied.exit_code == 3 and "cannot read /data/in/Kiwi" in denied.message


def test_the_jvm_refusal_is_its_own_words_without_class_names():
    assert refusal("WARNING: Using incubator modules: jdk.incubator.vector\n"
                   "Invalid maximum heap size: -Xmxlots\n"
                   "Error: Could not create the Java Virtual Machine.\n") == (
        "Invalid maximum heap size: -Xmxlots")
    assert refusal('Exception in thread "main" org.apache.spark.SparkException: Master must '
                   "either be yarn or start with spark, k8s, or local\n\tat org.apache.spark."
                   "deploy.SparkSubmit.error(SparkSubmit.scala:1)") == (
        "Master must either be yarn or start with spark, k8s, or local")
    assert refusal("Error: Could not create the Java Virtual Machine.\n") == (
        "Could not create the Java Virtual Machine.")
    assert refusal("") is None


# The command line: main() writes the line on stderr and the trace to the log ---------------

@pytest.fixture
def logs(tmp_path, monkeypatch):
    monkeypatch.setenv("FRUITS_P8_LOG_DIR", str(tmp_path / "logs"))
    return tmp_path / "logs"


def test_a_failure_from_spark_is_one_line_and_the_trace_is_in_the_named_log(
        logs, monkeypatch, capsys):
    def fail(args):
        raise job_failure("OSError: [Errno 28] No space left on device")

    monkeypatch.setattr(run_commands, "cmd_run", fail)
    assert main(["run"]) == 7
    err = capsys.readouterr().err
    log = one_error_line(err, "no space left on the device")
    assert log.parent == logs
    trace_in(log, "FakePy4JError", "DAGScheduler.failJobAndIndependentStages")


def test_an_unknown_failure_is_an_internal_error_line(logs, monkeypatch, capsys):
    def fail(args):
        raise RuntimeError("the unforeseen\nsecond line")

    monkeypatch.setattr(run_commands, "cmd_run", fail)
    assert main(["run"]) == 1
    log = one_error_line(capsys.readouterr().err,
                         "internal error (RuntimeError: the unforeseen); please report")
    trace_in(log, "second line")


def test_what_child_processes_print_goes_to_the_log_not_the_console(logs, monkeypatch, capfd):
    def noisy(args):
        subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write('jvm noise\\n')"],
                       check=True)
        print("stray python noise", file=sys.stderr)
        return 0

    monkeypatch.setattr(run_commands, "cmd_run", noisy)
    assert main(["run"]) == 0
    err = capfd.readouterr().err
    assert "noise" not in err
    (log,) = logs.glob("fruits-p8-*-run-*.log")
    text = log.read_text()
    assert "jvm noise" in text and "stray python noise" in text
    print("after", file=sys.stderr)  # stderr is the console again
    assert "after" in capfd.readouterr().err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_real_signal_stops_the_command_through_its_finally_blocks(
        logs, monkeypatch, capsys, signum):
    cleaned = []

    def long_command(args):
        try:
            os.kill(os.getpid(), signum)
            time.sleep(30)  # the handler raises here
        finally:
            cleaned.append(True)
        return 0

    before = [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)]
    monkeypatch.setattr(run_commands, "cmd_run", long_command)
    assert main(["run"]) == 128 + signum
    assert cleaned == [True]
    one_error_line(capsys.readouterr().err, f"interrupted ({signal.Signals(signum).name})")
    assert [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)] == before


def test_a_second_signal_does_not_cut_the_clean_up_short(logs, monkeypatch, capsys):
    cleaned = []

    def long_command(args):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(30)
        finally:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C again while cleaning up
            time.sleep(0.01)
            cleaned.append(True)
        return 0

    monkeypatch.setattr(run_commands, "cmd_run", long_command)
    assert main(["run"]) == 130 and cleaned == [True]
    one_error_line(capsys.readouterr().err, "interrupted (SIGINT)")


def test_logs_beyond_the_newest_are_pruned(tmp_path):
    from fruits_p8.run_log import open_run_log

    folder = tmp_path / "logs"
    folder.mkdir()
    for n in range(5):
        old = folder / f"fruits-p8-2020010{n}-000000-run-1.log"
        old.write_text("old")
        os.utime(old, (n, n))
    (folder / "notes.txt").write_text("mine")
    log = open_run_log(folder, "run", keep=3)
    log.close()
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["fruits-p8-20200103-000000-run-1.log", "fruits-p8-20200104-000000-run-1.log",
         log.path.name, "notes.txt"])


def test_the_log_folder_follows_the_environment(tmp_path):
    from fruits_p8.run_log import log_folder

    home = tmp_path / "home"
    assert log_folder({}, home) == home / ".local/state/fruits_p8/logs"
    assert log_folder({"XDG_STATE_HOME": "/s"}, home) == Path("/s/fruits_p8/logs")
    assert log_folder({"FRUITS_P8_LOG_DIR": "/l", "XDG_STATE_HOME": "/s"}, home) == Path("/l")
