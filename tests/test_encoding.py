"""helpers.encoding.TextEncoding: one way from text to model input, in training, export and serving."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from helpers.bundle import BundleError
from helpers.encoding import TextEncoding
from helpers.text import Tokenizer, Vocab, add_bigrams

from deploy_support import COMMITTED_MODELS, FIXTURE_DATA, REPO_ROOT

SHORT = ["a", "!", "Awful!", "ok", "The", "<br />", "zxqvbnmplk", "Not good.", "a good film", "   ", "good film zzz"]


@pytest.fixture(scope="module")
def imdb():
    """The fixture IMDb train and test splits, tokenized (no bigrams)."""
    from helpers.data import read_imdb, tokenize_dataset

    data = read_imdb(FIXTURE_DATA)
    return {name: tokenize_dataset(data[name], Tokenizer(), workers=1) for name in ("train", "test")}


def digest(arrays) -> str:
    h = hashlib.sha256()
    for array in arrays:
        array = np.asarray(array)
        h.update(str(tuple(array.shape)).encode())
        h.update(array.tobytes())
    return h.hexdigest()[:16]


def loader_and_encode_digest(datasets, encoding, batch_size, seed, texts, max_length=None) -> str:
    """Every batch of loaders_for's "train" then "test" loader, then `encoding.encode(texts)`, as one digest."""
    from helpers.batching import loaders_for

    loaders = loaders_for(datasets, encoding, batch_size, seed=seed, max_length=max_length)
    arrays = [tensor.numpy() for name in ("train", "test") for batch in loaders[name] for tensor in batch]
    return digest([*arrays, *encoding.encode(texts)])


# Digests of the same batches and encoded texts made by the code before issue 20 (at 4e54fc4: loaders_for(datasets
# with `with_bigrams()` applied by hand, vocab, batch_first=, min_length=), text.encode_batch, `.T` when time-first).
BEFORE_IMDB = {False: {False: "5fc519a7111a90cd", True: "c43f10f62524cf26"},
               True: {False: "4e4eb67e5aa85951", True: "9a2478211c41f0a1"}}     # [bigrams][batch_first]
BEFORE_SHORT = {(False, 1, False): "f78d7a701246d23b", (False, 1, True): "02a76ed2a59bfb56",
                (False, 5, False): "58a429ab282eb1a6", (False, 5, True): "9619eacaac26c369",
                (True, 1, False): "a139043fbdbc3009", (True, 1, True): "2ae4fd4b6b2ea1fb",
                (True, 5, False): "b9a682c209e3dc4a", (True, 5, True): "fe9afba2d3f8cbf1"}


