"""Real Fruits 360 photos: the embedded sample (always) and the Test split in ../shared."""

import io
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from PIL import Image

from fruits_p8 import pipeline
from fruits_p8.cli import EMBEDDED_SAMPLE, main
from fruits_p8.errors import InputError
from fruits_p8.io.paths import label_from_path
from tests.conftest import REPO_ROOT, real_counts


def _files(root: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*") if p.is_file()}


def test_the_embedded_sample_is_18_labels_of_20_real_photos_under_2_mb():
    files = sorted(EMBEDDED_SAMPLE.rglob("*"))
    images = [p for p in files if p.is_file()]
    per_label = Counter(p.parent.name for p in images)
    assert len(per_label) == 18 and set(per_label.values()) == {20}
    assert {"Apple Braeburn", "Apple Red 1", "Tomato 1", "Tomato 4", "Banana"} <= set(per_label)
    assert all(p.suffix == ".jpg" and p.parent.parent == EMBEDDED_SAMPLE for p in images)
    assert sum(p.stat().st_size for p in images) <= 2_000_000
    for path in images:
        image = Image.open(io.BytesIO(path.read_bytes()))
        assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (100, 100))


def test_the_embedded_sample_carries_the_datasets_license_and_source():
    folder = EMBEDDED_SAMPLE.parent
    license_text = (folder / "LICENSE").read_text()
    assert "MIT License" in license_text
    assert "Copyright (c) 2017-2019 Mihai Oltean, Horea Muresan" in license_text
    readme = (folder / "README.md").read_text()
    assert "2019.05.06.1" in readme and "scripts/real_sample.py" in readme


def test_run_without_input_reads_the_embedded_sample_and_writes_nothing_there(
        tmp_path, monkeypatch, capsys):
    seen = []

    def stop(config, **_):
        seen.append(config)
        raise InputError("stopped before Spark")

    before = _files(EMBEDDED_SAMPLE.parent)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(pipeline, "run", stop)
    assert main(["run", "--output", str(tmp_path / "out")]) == 3
    assert [c.input for c in seen] == [str(EMBEDDED_SAMPLE)]
    assert list(tmp_path.iterdir()) == []  # no generated sample in data/
    assert _files(EMBEDDED_SAMPLE.parent) == before
    assert "stopped before Spark" in capsys.readouterr().err


def test_the_embedded_sample_is_the_documented_choice_copied_byte_for_byte(real_photos):
    done = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "real_sample.py"),
                           "--check", "--source", str(real_photos)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "360 files, as chosen and byte-identical" in done.stdout


def test_labels_of_every_real_photo_as_sparks_path_column_spells_it(real_photos):
    found: Counter[str] = Counter()
    names: Counter[str] = Counter()
    for folder, _, files in os.walk(real_photos):
        for name in files:
            path = f"file:{folder}/{name}"
            label = label_from_path(path, str(real_photos))
            assert label == Path(folder).name, path
            found[label] += 1
            names[name.split("_")[0] if name.count("_") == 2 else "plain"] += 1
    assert found == real_counts(real_photos)
    assert len(found) == 103 and sum(found.values()) == 17_845
    assert {"Apple Braeburn", "Pepper Green", "Tomato 1"} <= set(found)
    assert set(names) == {"plain", "r", "r2", "r3"}  # every name form the split has
