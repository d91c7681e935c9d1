"""Linear baselines on the lessons' tokens: TF-IDF n-grams with logistic regression, and NB-SVM.

scikit-learn does the counting and the fitting. This module adds what a fair comparison with
the lessons needs around it: vectorizers that read the lessons' token lists (so both see the
same spaCy tokens), NB-SVM (Wang & Manning, 2012, which scikit-learn lacks), a chooser that
picks hyperparameters on the validation split, and wall-clock timing of fitting and predicting.
Every function takes explicit arguments; nothing here knows about run profiles or files.
"""
from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

from .data import TextDataset, stratified_split


# ---------------------------------------------------------------------------- data and features

def lesson_splits(loaded: Mapping[str, TextDataset], seed: int, valid_fraction: float = 0.3
                  ) -> dict[str, TextDataset]:
    """{"train", "valid", "test"} as the lessons make them from `load_imdb` / `load_trec`'s {"train", "test"}:
    `stratified_split(loaded["train"], valid_fraction=0.3, seed=seed)` (lessons 2-4 on IMDb, lesson 5 on
    TREC) and the official test set. The same seed gives the lessons' split, example for example."""
    train, valid = stratified_split(loaded["train"], valid_fraction=valid_fraction, seed=seed)
    return {"train": train, "valid": valid, "test": loaded["test"]}


def keep_tokens(tokens: Sequence[str]) -> Sequence[str]:
    """The tokens as they are: a text arrives already tokenized (a module-level function, so a fitted
    vectorizer can be pickled)."""
    return tokens


def lowercase_tokens(tokens: Sequence[str]) -> list[str]:
    """The tokens in lower case ("Great" and "great" become one feature)."""
    return [token.lower() for token in tokens]


def ngram_vectorizer(*, tfidf: bool, ngram_range: tuple[int, int] = (1, 2), min_df: int = 2,
                     max_features: int | None = None, lowercase: bool = True,
                     sublinear_tf: bool = True) -> CountVectorizer:
    """A scikit-learn vectorizer whose documents are token lists (`list(dataset.tokens)`), not strings.

    It builds the word n-grams in `ngram_range` from the tokens it is given, so it sees exactly
    the lessons' spaCy tokens (lowercased first when `lowercase`). `min_df`: keep an n-gram found in
    at least that many training texts (most bigrams occur once; this keeps the matrix to a size
    a laptop fits in seconds); `max_features`: keep at most that many, the most frequent.
    `tfidf=True`: TF-IDF weights (with `sublinear_tf`, 1 + log(count) instead of the count, so a
    word repeated ten times is not ten times the evidence), each row scaled to length 1;
    `tfidf=False`: 0/1 presence, what NB-SVM reads. Output: a float32 sparse matrix
    [texts, features].
    """
    if min_df < 1:
        raise ValueError(f"min_df is a count of training texts, at least 1, not {min_df!r}")
    common = dict(tokenizer=keep_tokens, preprocessor=lowercase_tokens if lowercase else keep_tokens,
                  token_pattern=None, lowercase=False, ngram_range=tuple(ngram_range), min_df=min_df,
                  max_features=max_features, dtype=np.float32)
    if tfidf:
        return TfidfVectorizer(sublinear_tf=sublinear_tf, **common)
    return CountVectorizer(binary=True, **common)


def logistic_regression(C: float, n_classes: int, random_state: int = 0) -> LogisticRegression:
    """L2-regularised logistic regression with the solver that is fast for the problem: liblinear for two
    labels, lbfgs (one softmax over all labels) for more, which liblinear does not do. `random_state` fixes
    liblinear's order of visiting the examples, so the same data give the same weights."""
    if n_classes < 2:
        raise ValueError(f"a classifier needs at least 2 labels, got {n_classes}")
    if n_classes == 2:
        return LogisticRegression(C=C, solver="liblinear", random_state=random_state)
    return LogisticRegression(C=C, solver="lbfgs", max_iter=1000)


