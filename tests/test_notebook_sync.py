"""One copy of the lesson code: helpers/lessons.py and the modules' saved-cells blocks are what the
notebooks' `#@save` cells give.

The notebooks define their models (and lesson 1 its training epoch) in cells a student can
edit; `python -m helpers.sync` copies the marked cells into helpers/lessons.py, and cells marked
`#@save <module>` (the vocabulary, batching, predict, ...) into that module's block, which the library
imports. These tests fail when a marked cell and the library differ, when a lesson stops marking its
code cells, when a piece moves to another module, and when the generator would accept a cell it must refuse.
"""
import ast
import importlib
import json

import pytest

from conftest import REPO_ROOT
from helpers import lessons, models, sync, training

NOTEBOOKS = REPO_ROOT / "notebooks"

# What each lesson must define in its own #@save cells (lesson 5 reuses lesson 4's CNN).
LESSON_CODE = {
    "01_simple_rnn.ipynb": {"SimpleRNN", "loss_and_correct", "train_epoch", "evaluate"},
    "02_upgraded_sentiment.ipynb": {"reverse_within_length", "PackedRNN", "PackedLSTM", "BiLSTM"},
    "03_faster_sentiment.ipynb": {"length_mask", "FastText"},
    "04_convolutional_sentiment.ipynb": {"CNN"},
    "05_multiclass_questions.ipynb": set(),
    "06_transformers_sentiment.ipynb": {"encoder_features", "BERTGRUSentiment", "PackedGRU", "GRUHead"},
}
# The key code beyond the models, in view where it is taught, in the module it belongs to (`#@save <module>`):
# name -> (notebook key, module). torch-free code stays in helpers.text (the Lambda handler's import), the
# appendices' code in their own modules.
SAVED_IN_MODULES = {
    "Vocab": ("01", "text"), "PadCollate": ("01", "batching"), "BucketBatchSampler": ("01", "batching"),
    "logits": ("01", "inference"), "probabilities": ("01", "inference"), "predict": ("01", "inference"),
    "embedding_matrix": ("02", "vectors"), "add_bigrams": ("03", "text"),
    "token_batches": ("06", "features"), "run_encoder": ("06", "features"), "export_onnx": ("07", "export"),
    "binarized": ("B_", "baselines"), "log_count_ratio": ("B_", "baselines"), "interpolate": ("B_", "baselines"),
    "NBSVM": ("B_", "baselines"), "masked_mean": ("C_", "fine_tuning"), "UpperLayersClassifier": ("C_", "fine_tuning"),
    "weight_decay_groups": ("C_", "fine_tuning"), "ScheduledOptimizer": ("C_", "fine_tuning"),
}


def code_cells(path):
    return [sync.cell_source(cell) for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]
            if cell["cell_type"] == "code"]


def helper_imports(source):
    """Names a cell imports from the course's helpers (`from helpers.x import a, b`)."""
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError:
        return set()
    return {alias.asname or alias.name for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("helpers")
            for alias in node.names}


def test_the_library_copy_is_what_the_notebooks_save():
    diff = sync.differences(NOTEBOOKS)
    assert diff == "", f"helpers/lessons.py differs from the notebooks; run python -m helpers.sync\n{diff}"


def test_every_lesson_marks_its_own_model_cells():
    notebooks = {path.name: path for path in sync.lesson_notebooks(NOTEBOOKS)}
    assert set(LESSON_CODE) <= set(notebooks), f"lessons missing: {set(LESSON_CODE) - set(notebooks)}"
    for name, path in notebooks.items():
        saved = {defined for cell in sync.saved_cells(path) for defined in cell.names}
        assert LESSON_CODE.get(name, set()) <= saved, f"{name} does not save {LESSON_CODE[name] - saved}"
        cells = code_cells(path)
        shadowed = saved & set().union(*(helper_imports(source) for source in cells))
        assert not shadowed, f"{name} imports {shadowed} from the helpers but also defines them"
        assert not any("show_source(" in source for source in cells), f"{name} still prints library source"


