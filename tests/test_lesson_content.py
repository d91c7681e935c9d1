"""What the lessons must hold (issue 21's targets), counted by `helpers.content`, and the counter's own tests.

The targets: lessons 1-5 at least 2 display equations each, 51 LaTeX expressions and 16 diagrams together;
lessons 6, 7 and appendices A-C at least 3 LaTeX expressions and 1 diagram each; in every notebook a final
`## Exercises` section of 3 to 5 numbered exercises naming its solution's test file, no string git resolves
to a commit of this repository and no wording about earlier runs. `python -m helpers.content` prints the
counts these tests check.
"""
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

from helpers import content
from helpers.content import LESSONS_WITH_TUTORIAL_FIGURES, count_all, count_math, count_notebook

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO_ROOT / "notebooks"
COUNTS = {item.notebook: item for item in count_all(NOTEBOOKS, REPO_ROOT)}
LESSONS_1_TO_5 = [item for item in COUNTS.values() if item.key in LESSONS_WITH_TUTORIAL_FIGURES]
OTHERS = [item for item in COUNTS.values() if item.key not in LESSONS_WITH_TUTORIAL_FIGURES]


# ---- the course's targets --------------------------------------------------------------------------------

def test_every_course_notebook_is_counted():
    assert len(LESSONS_1_TO_5) == 5 and len(OTHERS) == 5, sorted(COUNTS)


@pytest.mark.parametrize("notebook", [item.notebook for item in LESSONS_1_TO_5])
def test_lessons_1_to_5_state_their_computation_in_two_display_equations(notebook):
    assert COUNTS[notebook].display_equations >= 2, content.table([COUNTS[notebook]])


def test_lessons_1_to_5_hold_the_tutorials_51_latex_expressions_and_16_diagrams():
    latex = sum(item.latex_expressions for item in LESSONS_1_TO_5)
    diagrams = sum(len(item.diagrams) for item in LESSONS_1_TO_5)
    assert latex >= 51 and diagrams >= 16, content.table(LESSONS_1_TO_5)


@pytest.mark.parametrize("notebook", [item.notebook for item in OTHERS])
def test_other_notebooks_hold_three_latex_expressions_and_a_diagram(notebook):
    item = COUNTS[notebook]
    assert item.latex_expressions >= 3 and len(item.diagrams) >= 1, content.table([item])


@pytest.mark.parametrize("notebook", sorted(COUNTS))
def test_notebook_ends_with_three_to_five_exercises_and_names_their_solution(notebook):
    item = COUNTS[notebook]
    assert item.exercises is not None, f"{notebook} has no '## Exercises' section"
    assert 3 <= item.exercises <= 5, f"{notebook}: {item.exercises} numbered exercises (3 to 5 wanted)"
    assert item.exercises_last, f"{notebook}: '## Exercises' is not the notebook's last section"
    solution = f"tests/test_exercises_{item.key}.py"
    assert solution in item.exercise_tests, f"{notebook}'s exercises do not name {solution}"
    assert (REPO_ROOT / solution).is_file(), f"{solution} (named by {notebook}'s exercises) does not exist"


@pytest.mark.parametrize("notebook", sorted(COUNTS))
def test_notebook_names_no_commit_of_this_repository(notebook):
    commits = COUNTS[notebook].commit_strings
    if commits is None:
        pytest.skip("no git, or not a git checkout: commit strings cannot be resolved")
    assert commits == [], f"{notebook} names commits of this repository: {commits}"


@pytest.mark.parametrize("notebook", sorted(COUNTS))
def test_notebook_does_not_compare_with_earlier_runs(notebook):
    phrases = COUNTS[notebook].earlier_run_phrases
    assert phrases == [], f"{notebook} speaks of earlier runs or commits: {sorted(set(phrases))}"


# Notebooks whose committed outputs still come from the reference run made before issue 21 and print a commit or
# an earlier run (cells since rewritten). Strict: once a fresh run has cleaned one, its entry must go.
STALE_OUTPUTS: dict[str, str] = {}   # notebook -> why its committed outputs still break the rule (none now)


@pytest.mark.parametrize("notebook", [
    pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=STALE_OUTPUTS[name])) if name in STALE_OUTPUTS
    else name for name in sorted(COUNTS)])
def test_committed_outputs_name_no_commit_and_no_earlier_run(notebook):
    item = COUNTS[notebook]
    assert not item.output_commit_strings and not item.output_earlier_run_phrases, content.table([item])


# ---- the counter -----------------------------------------------------------------------------------------

def write_notebook(path: Path, cells: list) -> Path:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = cells
    nbformat.write(notebook, path)
    return path


