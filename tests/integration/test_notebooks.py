"""The notebooks: each .ipynb holds its percent-format source's cells, runs end to end in a
kernel of this venv, gives the outputs it was committed with (same cells, same kinds of
output: text, tables, figures), renders to HTML with its plots; quickstart.py runs as a script.

The Jupyter packages are the `notebook` extra (`make setup`, tox); `make test`'s PySpark 3.5
run beside the main one leaves this module out (Makefile)."""

import base64
import copy
import importlib.util
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient.exceptions import CellExecutionError
from PIL import Image

from fruits_p8.config import EMBEDDED_SAMPLE

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
_spec = importlib.util.spec_from_file_location("notebooks_script",
                                               ROOT / "scripts" / "notebooks.py")
tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tool)

TIMEOUT_S = 600  # a cell; the whole notebook on 36 photos takes well under that


def committed(name: str):
    return nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)


def fresh(notebook):
    """The committed notebook with its outputs cleared: what a reader would run."""
    notebook = copy.deepcopy(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return notebook


def text_of(notebook) -> str:
    return "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code"
                   for o in c.outputs if o.output_type == "stream" and o.name == "stdout")


def kinds(notebook, kind: str) -> list[int]:
    """Which cells (by position among the source's cells) show output of this kind."""
    return [i for i, (_, _, found) in enumerate(tool.shape(notebook)) if kind in found]


@pytest.mark.parametrize("source", sorted(NOTEBOOKS.glob("*.py")), ids=lambda p: p.stem)
def test_each_notebook_holds_the_cells_of_its_source(source):
    assert tool.out_of_sync(source) is None


def test_the_sync_check_sees_an_edited_source_and_a_missing_notebook(tmp_path):
    source = tmp_path / "quickstart.py"
    text = (NOTEBOOKS / "quickstart.py").read_text()
    source.write_text(text.replace("K = 8", "K = 9"))
    assert "quickstart.ipynb is missing" in tool.out_of_sync(source)
    shutil.copy(NOTEBOOKS / "quickstart.ipynb", tmp_path)
    assert re.match(r"quickstart\.ipynb differs from quickstart\.py from cell 2 ",
                    tool.out_of_sync(source))
    source.write_text(text)
    assert tool.out_of_sync(source) is None


def test_the_committed_notebooks_carry_their_outputs_plots_and_tables():
    quickstart, on_emr = committed("quickstart"), committed("on_emr")
    assert len(kinds(quickstart, "image/png")) == 2 and len(kinds(quickstart, "text/html")) == 1
    assert "360 images featurized, 0 errors, 1280 features each" in text_of(quickstart)
    assert len(kinds(on_emr, "text/html")) == 1
    assert re.search(r"accuracy \d+\.\d% on \d+ held-out images", text_of(on_emr))
    for notebook in (quickstart, on_emr):  # what failed is not committed
        assert not [o for c in notebook.cells for o in c.get("outputs", [])
                    if o.output_type == "error"]
    # the cluster notebook reads s3:// and joins the cluster's session unless told otherwise
    parameters = next(c for c in on_emr.cells if "parameters" in c.metadata.get("tags", []))
    assert re.search(r'^INPUT = "s3://', parameters.source, re.M)
    assert re.search(r"^MASTER = None\b", parameters.source, re.M)
    assert "SparkSession.builder.getOrCreate()" in (NOTEBOOKS / "on_emr.py").read_text()
    for name in ("quickstart", "on_emr"):
        imports = re.findall(r"^\s*(?:from|import) (fruits_p8\S*)",
                             (NOTEBOOKS / f"{name}.py").read_text(), re.M)
        assert set(imports) == {"fruits_p8"}  # the public API only


def test_the_committed_outputs_name_no_folder_of_the_machine_that_ran_them():
    leaks = re.compile(r"(/tmp/|/var/folders/|/home/|/root/|/work/|" + re.escape(str(ROOT)) + ")")
    for name in ("quickstart", "on_emr"):
        found = [leak.group(0) for cell in committed(name).cells
                 for output in cell.get("outputs", [])
                 for text in [output.get("text", ""), *output.get("data", {}).values()]
                 if isinstance(text, str) and (leak := leaks.search(text))]
        assert not found, (name, found)


def test_a_build_writes_its_temporary_folder_as_a_placeholder(tmp_path):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)")])
    notebook.cells[0].outputs = [
        nbformat.v4.new_output("stream", name="stdout", text=f"output: {tmp_path}/features\n"),
        nbformat.v4.new_output("execute_result", data={"text/plain": f"'{tmp_path}/x'"})]
    tool.without_folder(notebook, tmp_path)
    texts = [notebook.cells[0].outputs[0].text,
             notebook.cells[0].outputs[1].data["text/plain"]]
    assert texts == [f"output: {tool.TEMPORARY}/features\n", f"'{tool.TEMPORARY}/x'"]


