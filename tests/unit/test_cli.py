import pytest

from fruits_p8.cli import build_parser, main


def test_help_lists_the_commands_and_run_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--input", "--output", "--k", "--variance", "--model", "--weights",
                   "--batch-size", "--precision", "--partitions", "--limit", "--master",
                   "--overwrite"):
        assert option in text


@pytest.mark.parametrize(
    "argv,fragment",
    [
        (["run", "--k", "0"], "positive integer"),
        (["run", "--k", "5", "--variance", "0.9"], "not allowed with"),
        (["run", "--variance", "2"], "(0, 1]"),
        (["run", "--model", "vgg"], "invalid choice"),
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


def test_existing_output_is_refused_before_any_work(tmp_path, capsys):
    (tmp_path / "in" / "A").mkdir(parents=True)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "_SUCCESS").touch()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").touch()
    for out in ("out", "mine"):
        code = main(["run", "--input", str(tmp_path / "in"), "--output", str(tmp_path / out)])
        assert code == 4
        assert "--overwrite" in capsys.readouterr().err


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


def test_parser_builds():
    assert build_parser().prog == "fruits-p8"


def test_missing_weights_file_is_exit_6_before_spark(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    code = main(["run", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "o"),
                 "--weights", str(tmp_path / "w.pth")])
    assert code == 6
    assert capsys.readouterr().err.strip() == (
        f"fruits-p8: error: weights file not found: {tmp_path / 'w.pth'}")
