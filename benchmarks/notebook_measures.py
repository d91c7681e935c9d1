"""How much bookkeeping a student sees, and how long the committed outputs are, per notebook.

    python benchmarks/notebook_measures.py [NOTEBOOK ...] [--rev REV] [--out FILE.json]

Without notebooks: every `NN_name.ipynb` / `A_name.ipynb` in the checkout's `notebooks/`
(with `--rev`, those committed there at that revision).
`--rev REV` reads the notebooks as committed at git revision REV (`git show REV:path`)
instead of the working tree, so a "before" figure can be measured at any time.

Definitions (what the table and the JSON say):

* **code lines**: the non-blank source lines of all code cells (collapsed ones included).
* **bookkeeping lines**: code lines of one of four kinds, found by parsing each cell
  with `ast` (IPython magics such as `%pip` read as plain statements); a statement
  counts with all its lines (continuation lines and comments inside it included):
  - *set-up*: every line of the set-up cell (a cell that defines `COURSE_VERSION` or
    runs `%pip install`: installing the course and checking its version), statements that call
    `start_lesson`, `check_version` or `make_reproducible`, and imports from
    `helpers.course` (or its former name `helpers.profiles`);
  - *record*: statements that call `.record(...)` or `.save_metrics(...)` (the results
    written to metrics.json);
  - *export*: statements that call `export_bundle(...)`, `BundleInfo(...)` or
    `.export(...)` (the course's `run.export`), and imports from `helpers.export`;
  - *test marker*: comment lines that are nbval markers (`# NBVAL_...`).
  A later statement that uses a name bound by a record or export statement (e.g.
  `print("saved", metrics)` after `metrics = run.record(...)`) counts in that kind too
  (not so for set-up: every lesson cell uses the `run` that `start_lesson` returns).
* **visible bookkeeping**: bookkeeping lines in cells that are *not* collapsed. A cell is
  collapsed when it is hidden in both Jupyter (`metadata.jupyter.source_hidden` true) and
  Colab (`metadata.cellView == "form"`).
* **share**: visible bookkeeping lines / code lines.
* **longest output**: the most lines any one cell's committed outputs take, summed over the
  cell's outputs: stream text and error tracebacks by lines, where a carriage return starts
  a line too (`str.splitlines`: a progress bar's every redraw is stored, and a page that
  renders the notebook statically shows them all); `text/plain` of results and displays,
  unless the output is an image (a figure counts 0 lines).
"""
from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from helpers.sync import NOTEBOOK_NAME  # noqa: E402 (needs ROOT on sys.path)

KINDS = ("setup", "record", "export", "marker")
SETUP_CALLS = {"start_lesson", "check_version", "make_reproducible"}
RECORD_CALLS = {"record", "save_metrics"}
EXPORT_CALLS = {"export_bundle", "BundleInfo", "export"}
PROPAGATING = {"record", "export"}   # `run` (set-up) is used by every lesson cell: it does not propagate
# helpers.profiles: the course layer's name before helpers.course (to measure older commits)
MODULE_KINDS = {"helpers.course": "setup", "helpers.profiles": "setup", "helpers.export": "export"}
SETUP_CELL = re.compile(r"^(COURSE_VERSION\s*=|\s*%pip install)", re.MULTILINE)
MARKER = re.compile(r"\s*#\s*NBVAL_")
MAGIC = re.compile(r"^(\s*)[%!]")
IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml")


def _called_names(node: ast.AST) -> set[str]:
    """Names of the functions and methods called anywhere inside `node` (`run.record(...)` gives "record")."""
    names = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            func = sub.func
            if isinstance(func, ast.Name):
                names.add(func.id)
            elif isinstance(func, ast.Attribute):
                names.add(func.attr)
    return names


def _bound_names(node: ast.stmt) -> set[str]:
    """Names a statement assigns (targets of =, imports, for, with)."""
    names = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
            names.add(sub.id)
        elif isinstance(sub, ast.alias):
            names.add((sub.asname or sub.name).split(".")[0])
    return names


def _used_names(node: ast.stmt) -> set[str]:
    return {sub.id for sub in ast.walk(node) if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load)}


def statement_kind(node: ast.stmt, bound: dict[str, str]) -> str | None:
    """The bookkeeping kind of one top-level statement, or None for lesson code.

    `bound`: names bound so far by bookkeeping statements, with their kind (updated here).
    """
    kind = None
    if isinstance(node, ast.ImportFrom) and node.module in MODULE_KINDS:
        kind = MODULE_KINDS[node.module]
    else:
        called = _called_names(node)
        if called & SETUP_CALLS:
            kind = "setup"
        elif called & RECORD_CALLS:
            kind = "record"
        elif called & EXPORT_CALLS:
            kind = "export"
        else:
            kinds = {bound[name] for name in _used_names(node) if name in bound}
            kind = next((k for k in KINDS if k in kinds), None)
    if kind in PROPAGATING and not isinstance(node, ast.ImportFrom):
        bound.update(dict.fromkeys(_bound_names(node), kind))
    return kind