def strongest_features(weights: np.ndarray, names: Sequence[str], k: int = 10) -> tuple[list[str], list[str]]:
    """The `k` feature names with the largest and the `k` with the most negative weights.

    `weights`: float [features] (one row of a linear model's `coef_`); `names`: the vectorizer's
    `get_feature_names_out()`. Returns (largest first, most negative first).
    """
    weights = np.asarray(weights).ravel()
    if len(weights) != len(names):
        raise ValueError(f"{len(weights)} weights but {len(names)} feature names")
    order = np.argsort(weights, kind="stable")
    return [names[i] for i in order[::-1][:k]], [names[i] for i in order[:k]]


def ngram_contributions(vectorizer, weights: np.ndarray, tokens: Sequence[str]) -> list[tuple[str, float]]:
    """Why a linear model said what it did about one text: each of the text's n-grams with what it adds to the
    score (its feature value times its weight), the largest in magnitude first.

    `vectorizer`: a fitted `ngram_vectorizer`; `weights`: float [features], one row of the model's `coef_`
    (NB-SVM's `coef_` already holds r * w' for the 0/1 features its vectorizer makes); `tokens`: the text's
    tokens. The model's score is the sum of the contributions plus its bias (`intercept_`). An n-gram the
    vectorizer does not know contributes nothing and is not listed.
    """
    weights = np.asarray(weights).ravel()
    row = vectorizer.transform([list(tokens)]).tocoo()
    if len(weights) != len(vectorizer.vocabulary_):
        raise ValueError(f"{len(weights)} weights for a vectorizer of {len(vectorizer.vocabulary_)} features")
    values = row.data * weights[row.col]
    names = vectorizer.get_feature_names_out()
    order = np.argsort(-np.abs(values), kind="stable")
    return [(str(names[row.col[i]]), float(values[i])) for i in order]


# ---------------------------------------------------------------------------- NB-SVM

# ---- saved cells: generated by `python -m helpers.sync` from the notebooks' #@save cells; edit those ----

# ---- notebooks/B_baselines.ipynb, cell save-baselines-binarized ----
def binarized(features) -> sparse.csr_matrix:
    """1 where a feature is present (non-zero), else 0: NB-SVM's x-hat. Sparse in, CSR float32 out."""
    present = sparse.csr_matrix(features, dtype=np.float32, copy=True)
    present.eliminate_zeros()
    present.data[:] = 1
    return present


