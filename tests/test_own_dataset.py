"""Appendix A's shipped CSV (helpers/fixtures/data/own/reviews.csv) and the script that makes it."""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

from helpers.course import FIXTURE_DATA_DIR
from helpers.data import load_table, read_table
from helpers.files import DataError
from helpers.run import discover

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "tests"))

from make_fixtures import OWN_MAX_CHARS, make_own_reviews, short_review  # noqa: E402

OWN_CSV = FIXTURE_DATA_DIR / "own" / "reviews.csv"


def test_shipped_csv_reads_with_string_labels_in_the_notebooks_columns(tmp_cache):
    dataset = load_table(OWN_CSV, text_column="review", label_column="sentiment")
    assert dataset.label_names == ["negative", "positive"]
    assert len(dataset) == 400 and dataset.labels.tolist().count(1) == 200
    assert all(0 < len(text) <= OWN_MAX_CHARS + 3 for text in dataset.texts)
    assert all("<br" not in text for text in dataset.texts)
    assert min(dataset.tokens.lengths()) >= 1


def test_a_wrong_column_names_the_file_and_its_columns():
    with pytest.raises(DataError, match=r"reviews\.csv has no column 'text' \(columns: review, sentiment, source\)"):
        read_table(OWN_CSV, text_column="text", label_column="sentiment")


def test_shipped_csv_is_what_the_script_makes_from_the_shipped_reviews(tmp_path):
    assert make_own_reviews(tmp_path, imdb=FIXTURE_DATA_DIR / "imdb") == 400
    assert (tmp_path / "own" / "reviews.csv").read_bytes() == OWN_CSV.read_bytes()


def test_short_review_keeps_the_closing_sentences_within_the_limit():
    text = "It opens slowly.<br /><br />The middle   drags! But the end is great. 9/10"
    # "9/10" starts no sentence (no capital after the full stop), so it stays with "great."
    assert short_review(text, max_sentences=1, max_chars=300) == "But the end is great. 9/10"
    assert short_review(text, max_sentences=2, max_chars=300) == "The middle drags! But the end is great. 9/10"
    assert short_review(text, max_sentences=3, max_chars=300) == (
        "It opens slowly. The middle drags! But the end is great. 9/10")
    assert short_review(text, max_sentences=3, max_chars=30) == "But the end is great. 9/10"
    long_sentence = "word " * 100 + "and a final verdict"
    cut = short_review(long_sentence, max_chars=40)
    assert cut.startswith("...") and cut.endswith("and a final verdict") and len(cut) <= 43


def test_appendix_notebook_is_discovered_with_its_metadata_and_checked_cells():
    appendix = {lesson.key: lesson for lesson in discover(REPO_ROOT / "notebooks")}["A"]
    assert appendix.stem == "A_own_dataset" and appendix.published_accuracy is None and appendix.title
    notebook = nbformat.read(appendix.path, as_version=4)
    tags = [tag for cell in notebook.cells for tag in cell.metadata.get("tags", [])]
    assert tags.count("parameters") == 1 and "nbval-check-output" in tags
