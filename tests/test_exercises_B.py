"""Solutions to appendix B's coding exercises (notebooks/B_baselines.ipynb, "Exercises"), on the course's small
IMDb sample (helpers/fixtures/data/imdb), with texts lowercased and split on spaces: no spaCy, seconds."""
from __future__ import annotations

import math

import numpy as np
import pytest

from helpers.baselines import NBSVM, ngram_contributions, ngram_vectorizer
from helpers.data import read_imdb


@pytest.fixture(scope="module")
def training(fixture_data_dir):
    """(token lists, labels with 1 = positive) of the sample's training reviews."""
    train = read_imdb(fixture_data_dir)["train"]
    positive = train.label_names.index("pos")
    return [text.lower().split() for text in train.texts], (np.asarray(train.labels) == positive).astype(int)


def test_the_log_count_ratio_of_great_by_hand(training):
    """Exercise 1: r = log((p / |p|_1) / (q / |q|_1)) with p, q = 1 + the number of positive / negative texts
    holding each feature."""
    tokens, labels = training
    vectorizer = ngram_vectorizer(tfidf=False, ngram_range=(1, 1), min_df=1)
    present = vectorizer.fit_transform(tokens).toarray()
    p = 1 + present[labels == 1].sum(axis=0)   # every feature: |p|_1 needs them all
    q = 1 + present[labels == 0].sum(axis=0)
    great = vectorizer.vocabulary_["great"]
    by_hand = math.log((p[great] / p.sum()) / (q[great] / q.sum()))
    model = NBSVM(C=0.1, beta=0.5).fit(present, labels)
    assert model.ratios_[0, great] == pytest.approx(by_hand, rel=1e-5)
    assert by_hand > 0   # "great" is more typical of the positive reviews


def test_nbsvm_contributions_and_bias_give_its_score(training):
    """Exercise 2: NB-SVM's coef_ holds r * w' for the 0/1 features, so a review's n-gram contributions plus
    the bias are its decision_function."""
    tokens, labels = training
    vectorizer = ngram_vectorizer(tfidf=False, ngram_range=(1, 2), min_df=2)
    model = NBSVM(C=0.1, beta=0.5).fit(vectorizer.fit_transform(tokens), labels)
    for review in tokens[:5]:
        found = ngram_contributions(vectorizer, model.coef_[0], review)
        score = model.decision_function(vectorizer.transform([review]))[0]
        assert sum(value for _, value in found) + model.intercept_[0] == pytest.approx(score, abs=1e-5)
        assert len(found) == vectorizer.transform([review]).nnz > 0
