"""Make notebooks/*.ipynb from their percent-format sources, run them, check they agree.

    python scripts/notebooks.py build quickstart     # run quickstart.py, write quickstart.ipynb
    python scripts/notebooks.py build on_emr --local # the cluster notebook, run here (see LOCAL)
    python scripts/notebooks.py check                # each .ipynb has its .py's cells (exit 1)
    python scripts/notebooks.py html quickstart --screenshot  # build/notebooks/*.html (+ .png)

The `.py` (Jupytext percent format) is the source a reviewer reads and edits; the `.ipynb` is
made from it and carries the outputs of one run, so that it reads on a code host. A run uses
a kernel of this interpreter (its venv), registered in a temporary folder: never a `python3`
kernel found elsewhere on the machine. Parameters go in papermill's way: a code cell tagged
`injected-parameters` after the one tagged `parameters`. The committed copy leaves out the
stderr lines (the JVM's log set-up, BLAS fallback) and names the build's temporary folder
`<temporary folder>`; a cell's error fails the build instead.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
HTML_DIR = ROOT / "build" / "notebooks"
KERNEL = "fruits-p8-venv"
TIMEOUT_S = 900  # one cell; the featurizing cell of a 360-photo run takes about a minute

# The cluster notebook run on this machine, for its committed outputs: the embedded photos in,
# a local session; `build` drops the injected cell so that the notebook reads s3:// again.
LOCAL = {"MASTER": "local[*,4]", "K": 20}
# What the committed outputs say instead of the build's temporary folder (a path of the machine
# that built them, different on each build).
TEMPORARY = "<temporary folder>"


def source_of(name: str) -> Path:
    """notebooks/<name>.py, the file the notebook is made from."""
    return NOTEBOOKS / f"{name}.py"


def from_source(source: Path):
    """The notebook the percent-format file describes (no outputs)."""
    import jupytext

    notebook = jupytext.read(source, fmt="py:percent")
    notebook.metadata.get("jupytext", {}).pop("text_representation", None)  # as JupyterLab saves
    for i, cell in enumerate(notebook.cells):  # ids by position: a rebuild changes no id
        cell.id = f"cell-{i:02d}"
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                       "language": "python"}
    return notebook


def code_of(cell) -> tuple[str, str]:
    """What must agree between a source and its .ipynb: a cell's type and text."""
    return cell.cell_type, cell.source.strip()


def ours(notebook) -> list:
    """The cells of the source: without a papermill-style injected-parameters cell."""
    return [c for c in notebook.cells
            if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]


def out_of_sync(source: Path) -> str | None:
    """Why the .ipynb beside a percent-format source lacks its cells, or None when it has them."""
    import nbformat

    made = source.with_suffix(".ipynb")
    if not made.is_file():
        return f"{made.name} is missing: python scripts/notebooks.py build {source.stem}"
    want = [code_of(c) for c in from_source(source).cells]
    have = [code_of(c) for c in ours(nbformat.read(made, as_version=4))]
    if want == have:
        return None
    first = next((i for i, (a, b) in enumerate(zip(want, have, strict=False)) if a != b),
                 min(len(want), len(have)))
    return (f"{made.name} differs from {source.name} from cell {first + 1} "
            f"({len(have)} cells vs {len(want)}): python scripts/notebooks.py build "
            f"{source.stem}")


def with_parameters(notebook, parameters: Mapping[str, object]):
    """The notebook with papermill's injected-parameters cell after its `parameters` cell."""
    import nbformat

    if not parameters:
        return notebook
    lines = ["# Parameters of this run (injected after the `parameters` cell)"]
    lines += [f"{key} = {value!r}" for key, value in parameters.items()]
    cell = nbformat.v4.new_code_cell("\n".join(lines))
    cell.metadata["tags"] = ["injected-parameters"]
    tagged = [i for i, c in enumerate(notebook.cells)
              if "parameters" in c.get("metadata", {}).get("tags", [])]
    notebook.cells.insert(tagged[0] + 1 if tagged else 0, cell)
    return notebook


def execute(notebook, cwd: Path, env: Mapping[str, str] | None = None,
            timeout: int = TIMEOUT_S):
    """Run every cell in a kernel of this interpreter; a cell's error raises CellExecutionError."""
    from ipykernel.kernelspec import install
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    with tempfile.TemporaryDirectory(prefix="fruits_p8-kernel-") as prefix:
        install(kernel_name=KERNEL, prefix=prefix, display_name="fruits_p8 (this venv)")
        specs = KernelSpecManager(kernel_dirs=[str(Path(prefix, "share", "jupyter", "kernels"))])
        manager = KernelManager(kernel_name=KERNEL, kernel_spec_manager=specs,
                                connection_file=str(Path(prefix, "connection.json")))
        client = NotebookClient(notebook, km=manager, timeout=timeout, kernel_name=KERNEL,
                                resources={"metadata": {"path": str(cwd)}})
        client.execute(**({} if env is None else {"env": dict(env)}))
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                       "language": "python"}
    return notebook


