"""Solutions to lesson 7's coding exercises (notebooks/07_deployment.ipynb, "Exercises"), on a small FastText
bundle exported as lesson 3 exports it (`lesson3_leftovers` of tests/test_lesson7.py): no network, seconds."""
from __future__ import annotations

import json

import numpy as np
import pytest

from deployment import handler
from deployment.events import http_event
from test_lesson7 import lesson3_leftovers  # noqa: F401 (fixture: bundle, weights, model, encoding)

TEXTS = ["A wonderful, moving film.", "Not good at all.", "The plot was thin, but the acting made up for it."]


@pytest.fixture
def serving(lesson3_leftovers, monkeypatch):  # noqa: F811
    """The handler pointed at the small bundle, as lesson 7 points it at its export; the bundle's Model."""
    bundle = lesson3_leftovers[0]
    monkeypatch.setenv("MODELS_DIR", str(bundle.parent))
    monkeypatch.setenv("SENTIMENT_MODEL", bundle.name)
    handler._models.clear()   # a model is loaded once per process: forget any other bundle
    yield handler.Model(bundle)
    handler._models.clear()


def test_handler_probability_is_the_sigmoid_of_the_logit(serving):
    """Exercise 1: P(positive) = sigma(z) for the bundle's one logit z; a "negative" answer gives 1 - sigma(z)."""
    answer = handler.sentiment(http_event("POST", {"texts": TEXTS}))
    assert answer["statusCode"] == 200
    predictions = json.loads(answer["body"])["predictions"]
    z = serving.logits(TEXTS)[:, 0].astype("float64")
    positive = 1 / (1 + np.exp(-z))
    assert len(predictions) == len(TEXTS)
    for prediction, p, logit in zip(predictions, positive, z):
        assert prediction["label"] == ("positive" if logit > 0 else "negative")
        assert prediction["probability"] == pytest.approx(p if logit > 0 else 1 - p, abs=1e-6)
        assert prediction["probabilities"]["positive"] == pytest.approx(p, abs=1e-6)


def test_one_text_too_many_is_refused_with_the_limit(serving):
    """Exercise 2: 65 texts is one over MAX_TEXTS: 413 (too large), and the error names count and limit."""
    answer = handler.sentiment(http_event("POST", {"texts": ["Fine."] * (handler.MAX_TEXTS + 1)}))
    assert answer["statusCode"] == 413
    assert json.loads(answer["body"])["error"] == f'"texts" has {handler.MAX_TEXTS + 1} items; the limit is 64'
    assert handler.sentiment(http_event("POST", {"texts": ["Fine."] * handler.MAX_TEXTS}))["statusCode"] == 200
