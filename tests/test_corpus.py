"""helpers.corpus: TokenizedCorpus and parallel tokenizing."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from helpers.corpus import TokenizedCorpus, map_corpus, tokenize_corpus
from helpers.text import UNK, Vocab, add_bigrams

TEXTS = ["Don't stop!", "", "A good film, a good cast.", "Bad<br />bad.", "good good good"]


@pytest.fixture(scope="module")
def small(tokenizer):
    return tokenize_corpus(TEXTS, tokenizer, workers=1)


def test_tokenize_corpus_matches_tokenizer(small, tokenizer):
    assert len(small) == len(TEXTS)
    assert [small.tokens(i) for i in range(len(TEXTS))] == [tokenizer(t) for t in TEXTS]
    assert list(small) == [tokenizer(t) for t in TEXTS]
    assert small.lengths().tolist() == [len(tokenizer(t)) for t in TEXTS]
    assert small.ids.dtype == np.int32 and small.offsets.dtype == np.int64
    assert len(set(small.words)) == len(small.words)  # each distinct token once


def test_tokenize_corpus_on_fixture_imdb(imdb_corpus, imdb_fixture, tokenizer):
    texts = imdb_fixture["train"].texts
    assert len(imdb_corpus) == len(texts)
    for i in range(0, len(texts), 37):
        assert imdb_corpus.tokens(i) == tokenizer(texts[i])
    assert imdb_corpus.offsets[-1] == len(imdb_corpus.ids)


def test_parallel_tokenizing_gives_the_same_documents(imdb_fixture, imdb_corpus, tokenizer):
    texts = imdb_fixture["train"].texts[:120]
    parallel = tokenize_corpus(texts, tokenizer, workers=2, chunk_size=25)
    assert list(parallel) == [imdb_corpus.tokens(i) for i in range(120)]


def test_tokenize_empty_input(tokenizer):
    corpus = tokenize_corpus([], tokenizer, workers=1)
    assert len(corpus) == 0 and corpus.counts() == {} and len(corpus.ids) == 0


def test_counts(small, tokenizer):
    expected = Counter(token for text in TEXTS for token in tokenizer(text))
    assert small.counts() == dict(expected)
    assert small.counts()["good"] == 5


def test_subset_keeps_requested_order(imdb_corpus):
    picked = [5, 0, 17, 17, 3]
    sub = imdb_corpus.subset(picked)
    assert len(sub) == 5
    assert list(sub) == [imdb_corpus.tokens(i) for i in picked]
    assert sub.offsets[0] == 0 and sub.offsets[-1] == len(sub.ids)
    assert len(imdb_corpus.subset([])) == 0


def test_encode_maps_through_vocab(small, tokenizer):
    vocab = Vocab.from_counts(small.counts(), max_size=3)  # good, ., ! ... the rest unknown
    ids, offsets = small.encode(vocab)
    assert ids.dtype == np.int64
    assert np.array_equal(offsets, small.offsets)
    for i, text in enumerate(TEXTS):
        assert ids[offsets[i]:offsets[i + 1]].tolist() == vocab.lookup_indices(tokenizer(text))
    assert (ids == vocab[UNK]).any()


def test_encode_without_default_index_raises(small):
    vocab = Vocab(["good"], specials=(), default_token=None)
    with pytest.raises(KeyError):
        small.encode(vocab)


def test_with_bigrams_equals_map_corpus_add_bigrams(imdb_corpus, small):
    for corpus in (small, imdb_corpus):
        fast = corpus.with_bigrams()
        slow = map_corpus(corpus, add_bigrams)
        assert list(fast) == list(slow)
        assert fast.counts() == slow.counts()
        assert fast.ids.dtype == np.int32 and fast.offsets.dtype == np.int64


def test_with_bigrams_small_example(tokenizer):
    corpus = tokenize_corpus(["not good at all", "a b a b"], tokenizer, workers=1).with_bigrams()
    assert list(corpus) == [["not", "good", "at", "all", "not good", "good at", "at all"],
                            ["a", "b", "a", "b", "a b", "b a"]]


def test_save_load_round_trip(tmp_path, imdb_corpus):
    imdb_corpus.save(tmp_path / "corpus")
    loaded = TokenizedCorpus.load(tmp_path / "corpus")
    assert loaded.words == imdb_corpus.words
    assert np.array_equal(loaded.ids, imdb_corpus.ids) and loaded.ids.dtype == imdb_corpus.ids.dtype
    assert np.array_equal(loaded.offsets, imdb_corpus.offsets)
    assert sorted(p.name for p in (tmp_path / "corpus").iterdir()) == ["ids.npy", "offsets.npy", "words.json"]
