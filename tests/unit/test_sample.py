import io
import re

from PIL import Image

from fruits_p8.sample import STYLES, fruit_jpeg, image_name, make_sample, sample_size


def test_same_arguments_same_bytes_and_different_images_differ():
    a = fruit_jpeg(STYLES[0], "Test", 3)
    assert a == fruit_jpeg(STYLES[0], "Test", 3)
    assert a != fruit_jpeg(STYLES[0], "Test", 4)
    assert a != fruit_jpeg(STYLES[0], "Training", 3)
    assert a != fruit_jpeg(STYLES[0], "Test", 3, seed=1)


def test_layout_and_names_follow_fruits_360(tmp_path):
    splits = {"Training": 4, "Test": 2}
    count = make_sample(tmp_path, styles=STYLES[:3], splits=splits)
    assert count == sample_size(splits, STYLES[:3]) == 18
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.jpg"))
    assert len(files) == 18
    assert "Test/Apple Braeburn/0_100.jpg" in files
    assert "Training/Banana/r_1_100.jpg" in files
    assert all(re.fullmatch(r"(Training|Test)/[^/]+/(r2?_)?\d+_100\.jpg", f) for f in files)


def test_images_are_100px_rgb_jpegs_on_white():
    image = Image.open(io.BytesIO(fruit_jpeg(STYLES[2], "Test", 0)))
    assert image.format == "JPEG" and image.mode == "RGB" and image.size == (100, 100)
    corners = [image.getpixel(p) for p in ((0, 0), (99, 0), (0, 99), (99, 99))]
    assert all(min(c) > 230 for c in corners)


def test_rewriting_keeps_identical_files(tmp_path):
    make_sample(tmp_path, styles=STYLES[:1], splits={"Test": 1})
    path = tmp_path / "Test" / STYLES[0].label / image_name(0)
    before = path.stat().st_mtime_ns
    make_sample(tmp_path, styles=STYLES[:1], splits={"Test": 1})
    assert path.stat().st_mtime_ns == before
