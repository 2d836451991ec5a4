import pytest

from fruits_p8.cli import build_parser, main, run_config, summary


def test_help_lists_the_commands_and_run_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--input", "--output", "--k", "--variance", "--backbone", "--weights",
                   "--batch-size", "--precision", "--partitions", "--limit", "--master",
                   "--overwrite"):
        assert option in text


@pytest.mark.parametrize(
    "argv,fragment",
    [
        (["run", "--k", "0"], "positive integer"),
        (["run", "--k", "5", "--variance", "0.9"], "not allowed with"),
        (["run", "--variance", "2"], "(0, 1]"),
        (["run", "--backbone", "vgg"], "invalid choice"),
        (["run", "--batch-size", "many"], "positive integer"),
        (["run", "--precision", "float16"], "invalid choice"),
    ],
)
def test_bad_options_exit_2_with_a_short_message(argv, fragment, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err


def test_missing_input_is_one_line_and_exit_3(tmp_path, capsys):
    code = main(["run", "--input", str(tmp_path / "nope"), "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3
    assert err[-1] == f"fruits-p8: error: input not found: {tmp_path / 'nope'}"


def finished_output(folder):
    folder.mkdir(parents=True)
    for name in ("_FRUITS_P8", "_SUCCESS", "run.json"):
        (folder / name).write_text("{}")


def test_existing_output_is_refused_before_any_work(tmp_path, capsys):
    (tmp_path / "in" / "A").mkdir(parents=True)
    finished_output(tmp_path / "out")
    code = main(["run", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")])
    assert code == 4
    assert "use --overwrite" in capsys.readouterr().err


@pytest.mark.parametrize("flag", [[], ["--overwrite"], ["--incremental"]])
def test_a_folder_of_the_users_is_never_replaced_whatever_the_flags(tmp_path, capsys, flag):
    (tmp_path / "in" / "A").mkdir(parents=True)
    finished_output(tmp_path / "out")
    (tmp_path / "out" / "notes.txt").write_text("mine")
    code = main(["run", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"),
                 *flag])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 4
    assert len(err) == 1 and "notes.txt" in err[0] and "never replaced" in err[0]
    assert (tmp_path / "out" / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(("output", "fragment"), [
    ("victim", "holds the input"),
    ("victim/imgs", "is the input folder"),
    ("victim/imgs/Apple/out", "is inside the input"),
])
def test_an_output_at_above_or_inside_the_input_is_refused_before_any_work(
        tmp_path, capsys, output, fragment):
    image = tmp_path / "victim" / "imgs" / "Apple" / "1_100.jpg"
    image.parent.mkdir(parents=True)
    image.write_bytes(b"\xff\xd8 not much of a jpeg")
    code = main(["run", "--input", str(tmp_path / "victim" / "imgs"), "--output",
                 str(tmp_path / output), "--overwrite"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and fragment in err[0]
    assert image.read_bytes() == b"\xff\xd8 not much of a jpeg"
    assert sorted(p.name for p in (tmp_path / "victim").iterdir()) == ["imgs"]


def test_an_output_reached_through_a_link_into_the_input_is_refused(tmp_path, capsys):
    (tmp_path / "in" / "A").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "in")
    code = main(["run", "--input", str(tmp_path / "in"), "--output",
                 str(tmp_path / "link" / "out")])
    assert code == 2
    assert "inside the input" in capsys.readouterr().err


def test_a_run_holding_the_output_makes_a_second_one_wait(tmp_path, capsys):
    from fruits_p8.io.output import LocalOutput

    (tmp_path / "in" / "A").mkdir(parents=True)
    first = LocalOutput(tmp_path / "out")
    first.acquire(replace=False)
    try:
        code = main(["run", "--input", str(tmp_path / "in"), "--output",
                     str(tmp_path / "out")])
    finally:
        first.release()
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 4
    assert len(err) == 1 and "being written by another run" in err[0]
    assert first.run_id in err[0]


def test_weights_uris_go_to_the_right_reader(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    code = main(["run", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "o"),
                 "--weights", f"file://{tmp_path}/w.pth"])
    assert code == 6
    assert f"weights file not found: file://{tmp_path}/w.pth" in capsys.readouterr().err
    code = main(["run", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "o"),
                 "--weights", "http://example.org/w.pth"])
    assert code == 6
    assert "give a local path, a file: URI or s3://" in capsys.readouterr().err


def test_k_above_feature_count_is_refused_before_any_work(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    code = main(["run", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "o"),
                 "--k", "5000"])
    assert code == 5
    assert "1280 features" in capsys.readouterr().err


def test_bad_conf_pair(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    code = main(["run", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "o"),
                 "--conf", "novalue"])
    assert code == 2 and "KEY=VALUE" in capsys.readouterr().err


def test_models_lists_both_backbones(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "efficientnet_lite0" in out and "mobilenet_v2" in out


def test_sample_command_writes_images(tmp_path, capsys):
    assert main(["sample", "--output", str(tmp_path), "--per-label", "1"]) == 0
    assert len(list(tmp_path.rglob("*.jpg"))) == 12
    assert "wrote 12 images" in capsys.readouterr().out


def test_every_run_option_reaches_the_config(tmp_path):
    argv = ["run", "--input", "in", "--output", "out", "--glob", "*.png", "--model",
            "mobilenet_v2", "--weights", "random", "--batch-size", "7", "--precision",
            "bfloat16", "--seed", "3", "--variance", "0.5", "--pca-solver", "spark",
            "--master", "local[1]", "--partitions", "5", "--threads-per-task", "2", "--conf",
            "a.b=c", "--limit", "9", "--overwrite", "--incremental", "--refit",
            "--region", "eu-west-1",
            "--endpoint-url", "http://127.0.0.1:9", "--io", "boto3", "--cache-dir",
            str(tmp_path), "--max-file-size", "2M", "--skip-hidden", "--image-size", "128"]
    config = run_config(build_parser().parse_args(argv), "in")
    assert config.to_dict() == {
        "input": "in", "output": "out", "glob": "*.png", "backbone": "mobilenet_v2",
        "weights": "random", "k": None, "variance": 0.5, "pca_solver": "spark",
        "batch_size": 7, "precision": "bfloat16", "partitions": 5, "limit": 9,
        "master": "local[1]", "threads_per_task": 2, "overwrite": True, "incremental": True,
        "fitted": None, "refit": True, "seed": 3, "cache_dir": str(tmp_path), "endpoint_url": "http://127.0.0.1:9",
        "region": "eu-west-1", "io": "boto3", "max_file_size": 2 * 2**20, "skip_hidden": True,
        "image_size": 128,
        "spark_conf": {"a.b": "c", "spark.task.cpus": "2"}}
    assert run_config(build_parser().parse_args(["run"]), "in").k == 200


def test_summary_rates_only_the_images_that_went_through_the_cnn():
    from fruits_p8.pipeline import RunResult

    report = {"model": {"weights": {"backbone": "b", "source": "s", "pretrained": True},
                        "precision": "float32", "feature_dim": 1024},
              "timings_s": {"total": 12.0, "featurize": 10.0},
              "counts": {"cnn_images": 50, "reused": 950},
              "pca": {"basis": "kept from the previous output out", "fitted_model": "out/model"}}
    text = summary(RunResult("out", 1000, 1000, 0, 8, 0.9, report))
    assert "features[1024], pca[8]" in text
    assert "50 images through the CNN, 5 images/s" in text
    assert "reused    the features of 950 unchanged images" in text
    assert "(kept from the previous output out)" in text and "basis     out/model" in text


def test_missing_weights_file_is_exit_6_before_spark(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    code = main(["run", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "o"),
                 "--weights", str(tmp_path / "w.pth")])
    assert code == 6
    assert capsys.readouterr().err.strip() == (
        f"fruits-p8: error: weights file not found: {tmp_path / 'w.pth'}")


def test_emr_weights_in_s3_are_read_by_the_driver_whatever_the_scheme(capsys):
    code = main(["emr", "plan", "--bucket", "b", "--input", "s3://b/in", "--output",
                 "s3://b/out", "--weights", "s3a://b/w.pth"])
    out = capsys.readouterr().out
    assert code == 0
    assert '"s3a://b/w.pth"' in out and "weights/w.pth" not in out



def test_a_refusal_of_the_machine_is_one_line_and_exit_7(monkeypatch, capsys):
    import fruits_p8.commands.run as run_commands

    def refuse(args):
        raise PermissionError(13, "Permission denied", "/data/.out.lease")

    monkeypatch.setattr(run_commands, "cmd_run", refuse)
    assert main(["run"]) == 7
    assert capsys.readouterr().err == (
        "fruits-p8: error: Permission denied: /data/.out.lease\n")