@pytest.mark.parametrize("bigrams", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_loaders_and_encode_give_the_ids_they_gave_before(imdb, bigrams, batch_first):
    train = imdb["train"].tokens
    vocab = Vocab.from_counts((train.with_bigrams() if bigrams else train).counts(), max_size=2000)
    for min_length in (1, 5):
        encoding = TextEncoding(Tokenizer(), vocab, bigrams=bigrams, min_length=min_length, batch_first=batch_first)
        assert loader_and_encode_digest(imdb, encoding, 32, 3, imdb["test"].texts[:60], max_length=400) \
            == BEFORE_IMDB[bigrams][batch_first]


@pytest.mark.parametrize("case", sorted(BEFORE_SHORT))
def test_short_texts_give_the_ids_they_gave_before(case):
    from helpers.data import TextDataset, tokenize_dataset

    bigrams, min_length, batch_first = case
    short = tokenize_dataset(TextDataset(SHORT, np.arange(len(SHORT)) % 2, ["neg", "pos"]), Tokenizer(), workers=1)
    corpus = short.tokens.with_bigrams() if bigrams else short.tokens
    vocab = Vocab(Vocab.from_counts(corpus.counts()).itos[:12])
    encoding = TextEncoding(Tokenizer(), vocab, bigrams=bigrams, min_length=min_length, batch_first=batch_first)
    assert loader_and_encode_digest({"test": short, "train": short}, encoding, 4, 1, SHORT) == BEFORE_SHORT[case]


def test_build_counts_the_corpus_with_its_bigrams(imdb):
    tokens = imdb["train"].tokens
    built = TextEncoding.build(Tokenizer(), tokens, max_size=300, min_freq=2, bigrams=True, min_length=3)
    assert built.vocab.itos == Vocab.from_counts(tokens.with_bigrams().counts(), max_size=300, min_freq=2).itos
    assert (built.bigrams, built.min_length, built.batch_first) == (True, 3, True)
    assert TextEncoding.build(Tokenizer(), tokens).vocab.itos == Vocab.from_counts(tokens.counts()).itos


@pytest.mark.parametrize("bigrams", [False, True])
def test_encode_is_tokens_then_ids_then_padding_and_numericalize_agrees(imdb, bigrams):
    test = imdb["test"]
    encoding = TextEncoding.build(Tokenizer(), imdb["train"].tokens, max_size=500, bigrams=bigrams, min_length=4)
    texts = test.texts[:30]
    ids, lengths = encoding.encode(texts)
    ids_tf, lengths_tf = replace(encoding, batch_first=False).encode(texts)
    np.testing.assert_array_equal(ids_tf, ids.T)
    np.testing.assert_array_equal(lengths_tf, lengths)
    assert ids_tf.flags.c_contiguous and ids.dtype == lengths.dtype == np.int64
    flat, offsets = encoding.numericalize(test.tokens)
    for row, text in enumerate(texts):
        tokens = Tokenizer()(text)
        expected = encoding.vocab.lookup_indices(add_bigrams(tokens) if bigrams else tokens)
        assert encoding.tokens(text) == (add_bigrams(tokens) if bigrams else tokens)
        assert ids[row, :lengths[row]].tolist() == expected == flat[offsets[row]:offsets[row + 1]].tolist()
        assert (ids[row, lengths[row]:] == encoding.vocab.pad_index).all()
    assert ids.shape[1] == max(lengths.max(), 4)


def test_a_text_without_tokens_is_one_pad():
    vocab = Vocab.from_counts({"good": 2, "film": 1})
    ids, lengths = TextEncoding(Tokenizer(), vocab, min_length=2).encode(["good film zzz", "   "])
    assert lengths.tolist() == [3, 1]
    assert ids.tolist() == [[vocab["good"], vocab["film"], vocab.unk_index], [vocab.pad_index] * 3]


def test_bad_settings_are_refused():
    vocab = Vocab.from_counts({"a": 1})
    for kwargs, fragment in (({"min_length": 0}, "min_length"), ({"min_length": True}, "min_length"),
                             ({"bigrams": 1}, "bigrams"), ({"batch_first": "yes"}, "batch_first")):
        with pytest.raises(ValueError, match=fragment):
            TextEncoding(Tokenizer(), vocab, **kwargs)
    with pytest.raises(ValueError, match="<pad>"):
        TextEncoding(Tokenizer(), Vocab(["<unk>", "a"], specials=["<unk>"]))


def test_save_load_round_trip_and_equality(tmp_path):
    vocab = Vocab.from_counts({"good": 2, "film": 1, "bad": 1})
    encoding = TextEncoding(Tokenizer(), vocab, bigrams=True, min_length=3, batch_first=False)
    assert encoding.save(tmp_path / "checkpoint") == ["vocab.json", "tokenizer.json"]
    loaded = TextEncoding.load(tmp_path / "checkpoint")
    assert loaded == encoding and loaded.settings() == encoding.settings() and loaded.settings()["batch_first"] is False
    assert "batch_first" not in replace(encoding, batch_first=True).settings()   # bundles: batch-first, unwritten
    for other in (replace(encoding, bigrams=False), replace(encoding, min_length=4), replace(encoding, batch_first=True),
                  replace(encoding, tokenizer=Tokenizer(max_tokens=10)),
                  encoding.with_vocab(Vocab.from_counts({"good": 2, "film": 1}))):
        assert other != encoding and encoding.differences(other)
    assert encoding.with_vocab(Vocab.from_counts({"good": 2}, )).differences(encoding) == ["vocab"]


@pytest.mark.parametrize("name", ["sentiment", "sentiment-cnn", "question-type"])
def test_the_committed_bundles_reproduce_their_files(name, tmp_path):
    bundle = COMMITTED_MODELS / name
    if not (bundle / "meta.json").is_file():
        pytest.skip(f"no committed bundle {name}")
    encoding = TextEncoding.from_bundle(bundle)
    meta = json.loads((bundle / "meta.json").read_text())
    assert encoding.settings() == meta["tokenizer"] and encoding.batch_first
    encoding.save(tmp_path)
    for file in ("tokenizer.json", "vocab.json"):
        assert (tmp_path / file).read_bytes() == (bundle / file).read_bytes(), file
        assert hashlib.sha256((tmp_path / file).read_bytes()).hexdigest() == meta["files"][file]


def test_a_tampered_or_time_first_bundle_is_refused(tmp_path):
    bundle = tmp_path / "question-type"
    shutil.copytree(COMMITTED_MODELS / "question-type", bundle)
    vocab = bundle / "vocab.json"
    vocab.write_text(vocab.read_text().replace("<unk>", "<UNK>", 1))
    with pytest.raises(BundleError, match="sha256 of vocab.json"):
        TextEncoding.from_bundle(bundle)
    shutil.copy(COMMITTED_MODELS / "question-type" / "vocab.json", vocab)
    meta = json.loads((bundle / "meta.json").read_text())
    meta["tokenizer"]["batch_first"] = False
    del meta["files"]["tokenizer.json"]   # meta.json alone says so (tokenizer.json would have to agree)
    with pytest.raises(BundleError, match=r"reads ids \[batch, time\]"):
        TextEncoding.from_bundle(bundle, meta)


def test_importing_the_encoding_loads_no_torch():
    code = ("import sys; import helpers.encoding, helpers.text, helpers.bundle\n"
            "heavy = [m for m in ('torch', 'onnx', 'onnxruntime', 'transformers') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]


def test_build_counts_a_corpus_or_plain_token_lists_alike():
    from helpers.corpus import tokenize_corpus

    tokenizer = Tokenizer()
    texts = ["not good at all", "good fun", "not good"]
    for bigrams in (False, True):
        from_lists = TextEncoding.build(tokenizer, [tokenizer(text) for text in texts], bigrams=bigrams)
        from_corpus = TextEncoding.build(tokenizer, tokenize_corpus(texts, tokenizer, workers=1), bigrams=bigrams)
        assert from_lists.vocab.itos == from_corpus.vocab.itos
    assert "not good" in from_lists.vocab.stoi and from_lists.vocab.itos[2] == "good"   # the most frequent word


def test_encode_tokens_is_encode_after_the_tokenizer():
    tokenizer = Tokenizer()
    vocab = Vocab.from_counts({"not": 3, "good": 2, "not good": 1, "film": 1})
    for bigrams in (False, True):
        for batch_first in (False, True):
            encoding = TextEncoding(tokenizer, vocab, bigrams=bigrams, min_length=3, batch_first=batch_first)
            texts = ["not good", "   ", "a not good film"]
            by_text, by_tokens = encoding.encode(texts), encoding.encode_tokens([tokenizer(t) for t in texts])
            assert all(np.array_equal(a, b) for a, b in zip(by_text, by_tokens))
