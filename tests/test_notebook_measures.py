"""benchmarks/notebook_measures.py: which lines count as bookkeeping, when a cell is collapsed, output lengths."""
import importlib.util
import json

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from conftest import REPO_ROOT

spec = importlib.util.spec_from_file_location("notebook_measures", REPO_ROOT / "benchmarks" / "notebook_measures.py")
measures = importlib.util.module_from_spec(spec)
spec.loader.exec_module(measures)

SETUP = 'COURSE_VERSION = "0.1.0"\ntry:\n    import helpers\nexcept ModuleNotFoundError:\n    %pip install -q x'
START = ("import torch\nfrom helpers.course import start_lesson\n\n"
         "run = start_lesson(\n    '01_x', profile=PROFILE)")
LESSON = "model = torch.nn.Linear(2, 1).to(run.device)   # uses run: still lesson code\nprint(model)"
MARKED = "# NBVAL_CHECK_OUTPUT\nprint(1 + 1)"
RECORD = "metrics = run.record(model=model,\n                     test=test)\nprint('saved', metrics)"
EXPORT = "from helpers.export import export_bundle\nbundle = export_bundle(model)\nbundle"


def _notebook(collapse_record=False):
    record = new_code_cell(RECORD)
    if collapse_record:
        record.metadata.update({"jupyter": {"source_hidden": True}, "cellView": "form"})
    cells = [new_markdown_cell("# a lesson"), new_code_cell(SETUP), new_code_cell(START), new_code_cell(LESSON),
             new_code_cell(MARKED), record, new_code_cell(EXPORT)]
    cells[3].outputs = [new_output("stream", name="stderr", text="epoch 1 10%\repoch 1 50%\repoch 1 100%\n"),
                        new_output("stream", name="stdout", text="Linear(...)\n")]
    cells[4].outputs = [new_output("display_data", data={"image/png": "iVBOR", "text/plain": "<Figure>\n1\n2"})]
    notebook = new_notebook()
    notebook.cells = cells
    return notebook


def test_each_kind_of_bookkeeping_is_counted_with_all_its_lines():
    row = measures.measure(_notebook(), "01_x")
    # set-up: 5 lines of the set-up cell, the course import and the 2-line start_lesson call
    assert row["visible_by_kind"] == {"setup": 8, "record": 3, "export": 3, "marker": 1}
    assert row["code_lines"] == 5 + 4 + 2 + 2 + 3 + 3      # blank lines do not count
    assert row["visible_bookkeeping"] == 15 and row["collapsed_bookkeeping"] == 0
    assert abs(row["share"] - 15 / 19) < 1e-9


def test_collapsed_cells_hide_their_bookkeeping_only_when_hidden_in_jupyter_and_colab():
    row = measures.measure(_notebook(collapse_record=True), "01_x")
    assert row["visible_by_kind"]["record"] == 0 and row["collapsed_bookkeeping"] == 3
    half = _notebook()
    half.cells[5].metadata["jupyter"] = {"source_hidden": True}   # hidden in Jupyter, shown in Colab
    assert measures.measure(half, "01_x")["visible_by_kind"]["record"] == 3


def test_longest_output_counts_every_progress_redraw_and_no_figure_text():
    notebook = _notebook()
    row = measures.measure(notebook, "01_x")
    assert row["longest_output_lines"] == 4          # three redraws of the bar + the printed model
    assert row["longest_output_cell"] == notebook.cells[3].id


def test_main_prints_a_table_and_writes_json(tmp_path, capsys):
    path = tmp_path / "01_x.ipynb"
    nbformat.write(_notebook(), path)
    out = tmp_path / "measures.json"
    assert measures.main([str(path), "--out", str(out)]) == 0
    assert "| 01_x | 19 | 15 (8/3/3/1) | 78.9% | 0 | 4 (" in capsys.readouterr().out
    assert json.loads(out.read_text())["notebooks"][0]["visible_bookkeeping"] == 15


def test_rev_lists_the_notebooks_committed_at_that_revision():
    names = [path.name for path in measures.course_notebooks("HEAD")]
    assert "01_simple_rnn.ipynb" in names and all(measures.NOTEBOOK_NAME.fullmatch(name) for name in names)
    row = measures.measure(measures.read_notebook(measures.ROOT / "notebooks" / "01_simple_rnn.ipynb", "HEAD"), "01")
    assert row["code_lines"] > 0
