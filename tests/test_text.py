"""helpers.text: the spaCy tokenizer, bigrams and the vocabulary."""
from __future__ import annotations

import json
import pickle
from collections import Counter

import pytest

from helpers.text import LONG_CHUNK_PIECE_CHARS, MAX_CHUNK_CHARS, MAX_TOKENS, PAD, UNK, Tokenizer, Vocab, add_bigrams


# ---------------------------------------------------------------------------- Tokenizer

def test_tokenizer_follows_spacy_english_rules(tokenizer):
    assert tokenizer("Don't stop!") == ["Do", "n't", "stop", "!"]
    assert tokenizer("I can't, it's 10.5$ (U.S.).") == ["I", "ca", "n't", ",", "it", "'s", "10.5", "$", "(",
                                                        "U.S.", ")", "."]


def test_tokenizer_keeps_case_by_default(tokenizer):
    assert tokenizer("The Movie WAS great") == ["The", "Movie", "WAS", "great"]


def test_tokenizer_lowercase_option():
    assert Tokenizer(lowercase=True)("The Movie WAS great") == ["the", "movie", "was", "great"]


def test_tokenizer_removes_html_breaks(tokenizer):
    tokens = tokenizer("Great film.<br /><br />Bad ending.<BR>The end<br/>")
    assert tokens == ["Great", "film", ".", "Bad", "ending", ".", "The", "end"]
    assert not {"<", "br", "/><br", "/>", ">"} & set(tokens)


def test_tokenizer_can_keep_html_breaks():
    tokens = Tokenizer(strip_html_breaks=False)("Great.<br /><br />Bad")
    assert any("br" in token for token in tokens)


def test_tokenizer_drops_whitespace_tokens(tokenizer):
    assert tokenizer("  two   words \n\n ") == ["two", "words"]
    assert tokenizer("") == []


def test_tokenizer_config_keys_and_round_trip():
    config = Tokenizer(lowercase=True).config
    assert set(config) == {"kind", "language", "lowercase", "strip_html_breaks", "max_chunk_chars",
                           "long_chunk_piece_chars", "max_tokens", "spacy_version", "version"}
    assert config["lowercase"] is True and config["language"] == "en" and config["strip_html_breaks"] is True
    assert json.loads(json.dumps(config)) == config  # saved with vocabularies: must be JSON
    again = Tokenizer.from_config(config)
    assert again.config == config
    assert again("The End") == ["the", "end"]
    assert Tokenizer().config != config


def test_settings_without_bounds_load_with_the_default_bounds():
    """Bundles exported before tokenizer version 2 have no bound settings: they get today's defaults."""
    old = {key: value for key, value in Tokenizer().config.items() if key not in {"max_chunk_chars", "max_tokens"}}
    tokenizer = Tokenizer.from_config(old)
    assert (tokenizer.max_chunk_chars, tokenizer.max_tokens) == (MAX_CHUNK_CHARS, MAX_TOKENS)


@pytest.mark.parametrize("value", [0, -3, 2.5, "80"])
def test_tokenizer_bounds_must_be_positive_integers(value):
    with pytest.raises(ValueError, match="max_tokens"):
        Tokenizer(max_tokens=value)
    with pytest.raises(ValueError, match="max_chunk_chars"):
        Tokenizer(max_chunk_chars=value)


class RecordingSpacy:
    """Stands in for spaCy's tokenizer: records what it is given, splits on whitespace."""

    def __init__(self):
        self.calls = []

    def __call__(self, text):
        from types import SimpleNamespace

        self.calls.append(text)
        return [SimpleNamespace(text=piece, is_space=False) for piece in text.split()]