def cell_line_kinds(source: str, bound: dict[str, str], setup_cell: bool) -> list[str | None]:
    """One entry per source line: its bookkeeping kind, "blank", or None (lesson code)."""
    lines = source.splitlines()
    kinds: list[str | None] = ["blank" if not line.strip() else None for line in lines]
    if setup_cell:
        return ["blank" if kind == "blank" else "setup" for kind in kinds]
    for number, line in enumerate(lines):
        if MARKER.match(line):
            kinds[number] = "marker"
    parsable = "\n".join(MAGIC.sub(r"\1pass  #", line) for line in lines)
    try:
        tree = ast.parse(parsable)
    except SyntaxError:
        return kinds          # not Python (another kernel's cell): only markers are recognised
    for node in tree.body:
        kind = statement_kind(node, bound)
        if kind is None:
            continue
        for number in range(node.lineno - 1, node.end_lineno):
            if kinds[number] is None:
                kinds[number] = kind
    return kinds


def is_collapsed(cell) -> bool:
    """Hidden in Jupyter (`jupyter.source_hidden`) and shown as a form in Colab (`cellView: form`)."""
    metadata = cell.get("metadata", {})
    return bool(metadata.get("jupyter", {}).get("source_hidden")) and metadata.get("cellView") == "form"


def output_lines(cell) -> int:
    """Lines a reader scrolls past in one cell's committed outputs (see the module docstring)."""
    total = 0
    for output in cell.get("outputs", []):
        kind = output.get("output_type")
        if kind == "stream":
            total += len(output.get("text", "").splitlines())
        elif kind == "error":
            total += sum(len(line.splitlines()) for line in output.get("traceback", []))
        else:
            data = output.get("data", {})
            if not any(image in data for image in IMAGE_TYPES):
                total += len(str(data.get("text/plain", "")).splitlines())
    return total


def measure(notebook: nbformat.NotebookNode, name: str) -> dict:
    """The measures of one notebook (see the module docstring)."""
    bound: dict[str, str] = {}
    code_lines = 0
    visible = dict.fromkeys(KINDS, 0)
    hidden = 0
    longest = {"lines": 0, "cell": None}
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        setup_cell = SETUP_CELL.search(cell.source) is not None
        kinds = cell_line_kinds(cell.source, bound, setup_cell)
        code_lines += sum(kind != "blank" for kind in kinds)
        collapsed = is_collapsed(cell)
        for kind in kinds:
            if kind in visible:
                if collapsed:
                    hidden += 1
                else:
                    visible[kind] += 1
        lines = output_lines(cell)
        if lines > longest["lines"]:
            longest = {"lines": lines, "cell": cell.get("id") or f"#{index}"}
    bookkeeping = sum(visible.values())
    return {"notebook": name, "code_lines": code_lines, "visible_bookkeeping": bookkeeping,
            "visible_by_kind": visible, "collapsed_bookkeeping": hidden,
            "share": bookkeeping / code_lines if code_lines else 0.0,
            "longest_output_lines": longest["lines"], "longest_output_cell": longest["cell"]}


def read_notebook(path: Path, rev: str | None) -> nbformat.NotebookNode:
    """The notebook at `path`, or as committed at git revision `rev`."""
    if rev is None:
        return nbformat.read(path, as_version=4)
    relative = path.resolve().relative_to(ROOT).as_posix()
    shown = subprocess.run(["git", "show", f"{rev}:{relative}"], cwd=ROOT, capture_output=True, text=True)
    if shown.returncode != 0:
        raise SystemExit(f"git show {rev}:{relative} failed: {shown.stderr.strip()}")
    return nbformat.reads(shown.stdout, as_version=4)


def course_notebooks(rev: str | None) -> list[Path]:
    """The lesson and appendix notebooks in the checkout's notebooks/ (as committed at `rev` when given)."""
    if rev is None:
        names = [path.name for path in (ROOT / "notebooks").glob("*.ipynb")]
    else:
        listed = subprocess.run(["git", "ls-tree", "--name-only", rev, "notebooks/"], cwd=ROOT, capture_output=True,
                                text=True)
        if listed.returncode != 0:
            raise SystemExit(f"git ls-tree {rev} notebooks/ failed: {listed.stderr.strip()}")
        names = [Path(line).name for line in listed.stdout.splitlines()]
    return sorted(ROOT / "notebooks" / name for name in names if NOTEBOOK_NAME.fullmatch(name))


def table(rows: list[dict]) -> str:
    """The measures as a Markdown table."""
    lines = ["| notebook | code lines | visible bookkeeping (set-up/record/export/marker) | share | "
             "collapsed bookkeeping | longest output (lines, cell) |", "|---|---|---|---|---|---|"]
    for row in rows:
        kinds = "/".join(str(row["visible_by_kind"][kind]) for kind in KINDS)
        lines.append(f"| {row['notebook']} | {row['code_lines']} | {row['visible_bookkeeping']} ({kinds}) | "
                     f"{row['share']:.1%} | {row['collapsed_bookkeeping']} | "
                     f"{row['longest_output_lines']} ({row['longest_output_cell']}) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks (default: the course's notebooks/)")
    parser.add_argument("--rev", help="measure the notebooks as committed at this git revision")
    parser.add_argument("--out", type=Path, help="also write the measures as JSON here")
    args = parser.parse_args(argv)
    paths = args.notebooks or course_notebooks(args.rev)
    if args.rev is None:
        missing = [str(path) for path in paths if not path.is_file()]
        if missing:
            raise SystemExit(f"no such notebook: {', '.join(missing)}")
    rows = [measure(read_notebook(path, args.rev), path.stem) for path in paths]
    print(table(rows))
    if args.out:
        args.out.write_text(json.dumps({"rev": args.rev, "notebooks": rows}, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
