"""What a lesson holds, counted from its notebook: equations, diagrams, exercises, and traces of this
repository's history that do not belong in a lesson.

    python -m helpers.content [--notebooks DIR]     # the counts table (default: notebooks/ here)

Per notebook (`count_notebook`):

* display equations: `$$ ... $$` blocks in markdown cells; LaTeX expressions: those plus inline
  `$...$` (code spans and fenced code are skipped, so `$PATH` in a shell line is not maths);
* diagrams: the distinct `helpers.diagrams.DIAGRAMS` functions called in code cells, as imported
  there (`from helpers.diagrams import rnn_unrolled`; `diagrams.rnn_unrolled(...)`;
  `DIAGRAMS["rnn_unrolled"](...)`), so `F.softmax` is not the `softmax` diagram;
* exercises: the top-level numbered items of the `## Exercises` section, whether it is the
  notebook's last section, and the `tests/test_exercises_<key>.py` files it names;
* commit strings: 7-40 hex-digit tokens, in any cell's source or text output, that git resolves
  to a commit of the repository (when git and the repository are there);
* earlier-run phrases: wording that compares with this repository's earlier runs or commits.

`tests/test_lesson_content.py` holds the course's targets against these counts.
"""
from __future__ import annotations

import argparse
import ast
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .diagrams import DIAGRAMS
from .sync import NOTEBOOK_NAME, SyncError, cell_source, lesson_notebooks, notebook_cells

FENCED_CODE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.S | re.M)
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)
DISPLAY_MATH = re.compile(r"(?<!\\)\$\$(.+?)(?<!\\)\$\$", re.S)
# pandoc's rule: no space just inside the dollars, and the closing one not followed by a digit ($5 and $6)
INLINE_MATH = re.compile(r"(?<![\\$])\$(?=[^\s$])([^$\n]+?)(?<=[^\s\\])\$(?!\d)")
HEX_TOKEN = re.compile(r"\b[0-9a-f]{7,40}\b")
EARLIER_RUN = re.compile(
    r"\b(?:previous|earlier|older|prior|former)\s+(?:reference\s+|full\s+)?runs?\b"
    r"|\blast\s+reference\s+runs?\b"
    r"|\b(?:previous|earlier|older|prior)\s+commits?\b"
    r"|\b(?:at|of|from)\s+commit\b", re.I)
EXERCISES_HEADING = re.compile(r"^##\s+Exercises\s*$", re.M)
HEADING = re.compile(r"^(#{1,6})\s", re.M)
NUMBERED_ITEM = re.compile(r"^\d+[.)]\s", re.M)
EXERCISE_TEST = re.compile(r"tests/test_exercises_\w+\.py")
# The lessons that follow Trevett's five tutorials (16 images, 51 LaTeX expressions between them).
LESSONS_WITH_TUTORIAL_FIGURES = ("01", "02", "03", "04", "05")


@dataclass
class Counts:
    """One notebook's counts (see the module's docstring)."""
    notebook: str
    display_equations: int = 0
    latex_expressions: int = 0
    diagrams: list[str] = field(default_factory=list)       # distinct names, in order of first call
    exercises: int | None = None                             # None: no `## Exercises` section
    exercises_last: bool = False                             # the section is the notebook's last one
    exercise_tests: list[str] = field(default_factory=list)  # test files the section names
    commit_strings: list[str] | None = None                  # in the cells' sources; None: not checked (no git)
    earlier_run_phrases: list[str] = field(default_factory=list)          # in the cells' sources
    output_commit_strings: list[str] | None = None           # in the committed outputs (a run's printout)
    output_earlier_run_phrases: list[str] = field(default_factory=list)   # in the committed outputs

    @property
    def key(self) -> str:
        """The notebook's key: `01`..`07` for lessons, `A`, `B`, `C` for appendices."""
        return NOTEBOOK_NAME.fullmatch(self.notebook + ".ipynb")["key"]


def blank(match: re.Match) -> str:
    """The matched text as spaces, its line breaks kept (so positions stay those of the original)."""
    return re.sub(r"[^\n]", " ", match.group(0))