@pytest.mark.parametrize("text", ["!" * 100_000, "\U0001F600" * 100_000, "a, " * 50_000, ("word " * 40 + "!" * 500) * 200])
def test_spacy_sees_bounded_chunks_and_only_what_max_tokens_needs(monkeypatch, text):
    """The two bounds that make tokenizing linear: no whitespace-free chunk over max_chunk_chars
    reaches spaCy, and spaCy reads little more of a long text than the first max_tokens pieces."""
    tokenizer = Tokenizer()
    recorder = RecordingSpacy()
    monkeypatch.setattr(tokenizer, "_tokenizer", lambda: recorder)
    tokens = tokenizer(text)
    assert len(tokens) == MAX_TOKENS
    seen = " ".join(recorder.calls)
    assert max(len(chunk) for chunk in seen.split()) <= MAX_CHUNK_CHARS
    assert len(seen.split()) <= 2 * MAX_TOKENS + 64


def test_long_chunks_are_cut_and_short_ones_kept(tokenizer):
    exact = "x" * MAX_CHUNK_CHARS
    assert tokenizer(exact) == [exact]
    cut = tokenizer("y" * (MAX_CHUNK_CHARS + 1))
    assert cut == ["y" * LONG_CHUNK_PIECE_CHARS] * 5 + ["y"]
    assert Tokenizer(max_chunk_chars=None)("y" * (MAX_CHUNK_CHARS + 1)) == ["y" * (MAX_CHUNK_CHARS + 1)]


def test_max_tokens_keeps_the_first_tokens():
    text = " ".join(f"w{i}" for i in range(5000)) + " !!! ??? end"
    assert Tokenizer()(text) == [f"w{i}" for i in range(MAX_TOKENS)]
    assert Tokenizer(max_tokens=7)("Don't stop, it's fine!") == ["Do", "n't", "stop", ",", "it", "'s", "fine"]
    assert Tokenizer(max_tokens=None)(text)[-7:] == ["!", "!", "!", "?", "?", "?", "end"]


@pytest.mark.parametrize("text", ["plain words " * 600 + "and then some!", "Mixed: a,b;c (d) [e] 'f' " * 700,
                                  "\n\n".join(["para one.", "para   two!"] * 900)])
def test_parts_tokenize_like_the_whole_text(text):
    """Tokenizing a long text part by part gives what spaCy gives for the whole text, cut at max_tokens."""
    whole = Tokenizer(max_tokens=None)(text)
    assert Tokenizer(max_tokens=len(whole))(text) == whole
    assert Tokenizer(max_tokens=2500)(text) == whole[:2500]


AFFIX_ALPHABETS = [".", ".!", ".\n", "..a", ")]}!?.,", "0123456789km%$.", "'s", "°CF.", "aA.", "…..!",
                   "😀✓€°%)!.", "\n\n.", "mbgkBKMGT0.%", "₿€$£0.9", "a.\n ", "\"'`‘’“”)"]


def test_windowed_suffix_search_answers_as_spacy_does():
    """The bounded suffix search finds exactly spaCy's match (same span) on strings made of the characters
    its rules treat specially: dot runs (the one unbounded rule), units after digits, quotes, newlines."""
    import random
    import string

    import spacy

    from helpers.text import suffix_window, windowed_suffix_search

    pattern = spacy.blank("en").tokenizer.suffix_search.__self__
    assert suffix_window(pattern) == 7  # its widest rule is 5 characters, its run rule `\.\.+`
    search = windowed_suffix_search(pattern)
    rng = random.Random(0)
    for alphabet in [*AFFIX_ALPHABETS, string.printable]:
        for _ in range(2000):
            text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
            expected, found = pattern.search(text), search(text)
            assert (expected and expected.span()) == (found and found.span()), text


@pytest.mark.parametrize("pattern,window", [
    (r"a$|bc$", 4), (r"\.\.+$|!$", 3), (r"(?<=[0-9])km$|x$", 4), (r"[ab][ab]+$", 3),
    (r"a.*$", None), (r"(?:ab)+$", None), (r"a$|b", None), (r"\.+!+$", None), (r"[", None),
])
def test_suffix_window_is_proven_or_refused(pattern, window):
    """A window only for alternatives of bounded width or runs of one character class, each ending with `$`."""
    import re

    from helpers.text import suffix_window

    try:
        compiled = re.compile(pattern)
    except re.error:
        compiled = type("Unparsable", (), {"pattern": pattern, "flags": 0})()
    assert suffix_window(compiled) == window


