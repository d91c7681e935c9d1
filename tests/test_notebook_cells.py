"""What the notebooks' code cells may call, read statically (nbformat + ast; `%` and `!` lines become `pass`).

- The encoding's settings (`bigrams`, `min_length`, `batch_first`) are passed only where an encoding is built
  (`TextEncoding(...)`, `TextEncoding.build(...)`), to a torch layer (`nn.<X>`) or to a class a `#@save` cell
  defines; every call that makes an encoding sits in a visible cell; no cell adds bigrams by hand
  (`.with_bigrams()`: the encoding adds them, twice would make pairs of pairs).
- Export is a lesson step: lessons 3, 4, 5 and 7 call `run.export(` exactly once, in a visible cell, and no
  `run.record(` exports (`export=` or `beyond={"export": ...}`).
- Every data-loading call passes the run's cache (`cache=`).
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat

from conftest import REPO_ROOT
from helpers import sync

NOTEBOOKS = sync.lesson_notebooks(REPO_ROOT / "notebooks")
ENCODING_SETTINGS = {"bigrams", "min_length", "batch_first"}
EXPORTING_LESSONS = ("03", "04", "05", "07")
DATA_LOADERS = {"load_imdb", "load_trec", "load_table", "load_glove", "read_imdb", "read_trec"}


def collapsed(cell) -> bool:
    """Hidden in Jupyter or shown as a form in Colab: a student does not read its code."""
    return cell.metadata.get("jupyter", {}).get("source_hidden") is True or cell.metadata.get("cellView") == "form"


def parse(source: str) -> ast.Module:
    """A cell's code, with IPython's `%magic` and `!shell` lines replaced by `pass` (same indentation)."""
    return ast.parse(re.sub(r"^(\s*)[%!].*$", r"\1pass", source, flags=re.M))


def code_cells(path: Path) -> list:
    return [cell for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]


def calls(tree: ast.AST) -> list[ast.Call]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)]


def callee(call: ast.Call) -> str:
    """The called expression as written: "loaders_for", "TextEncoding.build", "nn.GRU", "run.export"."""
    return ast.unparse(call.func)


def saved_classes() -> set[str]:
    """Names defined by the notebooks' `#@save` cells (the lesson models: `PackedGRU(batch_first=...)` is a layer)."""
    return {name for path in NOTEBOOKS for cell in sync.saved_cells(path) for name in cell.names}


def builds_an_encoding(call: ast.Call) -> bool:
    name = callee(call)
    return name == "TextEncoding" or name.startswith("TextEncoding.")


def misplaced_settings(tree: ast.AST, allowed_classes: set[str]) -> list[str]:
    """Calls in `tree` passing an encoding setting to anything but where an encoding (or a layer) is built."""
    found = []
    for call in calls(tree):
        settings = sorted(ENCODING_SETTINGS & {keyword.arg for keyword in call.keywords})
        name = callee(call)
        if settings and not (name in ("TextEncoding", "TextEncoding.build") or name.startswith("nn.")
                             or name in allowed_classes):
            found.append(f"{name}({', '.join(f'{setting}=' for setting in settings)})")
        if isinstance(call.func, ast.Attribute) and call.func.attr == "with_bigrams":
            found.append(f"{name}() (the encoding adds the bigrams)")
    return found


def run_calls(tree: ast.AST, method: str) -> list[ast.Call]:
    """`run.<method>(...)` calls."""
    return [call for call in calls(tree) if isinstance(call.func, ast.Attribute) and call.func.attr == method
            and isinstance(call.func.value, ast.Name) and call.func.value.id == "run"]


def exporting_records(tree: ast.AST) -> list[str]:
    """`run.record(...)` calls that export: an `export=` keyword, or `beyond=` holding an "export" entry."""
    found = []
    for call in run_calls(tree, "record"):
        for keyword in call.keywords:
            if keyword.arg == "export":
                found.append("run.record(export=...)")
            elif keyword.arg == "beyond":
                value = keyword.value
                keys = ([key.value for key in value.keys if isinstance(key, ast.Constant)]
                        if isinstance(value, ast.Dict) else
                        [entry.arg for entry in value.keywords] if isinstance(value, ast.Call) else [])
                if "export" in keys:
                    found.append('run.record(beyond={"export": ...})')
    return found


def uncached_loads(tree: ast.AST) -> list[str]:
    """Data-loading calls that do not pass `cache=`."""
    return [callee(call) for call in calls(tree) if callee(call).split(".")[-1] in DATA_LOADERS
            and "cache" not in {keyword.arg for keyword in call.keywords}]


