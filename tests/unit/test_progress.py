from fruits_p8.progress import progress_line


def test_progress_line_reports_share_images_rate_and_eta():
    line = progress_line("featurize", 2, 8, 10.0, 800)
    assert line == "featurize: 2/8 tasks (25%), ~200/800 images, 20 images/s, ETA 30s"


def test_progress_line_without_items_or_tasks():
    assert progress_line("write", 1, 4, 3.0, None) == "write: 1/4 tasks (25%)"
    assert progress_line("x", 0, 0, 1.0, 10).startswith("x: 0/0 tasks")


def test_eta_in_minutes():
    assert progress_line("f", 1, 100, 60.0, 1000).endswith("ETA 99m00s")