class RecordingPattern:
    """A compiled regex that records the string length and start position of every search and match."""

    def __init__(self, pattern):
        self._pattern, self.pattern, self.flags, self.calls = pattern, pattern.pattern, pattern.flags, []

    def search(self, string, pos=0):
        self.calls.append(("search", len(string), pos))
        return self._pattern.search(string, pos)

    def match(self, string, pos=0):
        self.calls.append(("match", len(string), pos))
        return self._pattern.match(string, pos)


def test_suffix_search_reads_a_window_not_the_chunk():
    """spaCy peels a chunk's suffixes one at a time: each search now starts 7 characters from the end, so a
    chunk of a word and 76 punctuation marks costs its length once, not once per mark."""
    import random

    import spacy

    from helpers.text import windowed_suffix_search

    nlp = spacy.blank("en")
    recorder = RecordingPattern(nlp.tokenizer.suffix_search.__self__)
    nlp.tokenizer.suffix_search = windowed_suffix_search(recorder)
    rng = random.Random(1)
    chunk = "abcd" + "".join(rng.choice(")]}!?,") for _ in range(76))
    assert len(nlp.tokenizer(chunk)) == 77
    assert len(recorder.calls) >= 76 and all(pos >= length - 7 for _, length, pos in recorder.calls)
    # runs of dots at the end (11 here) may start before the window: their start is found by halving
    # (at most 8 tries for 81 characters), never by a search from the chunk's start
    recorder.calls.clear()
    assert [t.text for t in nlp.tokenizer("x" + "......!" * 10 + "." * 10)][-3:] == ["......", "!", "." * 10]
    assert all(pos >= length - 7 for kind, length, pos in recorder.calls if kind == "search")
    assert 0 < sum(kind == "match" for kind, _, _ in recorder.calls) <= 11 * 8


def test_the_tokenizer_uses_the_windowed_search(tokenizer, monkeypatch):
    assert tokenizer.bounded_suffix_search
    assert tokenizer._tokenizer().suffix_search.__qualname__.startswith("windowed_suffix_search")
    import helpers.text

    monkeypatch.setattr(helpers.text, "windowed_suffix_search", lambda pattern: None)  # no window provable
    unbounded = Tokenizer()
    assert not unbounded.bounded_suffix_search and unbounded("Fine!!") == ["Fine", "!", "!"]


def test_fixture_texts_tokenize_as_before_the_bounds():
    """Per-text digests written with the tokenizer before chunks were bounded (tests/token_digests.py)."""
    from token_digests import FIXTURE_DATA, changed, compute, read_reference

    assert changed(read_reference("fixtures"), compute(FIXTURE_DATA)) == {
        "imdb/train": 0, "imdb/test": 0, "trec/train": 0, "trec/test": 0}


def test_every_real_text_tokenizes_as_before_the_bounds(real_data_dir):
    """All 50,000 IMDb reviews and 5,952 TREC questions, against the digests of the old tokenizer."""
    import os

    from token_digests import changed, compute, read_reference

    counts = changed(read_reference("real"), compute(real_data_dir, workers=os.cpu_count() or 1))
    assert counts == {"imdb/train": 0, "imdb/test": 0, "trec/train": 0, "trec/test": 0}


def test_tokenizer_pickles_without_spacy_pipeline(tokenizer):
    tokenizer("warm up")  # builds the spaCy pipeline
    state = tokenizer.__getstate__()
    assert state["_nlp"] is None
    clone = pickle.loads(pickle.dumps(tokenizer))
    assert clone("Don't panic") == ["Do", "n't", "panic"]


# ---------------------------------------------------------------------------- bigrams