def log_count_ratio(present, is_positive: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Wang & Manning's r = log((p / |p|_1) / (q / |q|_1)), float [features].

    `present`: 0/1 features [texts, features]; `is_positive`: bool [texts]. p is `alpha` plus each
    feature's count over the positive texts, q the same over the others: r > 0 for a feature more
    typical of the positive texts, r < 0 for one more typical of the others, 0 for neither.
    """
    is_positive = np.asarray(is_positive, dtype=bool)
    if alpha <= 0:
        raise ValueError(f"alpha (the smoothing count) must be positive, got {alpha!r}")
    if is_positive.all() or not is_positive.any():
        raise ValueError("log_count_ratio needs texts of both sides (is_positive all True or all False)")
    p = alpha + np.asarray(present[is_positive].sum(axis=0)).ravel()
    q = alpha + np.asarray(present[~is_positive].sum(axis=0)).ravel()
    return np.log((p / p.sum()) / (q / q.sum()))


def interpolate(weights: np.ndarray, bias: float, beta: float) -> tuple[np.ndarray, float]:
    """Wang & Manning's interpolation between Naive Bayes and the SVM: (w', b') with
    w' = (1 - beta) * mean(|w|) + beta * w and b' = beta * b.

    beta = 1 keeps the SVM's weights (on the ratio-scaled features, so not a plain SVM on x); beta = 0 gives
    every feature the same weight, so the score is Naive Bayes' sum of log-count ratios (times a constant) with no offset; the paper's beta = 0.25 trusts
    Naive Bayes unless the SVM is confident. The paper does not say what becomes of the bias: it is
    scaled with the weights here, so that beta = 0 is Naive Bayes' decision exactly (kept whole, the
    bias would outweigh the shrunken weights).
    """
    if not 0 <= beta <= 1:
        raise ValueError(f"beta interpolates between 0 and 1, got {beta!r}")
    weights = np.asarray(weights, dtype=np.float64)
    return (1 - beta) * np.abs(weights).mean() + beta * weights, beta * float(bias)


class NBSVM(ClassifierMixin, BaseEstimator):
    """NB-SVM (Wang & Manning, 2012, *Baselines and Bigrams*): a linear SVM on Naive Bayes log-count ratios.

    Each feature is made 0/1 (present or not) and scaled by its log-count ratio r (see
    `log_count_ratio`), a linear SVM (L2 regularisation, squared hinge loss: liblinear's default,
    as in the paper) is fitted on x * r, and its weights w are interpolated with their mean
    magnitude (`interpolate`, `beta`). A text's score is (x * r) . w' + b'. With more than
    two labels, one such model per label against the rest, and the highest score wins.

    `C`: the SVM's inverse regularisation strength; `beta`: the interpolation (1 = the SVM's own
    weights on x * r, no interpolation; 0 = Naive Bayes' sum of the ratios); `alpha`: the counts' smoothing; `random_state`: the SVM solver's order of visiting the
    examples (fixed: the same data give the same weights). After `fit`: `classes_`, `ratios_` float
    [models, features] (r of each label's model), `coef_` float [models, features] (r * w', the
    weights on the 0/1 features) and `intercept_` float [models]; one model for two labels.
    """

    def __init__(self, C: float = 1.0, beta: float = 0.25, alpha: float = 1.0, max_iter: int = 1000,
                 random_state: int = 0):
        self.C = C
        self.beta = beta
        self.alpha = alpha
        self.max_iter = max_iter
        self.random_state = random_state

    def fit(self, features, labels) -> "NBSVM":
        """Fit on `features` [texts, features] (any non-negative sparse or dense matrix) and `labels` [texts]."""
        present = binarized(features)
        labels = np.asarray(labels)
        self.classes_ = np.unique(labels)
        if len(self.classes_) < 2:
            raise ValueError(f"NBSVM needs at least 2 labels in the training data, got {len(self.classes_)}")
        # two labels: one model for the second label; more: one per label against the rest
        targets = self.classes_[1:] if len(self.classes_) == 2 else self.classes_
        ratios, coefs, intercepts = [], [], []
        for target in targets:
            is_target = labels == target
            ratio = log_count_ratio(present, is_target, self.alpha)
            svm = LinearSVC(C=self.C, max_iter=self.max_iter, random_state=self.random_state).fit(present.multiply(ratio).tocsr(), is_target)
            weights, bias = interpolate(svm.coef_.ravel(), svm.intercept_[0], self.beta)
            ratios.append(ratio)
            coefs.append(ratio * weights)
            intercepts.append(bias)
        self.ratios_ = np.vstack(ratios)
        self.coef_ = np.vstack(coefs)
        self.intercept_ = np.asarray(intercepts)
        self.n_features_in_ = present.shape[1]
        return self

    def decision_function(self, features) -> np.ndarray:
        """Scores: float [texts] for two labels (> 0: the second label), else float [texts, labels]."""
        scores = binarized(features) @ self.coef_.T + self.intercept_
        return scores.ravel() if len(self.classes_) == 2 else scores

    def predict(self, features) -> np.ndarray:
        """The label with the highest score, [texts]."""
        scores = self.decision_function(features)
        if len(self.classes_) == 2:
            return self.classes_[(scores > 0).astype(int)]
        return self.classes_[scores.argmax(axis=1)]

# ---- end of saved cells ----


# ---------------------------------------------------------------------------- choosing and timing

def timed_fit(model, features, labels) -> float:
    """Fit `model` in place and return the wall-clock seconds it took."""
    start = time.perf_counter()
    model.fit(features, labels)
    return time.perf_counter() - start


def timed_predict(model, features) -> tuple[np.ndarray, float]:
    """(`model.predict(features)`, predictions per second, wall clock). `features` may be the raw input
    of a pipeline (token lists), so the rate includes whatever the pipeline does before the model."""
    start = time.perf_counter()
    predictions = model.predict(features)
    seconds = time.perf_counter() - start
    return predictions, len(predictions) / max(seconds, 1e-9)


@dataclass
class Choice:
    """What `choose_on_validation` found: `params` of the best grid point, `model` fitted with them on the
    training split, `table`: one dict per grid point, in grid order ({**params, "valid_accuracy",
    "fit_seconds"}), and `index`: the chosen row's place in it."""

    params: dict
    model: object
    table: list[dict]
    index: int

    def describe(self) -> str:
        """The chosen parameters as text, e.g. "C=4, chosen on validation"."""
        return ", ".join(f"{name}={value:g}" if isinstance(value, (int, float)) else f"{name}={value}"
                         for name, value in self.params.items()) + ", chosen on validation"

    def edges(self) -> dict[str, str]:
        """The numeric parameters whose chosen value is the smallest or the largest one tried, e.g.
        {"C": "largest"}: the best score may lie beyond the grid, so a wider grid is worth a try."""
        found = {}
        for name, value in self.params.items():
            tried = sorted({row[name] for row in self.table if isinstance(row[name], (int, float))})
            if len(tried) > 1 and value in (tried[0], tried[-1]):
                found[name] = "smallest" if value == tried[0] else "largest"
        return found

    def table_text(self) -> str:
        """The grid as a compact table, one line per grid point, the chosen one marked with *."""
        lines = []
        for number, row in enumerate(self.table):
            params = "  ".join(f"{name}={row[name]:<6g}" for name in self.params)
            chosen = " *" if number == self.index else ""
            lines.append(f"{params} | validation {row['valid_accuracy']:.2%} | fit {row['fit_seconds']:5.1f} s{chosen}")
        return "\n".join(lines)


