"""--master, --conf and --threads-per-task are checked before any JVM starts: a typo is one
line and exit 2, a task wider than a local master exit 5."""

import pytest

from fruits_p8.cli import main
from fruits_p8.errors import ParameterError, UsageError
from fruits_p8.spark_settings import check_settings, master_cores


@pytest.mark.parametrize(("master", "cores"), [
    ("local", 1), ("local[3]", 3), ("local[*]", 16), ("local[*,4]", 16), ("local[2, 4]", 2),
    ("local-cluster[2,3,1024]", 3), ("spark://h:7077", None), ("yarn", None),
    ("k8s://https://h:443", None),
])
def test_masters_spark_takes(master, cores):
    assert master_cores(master, 16) == cores


@pytest.mark.parametrize("master", ["local[0]", "local[2,0]", "nonsense", "local[two]",
                                    "spark:/h", "LOCAL", ""])
def test_masters_spark_refuses(master):
    with pytest.raises(UsageError):
        master_cores(master, 16)


@pytest.mark.parametrize(("conf", "error"), [
    ({"spark.driver.memory": "lots"}, UsageError),
    ({"spark.driver.memory": "4gb"}, UsageError),  # the JVM's -Xmx takes no "gb"
    ({"spark.executor.memory": "2 g"}, UsageError),
    ({"spark.task.cpus": "two"}, UsageError),
    ({"spark.sql.shuffle.partitions": "0"}, UsageError),
    ({"spark.task.cpus": "3"}, ParameterError),
    ({"spark.driver.memory": "4g", "spark.executor.memory": "4gb", "spark.task.cpus": "2",
      "spark.driver.maxResultSize": "0", "something.else": "anything"}, None),
])
def test_settings(conf, error):
    if error is None:
        check_settings("local[2]", conf, 16)
    else:
        with pytest.raises(error):
            check_settings("local[2]", conf, 16)


def test_under_spark_submit_the_cluster_decides_the_cores():
    check_settings("yarn", {"spark.task.cpus": "64"}, None)
    with pytest.raises(ParameterError):
        check_settings("local[*]", {"spark.task.cpus": "64"}, 8)


@pytest.mark.parametrize(("options", "code", "fragment"), [
    (["--master", "local[0]"], 2, "--master local[0] asks for 0 threads"),
    (["--master", "nonsense"], 2, "'nonsense' is not a Spark master"),
    (["--conf", "spark.driver.memory=lots"], 2, "spark.driver.memory=lots: not a memory size"),
    (["--master", "local[2]", "--conf", "spark.task.cpus=64"], 5,
     "spark.task.cpus=64 (--conf or --threads-per-task) asks 64 cores per task, but --master "
     "local[2] has 2"),
    (["--master", "local[2]", "--threads-per-task", "3"], 5, "asks 3 cores per task"),
])
def test_the_cli_refuses_them_in_one_line_before_the_jvm(tmp_path, monkeypatch, capsys,
                                                         options, code, fragment):
    import fruits_p8.spark as spark_module

    def no_jvm(*args, **kwargs):
        raise AssertionError("a JVM was about to start")

    monkeypatch.setenv("FRUITS_P8_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setattr(spark_module, "find_java", no_jvm)
    (tmp_path / "in").mkdir()
    argv = ["run", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), *options]
    assert main(argv) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"fruits-p8: error: {err[-1].removeprefix('fruits-p8: error: ')}"]
    assert fragment in err[0]


@pytest.mark.parametrize("option", ["--partitions", "--threads-per-task", "--batch-size"])
def test_counts_beyond_a_java_int_are_a_usage_line(option, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", option, str(2**31)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "expected a positive integer up to 2147483647" in err and "Traceback" not in err