def test_math_counts_display_and_inline_expressions_but_not_code_or_prices():
    markdown = ("The state $h_t$ follows\n\n$$\nh_t = \\tanh(W_{ih} x_t + W_{hh} h_{t-1})\n$$\n\n"
                "with $x_t$ = `self.embedding($PATH)` and a price of $5 and $6, an escaped \\$ sign,\n"
                "```bash\necho $HOME $$\n```\n$$\\hat y = \\sigma(w^\\top h_T)$$ and $\\sigma$.")
    assert count_math(markdown) == (2, 5)


def test_diagrams_are_counted_only_when_they_come_from_helpers_diagrams(tmp_path):
    cells = [nbformat.v4.new_code_cell("%matplotlib inline\nfrom helpers.diagrams import rnn_unrolled as unrolled\n"
                                       "import torch.nn.functional as F\nF.softmax(x, dim=1)\nunrolled()"),
             nbformat.v4.new_code_cell("from helpers import diagrams\ndiagrams.softmax(['a', 'b'])\nunrolled()"),
             nbformat.v4.new_code_cell("from helpers.diagrams import DIAGRAMS\nDIAGRAMS['bigrams']()\n"
                                       "def cross_entropy(x):\n    return x\ncross_entropy(1)"),
             nbformat.v4.new_code_cell("this is not python (")]
    counts = count_notebook(write_notebook(tmp_path / "01_x.ipynb", cells))
    assert counts.diagrams == ["rnn_unrolled", "softmax", "bigrams"]
    assert counts.commit_strings is None   # no repository given


def test_exercises_are_the_top_level_numbered_items_of_the_last_section(tmp_path):
    exercises = ("## Exercises\n\n1. Change the width. Compare with `tests/test_exercises_03.py`.\n"
                 "   1. a sub-step, not an exercise\n2. Drop the bigrams.\n\n```\n# not a heading\n```\n")
    cells = [nbformat.v4.new_markdown_cell("# Lesson\n\n1. not an exercise"),
             nbformat.v4.new_markdown_cell(exercises),
             nbformat.v4.new_markdown_cell("### Hints\n\n3. Print the loss.")]
    counts = count_notebook(write_notebook(tmp_path / "03_x.ipynb", cells))
    assert (counts.exercises, counts.exercises_last, counts.exercise_tests) == (
        3, True, ["tests/test_exercises_03.py"])
    cells.append(nbformat.v4.new_markdown_cell("## Summary\n\n1. after the exercises"))
    counts = count_notebook(write_notebook(tmp_path / "03_x.ipynb", cells))
    assert (counts.exercises, counts.exercises_last) == (3, False)
    assert count_notebook(write_notebook(tmp_path / "03_x.ipynb", cells[:1])).exercises is None


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_commit_strings_are_tokens_git_resolves_to_a_commit(tmp_path):
    repository = tmp_path / "repo"
    repository.mkdir()
    git = ["git", "-C", str(repository), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(git + ["init", "-q"], check=True)
    (repository / "file.txt").write_text("x\n")
    subprocess.run(git + ["add", "file.txt"], check=True)
    subprocess.run(git + ["commit", "-qm", "one"], check=True)
    commit = subprocess.run(git + ["rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    blob = subprocess.run(git + ["rev-parse", "HEAD:file.txt"], check=True, capture_output=True,
                          text=True).stdout.strip()
    code = nbformat.v4.new_code_cell("print('ok')")
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"measured at {commit[:9]}\n")]
    cells = [nbformat.v4.new_markdown_cell(f"See {commit[:7]}, the file {blob[:7]} and deadbeef12."), code]
    counts = count_notebook(write_notebook(tmp_path / "B_x.ipynb", cells), repository)
    assert counts.commit_strings == [commit[:7]] and counts.output_commit_strings == [commit[:9]]
    assert count_notebook(write_notebook(tmp_path / "B_x.ipynb", cells[:1]), tmp_path).commit_strings is None


def test_earlier_run_phrases(tmp_path):
    cells = [nbformat.v4.new_markdown_cell("Against the previous reference run: better. The earlier run, at "
                                           "commit abc, was slower; an older commit too."),
             nbformat.v4.new_markdown_cell("The last epoch's weights; a previous step; the reference run of "
                                           "this notebook.")]
    counts = count_notebook(write_notebook(tmp_path / "02_x.ipynb", cells))
    assert counts.earlier_run_phrases == ["previous reference run", "earlier run", "at commit", "older commit"]


def test_command_prints_the_counts_table(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    write_notebook(folder / "01_x.ipynb", [nbformat.v4.new_markdown_cell("$$a$$ and $b$\n\n## Exercises\n\n1. x")])
    assert content.main(["--notebooks", str(folder), "--repository", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "| 01_x | 1 | 2 | 0 | 1 | not checked / not checked | 0 / 0 |" in printed
    assert "| lessons 1-5 together | 1 | 2 | 0 |" in printed
    assert content.main(["--notebooks", str(tmp_path / "missing")]) == 2