def grid_points(grid: Mapping[str, Sequence]) -> list[dict]:
    """Every combination of the grid's values, in order (the last parameter varies fastest). A grid with no
    parameter, or a parameter with no value, is a ValueError naming it."""
    if not grid:
        raise ValueError("the grid is empty: give each parameter a list of values to try, e.g. {'C': [0.1, 1, 10]}")
    empty = [name for name, values in grid.items() if len(values) == 0]
    if empty:
        raise ValueError(f"the grid gives no value to try for {', '.join(empty)}: each parameter needs at least one")
    names = list(grid)
    return [dict(zip(names, values)) for values in itertools.product(*(grid[name] for name in names))]


def choose_on_validation(make_model: Callable[..., object], grid: Mapping[str, Sequence], train_features,
                         train_labels, valid_features, valid_labels) -> Choice:
    """Fit `make_model(**params)` on the training split for every point of `grid` ({"C": [...], ...}),
    score each by accuracy on the validation split, and keep the best (the first in grid order on a tie).

    The test split takes no part: it is used once, afterwards, with the chosen model.
    """
    table, best, best_model = [], None, None
    for number, params in enumerate(grid_points(grid)):
        model = make_model(**params)
        seconds = timed_fit(model, train_features, train_labels)
        accuracy = float(np.mean(model.predict(valid_features) == np.asarray(valid_labels)))
        table.append({**params, "valid_accuracy": accuracy, "fit_seconds": seconds})
        if best is None or accuracy > table[best]["valid_accuracy"]:
            best, best_model = number, model
    return Choice(params={name: table[best][name] for name in grid}, model=best_model, table=table, index=best)