def test_the_kernel_is_this_interpreter_whatever_kernels_the_machine_has(tmp_path, monkeypatch):
    decoys = tmp_path / "jupyter"
    for name in ("python3", tool.KERNEL):  # kernels of another Python, found first on the path
        spec = decoys / "kernels" / name
        spec.mkdir(parents=True)
        (spec / "kernel.json").write_text(
            '{"argv": ["/bin/false", "{connection_file}"], "display_name": "decoy", '
            '"language": "python"}')
    monkeypatch.setenv("JUPYTER_PATH", str(decoys))
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("import sys; print(sys.executable)")])
    ran = tool.execute(notebook, tmp_path, timeout=120)
    assert ran.cells[0].outputs[0].text.strip() == sys.executable


def test_a_cell_that_raises_fails_the_run(tmp_path):
    notebook = fresh(committed("quickstart"))
    broken = nbformat.v4.new_code_cell("raise ValueError('a broken cell')")
    notebook.cells.insert(2, broken)  # after the parameters cell, before Spark starts
    with pytest.raises(CellExecutionError, match="a broken cell"):
        tool.execute(notebook, tmp_path, timeout=120)
    later = [c for c in notebook.cells[3:] if c.cell_type == "code"]
    assert later and all(c.execution_count is None and not c.outputs for c in later)


@pytest.mark.spark
@pytest.mark.tensorflow
def test_the_quickstart_notebook_runs_and_gives_the_committed_outputs(tmp_path, cache_dir):
    env = {**os.environ, "QUICKSTART_FIGURES": str(tmp_path / "figures"),
           "QUICKSTART_PER_LABEL": "2", "FRUITS_P8_CACHE": str(cache_dir)}
    ran = tool.execute(fresh(committed("quickstart")), tmp_path, env=env, timeout=TIMEOUT_S)
    assert tool.shape(ran) == tool.shape(committed("quickstart"))
    out = text_of(ran)
    assert "36 images featurized, 0 errors, 1280 features each" in out
    assert re.search(r"accuracy \d+\.\d% on \d+ held-out images", out)
    for name in ("pca_scatter.png", "explained_variance.png"):
        Image.open(tmp_path / "figures" / name).verify()


@pytest.mark.spark
@pytest.mark.tensorflow
def test_the_cluster_notebook_runs_here_on_local_files(tmp_path, small_input, cache_dir):
    out = tmp_path / "features"
    parameters = {"INPUT": str(small_input), "OUTPUT": str(out), "MASTER": "local[2]", "K": 5}
    env = {**os.environ, "FRUITS_P8_CACHE": str(cache_dir)}
    ran = tool.execute(tool.with_parameters(fresh(committed("on_emr")), parameters), tmp_path,
                       env=env, timeout=TIMEOUT_S)
    assert tool.shape(ran) == tool.shape(committed("on_emr"))
    text = text_of(ran)
    assert "40 files: 40 featurized, 0 errors; k=5" in text
    assert re.search(r"accuracy \d+\.\d% on \d+ held-out images \(\d+ to fit, 2 labels, k=5\)",
                     text)
    assert (out / "_SUCCESS").is_file() and (out / "run.json").is_file()


def test_the_quickstart_renders_to_html_with_its_plots(tmp_path):
    page = tool.html("quickstart", screenshot=False, folder=tmp_path)
    html = page.read_text(encoding="utf-8")
    pngs = re.findall(r'<img[^>]+src="data:image/png;base64,([^"]+)"', html)
    assert len(pngs) == 2
    sizes = [Image.open(io.BytesIO(base64.b64decode(png))).size for png in pngs]
    assert all(w >= 400 and h >= 300 for w, h in sizes), sizes
    assert "<table" in html and "Apple Braeburn" in html  # the per-label table


@pytest.mark.skipif(tool.chromium() is None, reason="no headless Chromium on PATH")
def test_the_screenshot_of_the_page_shows_the_plots(tmp_path):
    import matplotlib.pyplot as plt
    import numpy as np

    shot = Image.open(tool.html("quickstart", screenshot=True, folder=tmp_path))
    pixels = np.asarray(shot.convert("RGB")).reshape(-1, 3).astype(int)
    # the scatter plot's 18 labels take tab20's first 18 colours; the page's text, code
    # highlighting and table use none of them (but its two greys, left out here)
    labels = [i for i in range(18) if i not in (14, 15)]
    shown = [i for i in labels
             if (np.abs(pixels - np.round(np.array(plt.cm.tab20(i)[:3]) * 255)).max(axis=1)
                 <= 4).sum() >= 50]
    assert len(shown) >= 12, shown


@pytest.mark.spark
@pytest.mark.tensorflow
def test_the_quickstart_runs_as_a_script(tmp_path, cache_dir):
    env = {**os.environ, "QUICKSTART_FIGURES": str(tmp_path / "figures"),
           "QUICKSTART_PER_LABEL": "2", "FRUITS_P8_CACHE": str(cache_dir), "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, str(NOTEBOOKS / "quickstart.py")],
                          capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "36 images featurized, 0 errors, 1280 features each" in done.stdout
    assert re.search(r"accuracy \d+\.\d% on \d+ held-out images", done.stdout)
    for name in ("pca_scatter.png", "explained_variance.png"):
        Image.open(tmp_path / "figures" / name).verify()
    assert f"files under {EMBEDDED_SAMPLE.name}/" in done.stdout