def test_the_key_code_is_saved_where_it_is_taught_into_its_own_module():
    saved = {name: (path.name[:2], cell.module) for path in sync.lesson_notebooks(NOTEBOOKS)
             for cell in sync.saved_cells(path) for name in cell.names}
    wrong = {name: saved.get(name) for name, place in SAVED_IN_MODULES.items() if saved.get(name) != place}
    assert not wrong, f"saved elsewhere (notebook, module) than {SAVED_IN_MODULES}: {wrong}"
    for name, (_, module) in SAVED_IN_MODULES.items():
        library = importlib.import_module(f"helpers.{module}")
        assert getattr(library, name).__module__ == library.__name__, f"helpers.{module}.{name} is not its own"


def test_lesson_5_uses_lesson_4s_cnn_from_the_library():
    path = next(path for path in sync.lesson_notebooks(NOTEBOOKS) if path.name.startswith("05_"))
    assert "CNN" in set().union(*(helper_imports(source) for source in code_cells(path)))


def test_the_library_runs_the_lessons_objects():
    assert models.CNN is lessons.CNN and models.GRUHead is lessons.GRUHead
    assert training.evaluate is lessons.evaluate and training.train_epoch is lessons.train_epoch
    assert training.loss_and_correct is lessons.loss_and_correct


def notebook(path, *sources):
    cells = [{"cell_type": "code", "id": f"c{index}", "metadata": {}, "outputs": [], "execution_count": None,
              "source": source} for index, source in enumerate(sources)]
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))


def test_a_changed_cell_is_reported_until_regenerated(tmp_path, capsys):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    target = tmp_path / "lessons.py"
    notebook(folder / "01_one.ipynb", "#@save\ndef double(x):\n    return 2 * x", "print(double(2))")
    assert sync.main(["--notebooks", str(folder), "--target", str(target)]) == 0
    assert "def double(x):\n    return 2 * x" in target.read_text()
    assert sync.main(["--check", "--notebooks", str(folder), "--target", str(target)]) == 0

    notebook(folder / "01_one.ipynb", "#@save\ndef double(x):\n    return x + x")
    assert sync.main(["--check", "--notebooks", str(folder), "--target", str(target)]) == 1
    assert "+    return x + x" in capsys.readouterr().err
    namespace = {}
    exec(sync.generate(folder), namespace)
    assert namespace["double"](3) == 6


@pytest.mark.parametrize("sources,message", [
    (["#@save\nprint('hello')"], "holds only def, class and constants"),
    (["#@save\nimport math\ndef f():\n    return math.pi"], "holds only def, class and constants"),
    (["#@save\ndef f():\n    return undefined_helper()"], "undefined_helper"),
    (["#@save\ndef f(:\n    pass"], "not plain Python"),
    (["#@save\ndef f():\n    return 1", "#@save\ndef f():\n    return 2"], "defines 'f' again"),
])
def test_cells_the_library_cannot_take_are_refused_with_their_place(tmp_path, sources, message):
    notebook(tmp_path / "02_two.ipynb", *sources)
    with pytest.raises(sync.SyncError, match=message) as refused:
        sync.generate(tmp_path)
    assert "notebooks/02_two.ipynb, cell c" in str(refused.value)
    assert sync.main(["--notebooks", str(tmp_path), "--target", str(tmp_path / "out.py")]) == 2
    assert not (tmp_path / "out.py").exists()


def test_only_the_first_line_marks_a_cell_and_other_notebooks_are_ignored(tmp_path):
    notebook(tmp_path / "03_three.ipynb", "x = 1\n#@save\ndef not_saved():\n    pass",
             "#@save  (the library keeps a copy)\nLIMIT = 3")
    notebook(tmp_path / "scratch.ipynb", "#@save\ndef scratch():\n    pass")
    text = sync.generate(tmp_path)
    assert "LIMIT = 3" in text and "not_saved" not in text and "scratch" not in text


def test_a_folder_without_lesson_notebooks_is_refused(tmp_path):
    with pytest.raises(sync.SyncError, match="no lesson notebooks"):
        sync.generate(tmp_path)


def test_the_command_reads_notebooks_in_the_working_folder_and_says_when_there_are_none(tmp_path, monkeypatch,
                                                                                         capsys):
    """No folder is assumed beside the installed package: `--notebooks` defaults to ./notebooks."""
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "lessons.py"
    assert sync.main(["--target", str(target)]) == 2
    error = capsys.readouterr().err
    assert f"no notebooks folder notebooks (a relative one is read from the working folder {tmp_path})" in error
    assert "pass --notebooks DIR" in error and not target.exists()
    (tmp_path / "notebooks").mkdir()
    notebook(tmp_path / "notebooks" / "01_one.ipynb", "#@save\nTWO = 2")
    assert sync.main(["--target", str(target)]) == 0 and "TWO = 2" in target.read_text()


