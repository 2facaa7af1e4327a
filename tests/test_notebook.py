"""examples/notebook.ipynb, executed in a real Jupyter kernel (nbclient + ipykernel)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

# Once (tests/conftest.py): a real kernel costs seconds; the IPython integration is the same code.
pytestmark = pytest.mark.once

nbformat = pytest.importorskip("nbformat", reason="the notebook test needs the test dependency group")
nbclient = pytest.importorskip("nbclient", reason="the notebook test needs the test dependency group")

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "notebook.ipynb"


def text_of(cell: Any) -> str:
    parts = []
    for output in cell.outputs:
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type == "execute_result":
            parts.append(output.data.get("text/plain", ""))
    return "".join(parts)


def test_notebook_runs_in_a_kernel_with_the_expected_outputs(tmp_path: Path) -> None:
    """Every cell runs; the README example, a function from an earlier cell and the word count agree."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    for cell in code:
        assert not any(o.output_type == "error" for o in cell.outputs), cell.source
    readme = text_of(code[1]).splitlines()
    assert readme == ["4953", "100 ['key_0', 'key_1', 'key_2']"]
    assert text_of(code[3]).strip() == str(sum(i * i for i in range(100)))
    assert "same as the plain loop: True" in text_of(code[4])
    bar = code[5]
    assert text_of(bar).strip() == "20"
    widgets = [o for o in bar.outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert widgets, "progress=True did not show the notebook widget"


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_what_workers_print_shows_in_the_cell_in_order(tmp_path: Path, method: str) -> None:
    """A cell's loop prints from worker processes: the cell shows the plain loop's lines, in
    its order (a kernel's sys.stdout is its own object: spawned workers printed to the
    kernel's terminal, where the notebook never shows them)."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("%load_ext paraloop"),
        nbformat.v4.new_code_cell(
            "import sys, time\n"
            "from paraloop import ParaLoop\n"
            f"for i in ParaLoop(range(30), caller_runs=False, start_method={method!r}, chunksize=3):\n"
            "    time.sleep(0.001)\n"
            "    print('line', i)\n"
            "    if i % 10 == 0:\n"
            "        print('tenth', i, file=sys.stderr)\n"
        ),
    ]
    client = nbclient.NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    cell = notebook.cells[1]
    assert not any(o.output_type == "error" for o in cell.outputs), cell.outputs
    streams: dict[str, str] = {}
    for output in cell.outputs:
        if output.output_type == "stream":
            streams[output.name] = streams.get(output.name, "") + output.text
    assert streams.get("stdout", "").splitlines() == [f"line {i}" for i in range(30)]
    assert streams.get("stderr", "").splitlines() == [f"tenth {i}" for i in (0, 10, 20)]