def prose(markdown: str) -> str:
    """`markdown` with fenced code blocks and code spans blanked, where a dollar is not maths and `#` is not a
    heading; every other character keeps its position."""
    return CODE_SPAN.sub(blank, FENCED_CODE.sub(blank, markdown))


def count_math(markdown: str) -> tuple[int, int]:
    """(display equations, all LaTeX expressions) in one markdown text."""
    text = prose(markdown)
    display = len(DISPLAY_MATH.findall(text))
    inline = len(INLINE_MATH.findall(DISPLAY_MATH.sub(" ", text)))
    return display, display + inline


def python_source(code: str) -> str:
    """A code cell's source with IPython's line magics and shell escapes blanked, so `ast` can parse it."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in code.splitlines())


def diagram_calls(code: str, imported: dict[str, str], modules: set[str]) -> list[str]:
    """The diagram names called in `code`. `imported` (alias -> diagram name, or "DIAGRAMS") and `modules`
    (aliases of helpers.diagrams) are what earlier cells imported; this cell's imports are added to them."""
    try:
        tree = ast.parse(python_source(code))
    except SyntaxError:
        return []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "helpers.diagrams":
            imported.update({alias.asname or alias.name: alias.name for alias in node.names
                             if alias.name in DIAGRAMS or alias.name == "DIAGRAMS"})
        elif isinstance(node, ast.ImportFrom) and node.module == "helpers":
            modules.update(alias.asname or alias.name for alias in node.names if alias.name == "diagrams")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "helpers.diagrams":
                    modules.add(alias.asname or "helpers.diagrams")
    called = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        function = node.func
        if isinstance(function, ast.Name) and imported.get(function.id, "DIAGRAMS") != "DIAGRAMS":
            called.append(imported[function.id])
        elif isinstance(function, ast.Attribute) and function.attr in DIAGRAMS \
                and ast.unparse(function.value) in modules:
            called.append(function.attr)
        elif isinstance(function, ast.Subscript) and isinstance(function.slice, ast.Constant) \
                and function.slice.value in DIAGRAMS:
            owner = ast.unparse(function.value)
            if imported.get(owner) == "DIAGRAMS" or any(owner == f"{module}.DIAGRAMS" for module in modules):
                called.append(function.slice.value)
    return called


def output_texts(cell: dict) -> list[str]:
    """The text a cell's outputs show (streams, text/* data, errors); images are left out."""
    texts = []
    for output in cell.get("outputs", []):
        texts.append(cell_source({"source": output.get("text", "")}))
        texts += [cell_source({"source": value}) for kind, value in output.get("data", {}).items()
                  if kind.startswith("text/")]
        texts += output.get("traceback", [])
    return texts


def commits_among(tokens: set[str], repository: Path) -> list[str] | None:
    """The `tokens` that git resolves to a commit of `repository`; None when git or the repository is missing."""
    git = shutil.which("git")
    if git is None or not (repository / ".git").exists():
        return None
    if not tokens:
        return []
    ordered = sorted(tokens)
    result = subprocess.run([git, "cat-file", "--batch-check=%(objecttype)"], cwd=repository, capture_output=True,
                            text=True, input="".join(f"{token}\n" for token in ordered), timeout=60)
    if result.returncode != 0:
        return None
    return [token for token, kind in zip(ordered, result.stdout.splitlines()) if kind == "commit"]


def exercises_section(cells: list[dict]) -> tuple[int | None, bool, list[str]]:
    """(numbered items, whether it is the last section, test files named) of the `## Exercises` section, which
    runs from its heading to the next heading of level 1 or 2 (in the same or a later markdown cell)."""
    markdown = "\n\n".join(cell_source(cell) for cell in cells if cell.get("cell_type") == "markdown")
    text = prose(markdown)
    heading = EXERCISES_HEADING.search(text)
    if heading is None:
        return None, False, []
    following = next((match for match in HEADING.finditer(text, heading.end()) if len(match.group(1)) <= 2), None)
    end = len(text) if following is None else following.start()
    tests = sorted(set(EXERCISE_TEST.findall(markdown, heading.end(), end)))
    return len(NUMBERED_ITEM.findall(text, heading.end(), end)), following is None, tests