@pytest.mark.parametrize("name, key", [("01_simple_rnn.ipynb", "01"), ("A_own_dataset.ipynb", "A"),
                                       ("07_deploy-v2.ipynb", "07"), ("1_short.ipynb", None), ("scratch.ipynb", None),
                                       ("01_x.ipynb.bak", None), ("AB_two_letters.ipynb", None)])
def test_one_notebook_name_pattern(name, key):
    match = sync.NOTEBOOK_NAME.fullmatch(name)
    assert (match and match["key"]) == key


def package_with_block(folder, before="VALUE = 1\n", after="def after():\n    return shout('x')\n"):
    """A package folder with `text.py` holding an empty saved-cells block between hand-written code."""
    folder.mkdir(exist_ok=True)
    module = folder / "text.py"
    module.write_text(f"{before}\n{sync.REGION_START}\n{sync.REGION_END}\n\n{after}")
    return module


def test_a_cell_naming_a_module_goes_into_that_modules_block_and_nowhere_else(tmp_path, capsys):
    notebooks, package = tmp_path / "notebooks", tmp_path / "package"
    notebooks.mkdir()
    module = package_with_block(package)
    target = package / "lessons.py"
    notebook(notebooks / "01_one.ipynb", "#@save text\ndef shout(word):\n    return word.upper() + str(VALUE)",
             "#@save\nTWO = 2")
    assert sync.main(["--notebooks", str(notebooks), "--target", str(target)]) == 0
    text = module.read_text()
    assert text.startswith("VALUE = 1\n") and text.endswith("def after():\n    return shout('x')\n")
    assert "# ---- notebooks/01_one.ipynb, cell c0 ----\ndef shout(word):" in text
    assert "shout" not in target.read_text() and "TWO = 2" in target.read_text()
    namespace = {}
    exec(text, namespace)
    assert namespace["after"]() == "X1"
    assert sync.main(["--check", "--notebooks", str(notebooks), "--target", str(target)]) == 0

    notebook(notebooks / "01_one.ipynb", "#@save text\ndef shout(word):\n    return word.upper() + '!'",
             "#@save\nTWO = 2")
    assert sync.main(["--check", "--notebooks", str(notebooks), "--target", str(target)]) == 1
    assert "+    return word.upper() + '!'" in capsys.readouterr().err
    assert "'!'" not in module.read_text()      # --check writes nothing


@pytest.mark.parametrize("cell, message", [
    ("#@save nowhere\nX = 1", "marked #@save nowhere, but there is no module"),
    ("#@save Text-Module\nX = 1", "does not name a module"),
    ("#@save text\ndef f():\n    return missing_name", "missing_name in notebooks/01_one.ipynb, cell c0"),
])
def test_a_cell_for_a_module_that_cannot_take_it_is_refused(tmp_path, cell, message):
    notebooks, package = tmp_path / "notebooks", tmp_path / "package"
    notebooks.mkdir()
    package_with_block(package)
    notebook(notebooks / "01_one.ipynb", cell)
    with pytest.raises(sync.SyncError, match=message):
        sync.generate_modules(notebooks, package)


def test_a_module_needs_exactly_one_block_and_nothing_is_written_when_one_is_broken(tmp_path):
    notebooks, package = tmp_path / "notebooks", tmp_path / "package"
    notebooks.mkdir()
    module = package_with_block(package, after=f"{sync.REGION_START}\n")   # a second start line
    notebook(notebooks / "01_one.ipynb", "#@save text\nX = 1", "#@save\nTWO = 2")
    before = module.read_text()
    with pytest.raises(sync.SyncError, match="needs one saved-cells block .* 2 start and 1 end"):
        sync.generate_modules(notebooks, package)
    assert sync.main(["--notebooks", str(notebooks), "--target", str(package / "lessons.py")]) == 2
    assert module.read_text() == before and not (package / "lessons.py").exists()
