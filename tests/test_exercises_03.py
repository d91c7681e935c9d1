"""Lesson 3's exercise 1 (trigrams): a solution, and what any solution must pass. Runs on the fixture IMDb."""
from helpers.corpus import map_corpus
from helpers.text import Vocab, add_bigrams


def add_ngrams(tokens: list[str], n: int) -> list[str]:
    """The tokens, then every distinct k-gram for k = 2..n (k-grams of one k together, first-seen order)."""
    grams = [*tokens]
    for k in range(2, n + 1):
        grams += dict.fromkeys(" ".join(tokens[i:i + k]) for i in range(len(tokens) - k + 1))
    return grams


def test_bigrams_are_the_n_2_case(imdb_corpus):
    for tokens in list(imdb_corpus)[:50]:
        assert add_ngrams(tokens, 2) == add_bigrams(tokens)


def test_trigrams_follow_the_bigrams():
    assert add_ngrams(["not", "bad", "at", "all"], 3) == [
        "not", "bad", "at", "all", "not bad", "bad at", "at all", "not bad at", "bad at all"]
    assert add_ngrams(["so", "so", "so", "so"], 3) == ["so", "so", "so", "so", "so so", "so so so"]
    assert add_ngrams(["fine"], 3) == ["fine"]


def test_trigrams_take_places_in_the_vocabulary(imdb_corpus):
    """Counted on the fixture reviews: with trigrams some of the places go to them, and fewer to words."""
    words = Vocab.from_counts(imdb_corpus.counts(), max_size=500)
    with_trigrams = Vocab.from_counts(map_corpus(imdb_corpus, lambda t: add_ngrams(t, 3)).counts(), max_size=500)
    trigrams = [token for token in with_trigrams.itos if token.count(" ") == 2]
    assert trigrams, "no trigram made the vocabulary"
    single = sum(" " not in token for token in with_trigrams.itos)
    assert single < sum(" " not in token for token in words.itos)