def test_add_bigrams_appends_pairs_in_order():
    assert add_bigrams(["not", "good", "at", "all"]) == ["not", "good", "at", "all", "not good", "good at", "at all"]


def test_add_bigrams_deduplicates_keeping_first_seen_order():
    assert add_bigrams(["a", "b", "a", "b", "c"]) == ["a", "b", "a", "b", "c", "a b", "b a", "b c"]


def test_add_bigrams_short_inputs():
    assert add_bigrams([]) == []
    assert add_bigrams(["alone"]) == ["alone"]


# ---------------------------------------------------------------------------- Vocab

COUNTS = Counter({"c": 5, "b": 3, "a": 3, "d": 1, "e": 2})


def test_vocab_specials_first_then_frequency_ties_alphabetical():
    vocab = Vocab.from_counts(COUNTS)
    assert vocab.itos == [UNK, PAD, "c", "a", "b", "e", "d"]
    assert vocab.unk_index == 0 and vocab.pad_index == 1
    assert vocab["c"] == 2 and vocab.stoi["d"] == 6


def test_vocab_max_size_excludes_specials():
    vocab = Vocab.from_counts(COUNTS, max_size=2)
    assert len(vocab) == 4
    assert vocab.itos == [UNK, PAD, "c", "a"]


def test_vocab_min_freq():
    vocab = Vocab.from_counts(COUNTS, min_freq=3)
    assert vocab.itos == [UNK, PAD, "c", "a", "b"]
    assert "d" not in vocab and "e" not in vocab


def test_vocab_ignores_specials_in_counts():
    vocab = Vocab.from_counts({UNK: 100, PAD: 50, "x": 1})
    assert vocab.itos == [UNK, PAD, "x"]


def test_vocab_unknown_token_gives_unk_index():
    vocab = Vocab.from_counts(COUNTS)
    assert vocab["never-seen"] == vocab.unk_index == 0
    assert vocab.lookup_indices(["c", "zzz", "a"]) == [2, 0, 3]
    assert vocab.lookup_tokens([2, 0, 3]) == ["c", UNK, "a"]


def test_vocab_without_default_raises_on_unknown():
    vocab = Vocab(["neg", "pos"], specials=(), default_token=None)
    assert vocab["pos"] == 1
    with pytest.raises(KeyError, match="zzz"):
        vocab["zzz"]


def test_vocab_rejects_duplicates():
    with pytest.raises(ValueError, match="duplicate"):
        Vocab([UNK, PAD, "a", "a"])


def test_vocab_build_counts_token_lists():
    vocab = Vocab.build([["a", "b"], ["b", "c"], ["b"]])
    assert vocab.itos == [UNK, PAD, "b", "a", "c"]


def test_vocab_save_load_round_trip_is_json(tmp_path):
    vocab = Vocab.from_counts(Counter({"héllo": 3, "wörld": 2, "a b": 1}))
    path = tmp_path / "vocab.json"
    vocab.save(path)
    raw = path.read_bytes()
    assert not raw.startswith(b"\x80")  # pickle protocol 2+ starts with 0x80
    data = json.loads(raw.decode("utf-8"))
    assert data["itos"] == vocab.itos and data["specials"] == [UNK, PAD] and data["default_token"] == UNK
    loaded = Vocab.load(path)
    assert loaded.itos == vocab.itos and loaded.stoi == vocab.stoi
    assert loaded["unseen"] == loaded.unk_index == 0
    assert [p.name for p in tmp_path.iterdir()] == ["vocab.json"]  # no temporary left


def test_pad_sequences_pads_at_the_end_to_at_least_min_length():
    from helpers.text import pad_sequences

    ids, lengths = pad_sequences([[5, 6, 7], [8]], pad_index=1, min_length=4)
    assert ids.tolist() == [[5, 6, 7, 1], [8, 1, 1, 1]]
    assert lengths.tolist() == [3, 1]
    assert ids.dtype.name == lengths.dtype.name == "int64"
