"""benchmarks/seed_study.py: which cells it runs, how it sets the seed, what it reports."""
import importlib.util
import json
from pathlib import Path

import pytest
from nbformat.v4 import new_code_cell, new_notebook
import nbformat

from conftest import REPO_ROOT
from helpers import run as runner

spec = importlib.util.spec_from_file_location("seed_study", REPO_ROOT / "benchmarks" / "seed_study.py")
seed_study = importlib.util.module_from_spec(spec)
spec.loader.exec_module(seed_study)

PARAMETERS = 'PROFILE = None\nDATA_DIR = None\nSEED = 1234\nRESULTS_DIR = None\n'
WRITE_METRICS = """
import json, pathlib
folder = pathlib.Path(RESULTS_DIR) / "09_fake"
folder.mkdir(parents=True)
beyond = {"test_accuracy": 0.9} if PROFILE == "full" else None
(folder / "metrics.json").write_text(json.dumps({"test_accuracy": SEED / 100, "beyond": beyond}))
"""


def _fake_lesson(folder):
    notebook = new_notebook()
    parameters = new_code_cell(PARAMETERS)
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [new_code_cell('if "google.colab" in sys.modules:\n    %pip install nothing'),
                      parameters, new_code_cell(WRITE_METRICS)]
    notebook.metadata["course"] = {"title": "fake", "published_accuracy": 50.0}
    nbformat.write(notebook, folder / "09_fake.ipynb")


def test_runs_each_seed_and_summarises(tmp_path, monkeypatch, capsys):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    _fake_lesson(notebooks)
    monkeypatch.setattr(runner, "default_notebook_dir", lambda: notebooks)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "seeds.json"
    result = seed_study.main(["--lesson", "9", "--seeds", "40,60,80", "--data-dir", str(tmp_path),
                              "--out", str(out)])
    assert json.loads(out.read_text()) == result
    assert [run["test_accuracy"] for run in result["runs"]] == [0.4, 0.6, 0.8]
    assert [run["beyond_test_accuracy"] for run in result["runs"]] == [0.9, 0.9, 0.9]
    assert result["summary"]["lesson"]["mean"] == pytest.approx(60.0)
    assert result["summary"]["lesson"]["sd"] == pytest.approx(20.0)
    assert (result["summary"]["lesson"]["min"], result["summary"]["lesson"]["max"]) == (40.0, 80.0)
    assert result["at_or_above_published"] == 2
    assert "reached by 2 of 3 seeds" in capsys.readouterr().out


def test_a_relative_out_is_the_callers_and_the_working_folder_is_restored(tmp_path, monkeypatch):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    _fake_lesson(notebooks)
    monkeypatch.setattr(runner, "default_notebook_dir", lambda: notebooks)
    monkeypatch.chdir(tmp_path)
    seed_study.main(["--lesson", "9", "--seeds", "40", "--data-dir", str(tmp_path), "--out", "out/seeds.json"])
    assert (tmp_path / "out" / "seeds.json").is_file()   # not notebooks/out/seeds.json, where the cells ran
    assert not (notebooks / "out").exists() and Path.cwd() == tmp_path


@pytest.mark.parametrize("argv, message", [
    (["--lesson", "42", "--data-dir", "."], "no notebook for lesson(s) 42"),
    (["--lesson", "5"], "pass --data-dir"),
    (["--lesson", "5", "--data-dir", ".", "--seeds", "1,two"], "--seeds takes integers"),
])
def test_bad_arguments_are_named(argv, message, monkeypatch, capsys):
    monkeypatch.delenv("SENTIMENT_DATA_DIR", raising=False)
    with pytest.raises(SystemExit) as stop:
        seed_study.main(argv)
    assert message in capsys.readouterr().err + str(stop.value.code)


def test_lesson_five_runs_its_training_and_record_cells_but_not_colab_set_up():
    # the record cell exports too, into the RESULTS_DIR the study sets (tests/test_course.py: an explicit
    # results folder takes the bundles), so the committed bundles stay untouched
    parameters, cells = seed_study.code_cells(REPO_ROOT / "notebooks" / "05_multiclass_questions.ipynb")
    assert "SEED = 1234" in parameters
    code = "\n".join(cells)
    assert "fit(" in code and "beyond_test" in code and "record(" in code
    assert "google.colab" not in code