# --------------------------------------------------------------------- the checks catch what they should

def test_the_checks_find_what_they_look_for():
    """Each scanner on a cell that breaks its rule and on one that keeps it (else a broken scanner passes all)."""
    bad = parse("loaders = loaders_for(data, vocab, 64, seed=1, batch_first=True)\n"
                "p = predict(model, review, tokenizer, vocab, bigrams=True, min_length=5)\n"
                "train = replace(train, tokens=train.tokens.with_bigrams())\n"
                "run.record(test=test, export=dict(name='sentiment'))\n"
                "run.record(test=test, beyond=dict(model=better, export={'name': 'cnn'}))\n"
                "run.record(test=test, beyond={'export': {}})\n"
                "imdb = load_imdb(tokenizer, run.data_dir)\nglove = vectors.load_glove('glove.6B.50d')")
    assert misplaced_settings(bad, set()) == ["loaders_for(batch_first=)", "predict(bigrams=, min_length=)",
                                              "train.tokens.with_bigrams() (the encoding adds the bigrams)"]
    assert len(exporting_records(bad)) == 3
    assert uncached_loads(bad) == ["load_imdb", "vectors.load_glove"]
    good = parse("if True:\n    %pip install x\n"
                 "encoding = TextEncoding.build(tokenizer, corpus, max_size=10, bigrams=True)\n"
                 "encoding = TextEncoding(tokenizer, vocab, batch_first=False)\n"
                 "gru = nn.GRU(8, 8, batch_first=True)\nhead = PackedGRU(8, 8, batch_first=True)\n"
                 "run.record(test=test, beyond=dict(model=better, how='x'))\n"
                 "imdb = load_imdb(tokenizer, run.data_dir, cache=run.cache_dir)")
    assert misplaced_settings(good, {"PackedGRU"}) == []
    assert misplaced_settings(good, set()) == ["PackedGRU(batch_first=)"]
    assert exporting_records(good) == [] and uncached_loads(good) == []
    assert len(run_calls(parse("bundle = run.export(model, encoding, name='s')\nrun.where(x)"), "export")) == 1


# ------------------------------------------------------------------------------------ the notebooks

def test_notebooks_are_found():
    assert {path.name[:2] for path in NOTEBOOKS} >= {*EXPORTING_LESSONS, "01", "02", "06", "A_", "B_", "C_"}


def test_encoding_settings_only_where_the_encoding_is_built():
    allowed = saved_classes()
    problems = []
    for path in NOTEBOOKS:
        for cell in code_cells(path):
            if cell.source.startswith(sync.SAVE_MARK):   # the library's code in view (PadCollate.for_encoding)
                continue
            tree = parse(cell.source)
            problems += [f"{path.name} cell {cell.get('id')}: {what}" for what in misplaced_settings(tree, allowed)]
            if collapsed(cell) and any(builds_an_encoding(call) for call in calls(tree)):
                problems.append(f"{path.name} cell {cell.get('id')}: builds the encoding in a collapsed cell")
    assert not problems, "\n".join(problems)


def test_export_is_a_visible_lesson_step():
    problems = []
    for path in NOTEBOOKS:
        cells = code_cells(path)
        exporting = [(cell, len(run_calls(parse(cell.source), "export"))) for cell in cells]
        exporting = [(cell, count) for cell, count in exporting if count]
        if path.name[:2] in EXPORTING_LESSONS:
            if sum(count for _, count in exporting) != 1:
                problems.append(f"{path.name}: {sum(count for _, count in exporting)} run.export calls, not 1")
            problems += [f"{path.name} cell {cell.get('id')}: run.export in a collapsed cell"
                         for cell, _ in exporting if collapsed(cell)]
        for cell in cells:
            tree = parse(cell.source)
            problems += [f"{path.name} cell {cell.get('id')}: {what}" for what in exporting_records(tree)]
            problems += [f"{path.name} cell {cell.get('id')}: run.export_result (gone: run.export)"
                         for _ in run_calls(tree, "export_result")]
    assert not problems, "\n".join(problems)


def test_lessons_pass_the_runs_cache():
    problems = [f"{path.name} cell {cell.get('id')}: {name} without cache="
                for path in NOTEBOOKS for cell in code_cells(path) for name in uncached_loads(parse(cell.source))]
    assert not problems, "\n".join(problems)

