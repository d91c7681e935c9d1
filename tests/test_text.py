"""helpers.text: the spaCy tokenizer, bigrams and the vocabulary."""
from __future__ import annotations

import json
import pickle
from collections import Counter

import pytest

from helpers.text import PAD, UNK, Tokenizer, Vocab, add_bigrams


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
    assert set(config) == {"kind", "language", "lowercase", "strip_html_breaks", "spacy_version", "version"}
    assert config["lowercase"] is True and config["language"] == "en" and config["strip_html_breaks"] is True
    assert json.loads(json.dumps(config)) == config  # saved with vocabularies: must be JSON
    again = Tokenizer.from_config(config)
    assert again.config == config
    assert again("The End") == ["the", "end"]
    assert Tokenizer().config != config


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


def test_encode_batch_gives_a_text_without_tokens_one_pad():
    from helpers.text import Tokenizer, Vocab, encode_batch

    vocab = Vocab.from_counts({"good": 2, "film": 1})
    ids, lengths = encode_batch(["good film zzz", "   "], Tokenizer(), vocab, min_length=2)
    assert lengths.tolist() == [3, 1]
    assert ids.tolist() == [[vocab["good"], vocab["film"], vocab.unk_index], [vocab.pad_index] * 3]
