"""The README for students: short, its notebook table in step with results/, its links alive, and one tested
Python range stated alike everywhere."""
import re
import tomllib
from pathlib import Path

import pytest

from helpers import run

REPO_ROOT = Path(__file__).resolve().parents[1]
README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
REFERENCE_HEADING = "\n## Reference material\n"
WORD_LIMIT = 1000
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_the_students_part_is_at_most_1000_words():
    assert REFERENCE_HEADING in README, "README has no '## Reference material' heading"
    words = len(README.split(REFERENCE_HEADING, 1)[0].split())   # as `wc -w` counts, tables included
    assert words <= WORD_LIMIT, f"README has {words} words before the reference material ({WORD_LIMIT} at most)"


def test_the_runner_tables_and_the_code_map_sit_where_they_belong():
    students, reference = README.split(REFERENCE_HEADING, 1)
    assert "<!-- notebooks:start -->" in students and "<!-- notebooks:end -->" in students
    assert "<!-- results:start -->" in reference and "<!-- results:end -->" in reference
    assert "\n## Layout\n" in reference


def test_the_notebook_table_is_the_one_the_runner_writes_from_results():
    results = REPO_ROOT / "results"
    rows = run.collect_rows(results, run.discover(REPO_ROOT / "notebooks"))
    table = README.split("<!-- notebooks:start -->\n", 1)[1].split("<!-- notebooks:end -->", 1)[0]
    assert table == run.notebook_table(rows, results, REPO_ROOT), (
        "README's notebook table differs from results/: python -m helpers.run --summary-only --readme")


@pytest.mark.parametrize("page", ["README.md", *sorted(path.relative_to(REPO_ROOT).as_posix()
                                                        for path in (REPO_ROOT / "docs").glob("*.md"))])
def test_relative_links_lead_to_files(page):
    path = REPO_ROOT / page
    missing = []
    for target in LINK.findall(path.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        if not (path.parent / target.split("#", 1)[0]).exists():
            missing.append(target)
    assert not missing, f"{page} links to missing files: {missing}"


def test_one_python_range_everywhere():
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["requires-python"] == ">=3.11"     # no cap: a newer Colab still installs
    assert [c.rsplit(" :: ", 1)[1] for c in pyproject["project"]["classifiers"] if "Python :: 3." in c] == ["3.11", "3.12"]
    environment = (REPO_ROOT / "environment.yml").read_text(encoding="utf-8")
    assert re.search(r"^\s*- python>=3\.11,<3\.13\b", environment, re.M)
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    assert "for name in python3.11 python3.12;" in makefile and "(3, 11) <= sys.version_info[:2] <= (3, 12)" in makefile
    assert not re.search(r"python3\.1[03]\b|python3\.9", makefile)
    assert "Python 3.11 or 3.12" in README and "Tested on 3.11-3.12" in README
    assert "**Python 3.11-3.12**" in (REPO_ROOT / "docs" / "course-guide.md").read_text(encoding="utf-8")


def test_make_lab_installs_the_lab_extra_and_opens_the_notebooks():
    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"]
    assert extras["lab"] == ["jupyterlab"]
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    assert '-e ".[lab]"' in makefile and "jupyter lab notebooks/" in makefile
    assert "make lab" in README
