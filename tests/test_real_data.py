"""The full datasets: run with SENTIMENT_DATA_DIR set to the real data folder (slow, ~2 minutes cold).

    SENTIMENT_DATA_DIR=../shared/data python -m pytest tests/test_real_data.py

Skipped when SENTIMENT_DATA_DIR is not set. All tests share one cache folder, so
IMDb is tokenized once per session.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

import helpers.data as data_module
from helpers.data import load_imdb, load_trec, read_trec, stratified_split
from helpers.text import Vocab
from helpers.vectors import coverage, load_glove


@pytest.fixture(scope="module")
def imdb(real_data_dir, real_cache):
    return load_imdb(data_directory=real_data_dir, cache=real_cache)


def test_imdb_sizes_and_balance(imdb):
    train, valid = stratified_split(imdb["train"], 0.3, seed=1234)
    sizes = {"train": 17_500, "valid": 7_500, "test": 25_000}
    for name, dataset in (("train", train), ("valid", valid), ("test", imdb["test"])):
        assert len(dataset) == sizes[name]
        assert np.bincount(dataset.labels).tolist() == [sizes[name] // 2] * 2
        assert len(dataset.tokens) == sizes[name]
    assert imdb["train"].label_names == ["neg", "pos"]
    # a partition of train (IMDb has a few duplicate reviews, so compare as multisets)
    assert Counter(train.texts + valid.texts) == Counter(imdb["train"].texts)


def test_imdb_tokens_and_vocab(imdb):
    train = imdb["train"]
    lengths = train.tokens.lengths()
    assert 200 < lengths.mean() < 320  # about 270 spaCy tokens per review
    counts = train.tokens.counts()
    assert not {"br", "<br", "/><br", "/>"} & set(counts)  # <br /> removed ("<" alone occurs in reviews)
    vocab = Vocab.from_counts(counts, max_size=25_000)
    assert len(vocab) == 25_002
    ids, offsets = train.tokens.encode(vocab)
    assert len(ids) == offsets[-1] and 0 < (ids == vocab.unk_index).mean() < 0.05


def test_imdb_second_load_comes_from_cache(imdb, real_data_dir, real_cache, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("tokenized again")

    monkeypatch.setattr(data_module, "tokenize_corpus", refuse)
    again = load_imdb(data_directory=real_data_dir, cache=real_cache)
    assert again["test"].texts[:50] == imdb["test"].texts[:50]
    assert np.array_equal(again["test"].tokens.ids, imdb["test"].tokens.ids)


def test_trec_sizes_and_labels(real_data_dir, real_cache):
    coarse = load_trec(data_directory=real_data_dir, cache=real_cache)
    assert (len(coarse["train"]), len(coarse["test"])) == (5_452, 500)
    assert coarse["train"].label_names == ["ENTY", "HUM", "DESC", "NUM", "LOC", "ABBR"]  # by falling frequency
    assert np.bincount(coarse["train"].labels).tolist() == [1250, 1223, 1162, 896, 835, 86]
    fine = read_trec(real_data_dir, fine=True)
    assert len(fine["train"].label_names) == 50
    assert len(np.unique(fine["train"].labels)) == 50
    assert len(np.unique(fine["test"].labels)) == 42
    assert sum("sister\ufffdcity" in text for text in coarse["train"].texts) == 1


def test_glove_50d(real_data_dir, real_cache, imdb):
    glove = load_glove("glove.6B.50d", real_data_dir, cache=real_cache)
    assert len(glove) == 400_000 and glove.dim == 50
    assert glove.itos[:3] == ["the", ",", "."]
    vocab = Vocab.from_counts(imdb["train"].tokens.counts(), max_size=25_000)
    exact, fallback = coverage(vocab, glove), coverage(vocab, glove, lowercase_fallback=True)
    # GloVe is lowercase: exact matching (torchtext's) misses "The", "I", ... (measured: 63.6% vs 98.9%)
    assert 0.55 < exact["share"] < 0.75 and fallback["share"] > 0.95
    assert "The" in exact["missing_examples"] and "The" not in fallback["missing_examples"]