def shape(notebook) -> list[tuple[str, str, tuple[str, ...]]]:
    """Per cell: type, text, and the kinds of output it gave (stdout, image/png, text/html..)."""
    found = []
    for cell in ours(notebook):
        kinds: set[str] = set()
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                kinds.add(output.name)
            elif output.output_type in ("display_data", "execute_result"):
                kinds.update(k for k in output.data if k != "text/plain")
            else:
                kinds.add(output.output_type)
        found.append((cell.cell_type, cell.source.strip(), tuple(sorted(kinds - {"stderr"}))))
    return found


def without_folder(notebook, folder: Path) -> None:
    """Write `folder` as TEMPORARY in every text output (streams, text/plain, text/html)."""
    names = sorted({str(folder.resolve()), str(folder)}, key=len, reverse=True)

    def scrub(text: str) -> str:
        for name in names:
            text = text.replace(name, TEMPORARY)
        return text

    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if "text" in output:
                output.text = scrub(output.text)
            for kind, value in output.get("data", {}).items():
                if isinstance(value, str) and kind.startswith("text/"):
                    output.data[kind] = scrub(value)


def build(name: str, local: bool) -> Path:
    """Run notebooks/<name>.py as a notebook and write notebooks/<name>.ipynb with its outputs."""
    import nbformat

    from fruits_p8 import EMBEDDED_SAMPLE

    notebook = from_source(source_of(name))
    with tempfile.TemporaryDirectory(prefix="fruits_p8-notebook-") as work:
        parameters: dict[str, object] = {}
        if local:
            parameters = {"INPUT": str(EMBEDDED_SAMPLE), "OUTPUT": f"{work}/features", **LOCAL}
        execute(with_parameters(notebook, parameters), Path(work))
        without_folder(notebook, Path(work))
    notebook.cells = ours(notebook)
    for cell in notebook.cells:  # the JVM's log set-up and BLAS fallback lines: not the story
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if o.get("name") != "stderr"]
    target = NOTEBOOKS / f"{name}.ipynb"
    nbformat.write(notebook, target)
    return target


def chromium() -> str | None:
    """A headless Chromium on PATH, if any."""
    names = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome")
    return next((found for name in names if (found := shutil.which(name))), None)


def html(name: str, screenshot: bool, folder: Path = HTML_DIR) -> Path:
    """notebooks/<name>.ipynb as one HTML page (nbconvert), or a headless-Chromium PNG of it."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "nbconvert", "--to", "html", "--output-dir",
                    str(folder), str(NOTEBOOKS / f"{name}.ipynb")], check=True,
                   capture_output=True, timeout=300)
    page = folder / f"{name}.html"
    if not screenshot:
        return page
    browser = chromium()
    if browser is None:
        raise SystemExit("no headless Chromium on PATH (apt install chromium-headless-shell)")
    png = folder / f"{name}.png"
    subprocess.run([browser, "--no-sandbox", "--headless", "--disable-gpu", "--hide-scrollbars",
                    f"--screenshot={png}", "--window-size=1280,4800", page.as_uri()],
                   check=True, capture_output=True, timeout=120)
    return png


def main(argv: list[str] | None = None) -> int:
    """The command line: build, check or html."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    made = commands.add_parser("build", help="run <name>.py, write <name>.ipynb with outputs")
    made.add_argument("name")
    made.add_argument("--local", action="store_true",
                      help=f"inject INPUT=embedded photos, a temporary OUTPUT and {LOCAL}")
    commands.add_parser("check", help="every notebooks/*.ipynb holds its .py's cells")
    page = commands.add_parser("html", help="nbconvert to build/notebooks/<name>.html")
    page.add_argument("name")
    page.add_argument("--screenshot", action="store_true", help="and a PNG of it (Chromium)")
    args = parser.parse_args(argv)
    if args.command == "build":
        print(build(args.name, args.local))
    elif args.command == "html":
        print(html(args.name, args.screenshot))
    else:
        problems = [p for s in sorted(NOTEBOOKS.glob("*.py")) if (p := out_of_sync(s))]
        print("\n".join(problems) or "notebooks in sync with their sources")
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