def count_notebook(path: str | Path, repository: str | Path | None = None) -> Counts:
    """The counts of one notebook; commit strings are checked against `repository` (None: not checked)."""
    path = Path(path)
    cells = notebook_cells(path)
    counts = Counts(path.stem)
    imported: dict[str, str] = {}
    modules: set[str] = set()
    tokens: set[str] = set()
    output_tokens: set[str] = set()
    for cell in cells:
        source = cell_source(cell)
        if cell.get("cell_type") == "markdown":
            display, latex = count_math(source)
            counts.display_equations += display
            counts.latex_expressions += latex
        elif cell.get("cell_type") == "code":
            for name in diagram_calls(source, imported, modules):
                if name not in counts.diagrams:
                    counts.diagrams.append(name)
        tokens.update(HEX_TOKEN.findall(source))
        counts.earlier_run_phrases += [match.group(0) for match in EARLIER_RUN.finditer(source)]
        for text in output_texts(cell):   # a fresh run rewrites these; the sources are what a lesson says
            output_tokens.update(HEX_TOKEN.findall(text))
            counts.output_earlier_run_phrases += [match.group(0) for match in EARLIER_RUN.finditer(text)]
    counts.exercises, counts.exercises_last, counts.exercise_tests = exercises_section(cells)
    if repository is not None:
        found = commits_among(tokens | output_tokens, Path(repository))   # one git process for both
        if found is not None:
            counts.commit_strings = [token for token in found if token in tokens]
            counts.output_commit_strings = [token for token in found if token in output_tokens]
    return counts


def count_all(folder: str | Path, repository: str | Path | None = None) -> list[Counts]:
    """The counts of every course notebook in `folder`, in file-name order."""
    return [count_notebook(path, repository) for path in lesson_notebooks(folder)]


def table(counts: list[Counts]) -> str:
    """The counts as a Markdown table, with a line for lessons 1-5 together."""
    lines = ["| notebook | display equations | LaTeX expressions | diagrams | exercises "
             "| commit strings (sources / outputs) | earlier-run phrases (sources / outputs) |",
             "|---|---|---|---|---|---|---|"]

    def cells(item: Counts) -> str:
        exercises = "none" if item.exercises is None else (
            f"{item.exercises}" + ("" if item.exercises_last else " (not the last section)")
            + (f", solution in {', '.join(item.exercise_tests)}" if item.exercise_tests else ""))
        def found(strings):
            return "not checked" if strings is None else (
                f"{len(strings)}" + (f" ({', '.join(sorted(set(strings)))})" if strings else ""))
        commits = f"{found(item.commit_strings)} / {found(item.output_commit_strings)}"
        phrases = f"{found(item.earlier_run_phrases)} / {found(item.output_earlier_run_phrases)}"
        diagrams = f"{len(item.diagrams)}" + (f" ({', '.join(item.diagrams)})" if item.diagrams else "")
        return (f"{item.display_equations} | {item.latex_expressions} | {diagrams} | {exercises} | {commits} "
                f"| {phrases} |")

    lines += [f"| {item.notebook} | {cells(item)}" for item in counts]
    lessons = [item for item in counts if item.key in LESSONS_WITH_TUTORIAL_FIGURES]
    if lessons:
        lines.append(f"| lessons 1-5 together | {sum(item.display_equations for item in lessons)} | "
                     f"{sum(item.latex_expressions for item in lessons)} | "
                     f"{sum(len(item.diagrams) for item in lessons)} | | | |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.content", description=__doc__.split("\n\n")[0])
    parser.add_argument("--notebooks", default="notebooks",
                        help="folder of the course notebooks (default: notebooks/ in the working folder)")
    parser.add_argument("--repository", default=".",
                        help="the git repository whose commits count as commit strings (default: the working folder)")
    args = parser.parse_args(argv)
    try:
        counts = count_all(args.notebooks, args.repository)
    except SyncError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(table(counts), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
