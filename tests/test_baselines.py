"""helpers.baselines: NB-SVM on problems whose answer is known, the validation grid chooser, the vectorizer on
the lessons' tokens, and the splits appendix B uses (the lessons' own) on the shipped data."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from helpers.baselines import (NBSVM, binarized, choose_on_validation, grid_points, interpolate, lesson_splits,
                               log_count_ratio, logistic_regression, ngram_contributions, ngram_vectorizer,
                               strongest_features, timed_fit, timed_predict)
from helpers.data import load_imdb, load_trec, stratified_split

# Four "positive" texts with feature 0, four "negative" with feature 1, all eight with feature 2 (twice in some,
# which presence ignores). With smoothing 1: p = [5, 1, 5] and q = [1, 5, 5], both summing to 11.
KNOWN_FEATURES = sparse.csr_matrix(np.array([[1, 0, 1]] * 4 + [[0, 1, 2]] * 4, dtype=np.float32))
KNOWN_LABELS = np.array([1] * 4 + [0] * 4)


def test_log_count_ratio_has_the_value_worked_out_by_hand():
    ratio = log_count_ratio(binarized(KNOWN_FEATURES), KNOWN_LABELS == 1, alpha=1.0)
    assert ratio == pytest.approx([np.log(5), -np.log(5), 0.0])


def test_log_count_ratio_refuses_one_sided_labels_and_no_smoothing():
    with pytest.raises(ValueError, match="both sides"):
        log_count_ratio(KNOWN_FEATURES, np.ones(8, dtype=bool))
    with pytest.raises(ValueError, match="alpha"):
        log_count_ratio(KNOWN_FEATURES, KNOWN_LABELS == 1, alpha=0)


def test_interpolation_keeps_the_svm_at_one_and_gives_naive_bayes_at_zero():
    weights = np.array([2.0, -1.0, 0.0])
    kept, bias = interpolate(weights, 0.5, beta=1.0)
    assert kept == pytest.approx(weights) and bias == 0.5
    flat, bias = interpolate(weights, 0.5, beta=0.0)
    assert flat == pytest.approx([1.0, 1.0, 1.0]) and bias == 0.0       # mean |w| = 1, no offset
    halfway, _ = interpolate(weights, 0.5, beta=0.25)
    assert halfway == pytest.approx([0.75 + 0.5, 0.75 - 0.25, 0.75])
    with pytest.raises(ValueError, match="beta"):
        interpolate(weights, 0.0, beta=1.5)


def test_nbsvm_learns_the_separating_feature_and_labels_new_texts():
    model = NBSVM(C=1.0, beta=0.25).fit(KNOWN_FEATURES, KNOWN_LABELS)
    assert model.classes_.tolist() == [0, 1] and model.coef_.shape == (1, 3)
    assert model.coef_[0, 0] > 0 > model.coef_[0, 1] and model.coef_[0, 2] == pytest.approx(0.0)
    new_texts = sparse.csr_matrix(np.array([[3, 0, 1], [0, 1, 0], [1, 0, 0]], dtype=np.float32))
    assert model.predict(new_texts).tolist() == [1, 0, 1]
    assert model.predict(KNOWN_FEATURES).tolist() == KNOWN_LABELS.tolist()
    # only presence counts: a text with feature 2 twice scores as with it once
    twice, once = model.decision_function(sparse.csr_matrix([[0, 1, 2], [0, 1, 1]], dtype=np.float32))
    assert twice == pytest.approx(once)


def test_nbsvm_at_beta_zero_is_naive_bayes_sum_of_ratios():
    model = NBSVM(C=1.0, beta=0.0).fit(KNOWN_FEATURES, KNOWN_LABELS)
    scale = model.coef_[0, 0] / np.log(5)
    assert scale > 0 and model.coef_[0] == pytest.approx(scale * model.ratios_[0]) and model.intercept_[0] == 0


def test_nbsvm_with_three_labels_fits_one_model_per_label_and_picks_the_highest():
    features = sparse.csr_matrix(np.array([[1, 0, 0, 1]] * 3 + [[0, 1, 0, 1]] * 3 + [[0, 0, 1, 1]] * 3,
                                          dtype=np.float32))
    labels = np.array(["a"] * 3 + ["b"] * 3 + ["c"] * 3)
    model = NBSVM(C=1.0, beta=1.0).fit(features, labels)
    assert model.coef_.shape == (3, 4) and model.decision_function(features).shape == (9, 3)
    assert model.predict(sparse.csr_matrix(np.eye(3, 4, dtype=np.float32))).tolist() == ["a", "b", "c"]
    with pytest.raises(ValueError, match="at least 2 labels"):
        NBSVM().fit(features[:3], labels[:3])


class Scripted:
    """A model whose validation accuracy is set by its one parameter: it predicts label 1 for the first
    `right` validation examples (all labelled 1) and label 0 for the rest."""

    def __init__(self, right: int, tag: str = ""):
        self.right, self.tag = right, tag

    def fit(self, features, labels):
        return self

    def predict(self, features):
        return (np.arange(len(features)) < self.right).astype(int)


def test_choose_on_validation_picks_the_best_validation_score_first_on_a_tie():
    valid = np.zeros((10, 1))
    choice = choose_on_validation(Scripted, {"right": [3, 8, 5, 8]}, np.zeros((4, 1)), np.zeros(4), valid,
                                  np.ones(10, dtype=int))
    assert [row["valid_accuracy"] for row in choice.table] == [0.3, 0.8, 0.5, 0.8]
    assert choice.params == {"right": 8} and choice.index == 1 and choice.model.right == 8
    assert [row["right"] for row in choice.table] == [3, 8, 5, 8]
    assert all(row["fit_seconds"] >= 0 for row in choice.table)
    assert choice.describe() == "right=8, chosen on validation"
    lines = choice.table_text().splitlines()
    assert len(lines) == 4 and lines[1].endswith(" *") and not lines[3].endswith(" *")


def test_a_choice_on_the_edge_of_its_grid_says_which_edge():
    def choose(grid):
        return choose_on_validation(Scripted, grid, np.zeros((1, 1)), np.zeros(1), np.zeros((10, 1)),
                                    np.ones(10, dtype=int))

    # Scripted(right=r) scores min(r, 10) / 10 on these 10 validation labels
    assert choose({"right": [3, 8, 5]}).edges() == {"right": "largest"}
    assert choose({"right": [10, 11, 12]}).edges() == {"right": "smallest"}  # all score 100%: the first wins
    assert choose({"right": [9, 2, 5]}).edges() == {"right": "largest"}
    assert choose({"right": [3, 10, 12]}).edges() == {}                       # 10 and 12 tie: 10, inside the grid
    assert choose({"right": [3, 5, 4]}).edges() == {"right": "largest"}
    assert choose({"right": [2, 5, 8, 1]}).edges() == {"right": "largest"}
    assert choose({"right": [2, 10, 11, 1]}).edges() == {}
    assert choose({"right": [8]}).edges() == {}                                # one value: no edge to speak of
    assert choose({"right": [3, 9], "tag": ["x", "y"]}).edges() == {"right": "largest"}   # text values: no edge


def test_choose_on_validation_tries_every_combination_of_two_parameters():
    points = grid_points({"right": [1, 2], "tag": ["x", "y", "z"]})
    assert points == [{"right": r, "tag": t} for r in (1, 2) for t in ("x", "y", "z")]
    choice = choose_on_validation(Scripted, {"right": [1, 2], "tag": ["x", "y"]}, np.zeros((2, 1)), np.zeros(2),
                                  np.zeros((4, 1)), np.ones(4, dtype=int))
    assert choice.params == {"right": 2, "tag": "x"} and len(choice.table) == 4


@pytest.mark.parametrize("grid, named", [({}, "the grid is empty"), ({"C": []}, "no value to try for C"),
                                         ({"C": [1], "beta": ()}, "no value to try for beta")])
def test_an_empty_grid_is_refused_with_a_clear_error(grid, named):
    with pytest.raises(ValueError, match=named):
        choose_on_validation(Scripted, grid, np.zeros((2, 1)), np.zeros(2), np.zeros((2, 1)), np.zeros(2))


def test_vectorizer_reads_token_lists_lowercased_with_bigrams_and_a_minimum_count():
    texts = [["Not", "good", "."], ["not", "good", "at", "all"], ["Great", "!"]]
    counts = ngram_vectorizer(tfidf=False, min_df=2)
    present = counts.fit_transform(texts)
    assert counts.get_feature_names_out().tolist() == ["good", "not", "not good"]
    assert present.toarray().tolist() == [[1, 1, 1], [1, 1, 1], [0, 0, 0]]
    cased = ngram_vectorizer(tfidf=True, min_df=1, lowercase=False).fit(texts)
    assert {"Not", "not", "Not good", "Great !"} <= set(cased.get_feature_names_out())
    weights = ngram_vectorizer(tfidf=True, min_df=1).fit_transform(texts)
    assert np.linalg.norm(weights.toarray(), axis=1) == pytest.approx([1, 1, 1])   # each text scaled to length 1
    with pytest.raises(ValueError, match="min_df"):
        ngram_vectorizer(tfidf=True, min_df=0)


def test_ngram_contributions_add_up_to_the_score_of_either_model():
    texts = [["not", "good", "at", "all"], ["good", "fun"], ["great", "fun", "!"], ["not", "fun"], ["dull", "."],
             ["not", "great", ",", "dull"], ["good", "and", "great"], ["dull", "and", "not", "good"]]
    labels = np.array([0, 1, 1, 0, 0, 0, 1, 0])
    review = ["Not", "good", ",", "not", "fun", "at", "all", "zzz"]
    for tfidf, model in ((True, logistic_regression(10.0, 2)), (False, NBSVM(C=1.0, beta=0.5))):
        vectorizer = ngram_vectorizer(tfidf=tfidf, min_df=1)
        model.fit(vectorizer.fit_transform(texts), labels)
        found = ngram_contributions(vectorizer, model.coef_[0], review)
        names = [name for name, _ in found]
        assert {"not good", "not fun", "at all", "good"} <= set(names) and "zzz" not in names
        assert len(names) == len(set(names))
        assert [abs(value) for _, value in found] == sorted((abs(value) for _, value in found), reverse=True)
        score = model.decision_function(vectorizer.transform([review]))[0]
        assert sum(value for _, value in found) + model.intercept_[0] == pytest.approx(score, abs=1e-5)
    with pytest.raises(ValueError, match="3 weights for a vectorizer of"):
        ngram_contributions(vectorizer, np.zeros(3), review)


def test_logistic_regression_takes_the_solver_the_labels_need():
    assert logistic_regression(4.0, 2).solver == "liblinear"
    assert logistic_regression(4.0, 6).solver == "lbfgs"
    with pytest.raises(ValueError, match="at least 2 labels"):
        logistic_regression(1.0, 1)


def test_strongest_features_in_both_directions():
    names = ["bad", "good", "the", "great", "awful"]
    assert strongest_features(np.array([-2.0, 1.0, 0.0, 3.0, -1.0]), names, k=2) == (["great", "good"],
                                                                                     ["bad", "awful"])
    with pytest.raises(ValueError, match="5 feature names"):
        strongest_features(np.zeros(3), names)


def test_timing_returns_the_predictions_and_a_positive_rate():
    model = NBSVM(C=1.0)
    assert timed_fit(model, KNOWN_FEATURES, KNOWN_LABELS) >= 0
    predictions, per_second = timed_predict(model, KNOWN_FEATURES)
    assert predictions.tolist() == KNOWN_LABELS.tolist() and per_second > 0


@pytest.mark.parametrize("load, sizes", [(load_imdb, (140, 60, 200)), (load_trec, (420, 180, 150))])
def test_appendix_b_uses_the_lessons_splits_on_the_shipped_data(fixture_data_dir, tokenizer, load, sizes):
    """The shipped sample: IMDb 200 training / 200 test reviews, TREC 600 / 150 questions. 70/30 as the
    lessons split them, example for example (lessons 2-4 and 5 call stratified_split(train, 0.3, seed))."""
    loaded = load(tokenizer, fixture_data_dir, use_cache=False, workers=1)
    parts = lesson_splits(loaded, seed=1234)
    assert tuple(len(parts[split]) for split in ("train", "valid", "test")) == sizes
    lesson_train, lesson_valid = stratified_split(loaded["train"], valid_fraction=0.3, seed=1234)
    assert parts["train"].texts == lesson_train.texts and parts["valid"].texts == lesson_valid.texts
    assert parts["test"] is loaded["test"]
