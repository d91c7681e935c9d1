"""Lesson 6 helpers: encoder loading and WordPiece ids (helpers.encoders), the feature cache
(helpers.features), feature loaders (helpers.batching), the GRU head (helpers.models), offline errors.

Fast: everything runs on the tiny random BERT in helpers/fixtures/tiny-bert. The last
test uses the real all-MiniLM-L6-v2 when it can be found (env SENTIMENT_TRANSFORMER,
or models/ beside the real data folder, or ../shared/models beside the repository).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import helpers.features as features_module
from conftest import REAL_DATA_DIR, REPO_ROOT, entries, leftovers
from helpers import hardware
from helpers.batching import FeatureCollate, feature_loader, feature_loaders
from helpers.encoders import (TransformerError, load_encoder, local_model_dir, pad_ids, predict_sentiment,
                              tokenize_texts)
from helpers.features import encode_cached, feature_cache_folder, time_encoder
from helpers.models import BERTGRUSentiment, GRUHead, PackedGRU
from helpers.precision import training_precision
from helpers.text import Tokenizer

from helpers.course import TINY_ENCODER_DIR as TINY_BERT_DIR  # noqa: E402  (shipped in the package)

SENTENCE = "This film is terrible, isn't it? UNBELIEVABLY so."


@pytest.fixture(scope="module")
def tiny():
    return load_encoder(TINY_BERT_DIR)


@pytest.fixture(scope="module")
def reviews(imdb_fixture):
    train = imdb_fixture["train"]
    return [train.texts[i] for i in (0, 1, 150, 199, 3, 160)] + ["A short one: great!"]


# ---------------------------------------------------------------------------- tokenizer and loading

def test_tokenizer_special_ids_and_wordpieces(tiny):
    tokenizer = tiny.tokenizer
    assert [tokenizer.cls_token, tokenizer.sep_token, tokenizer.pad_token, tokenizer.unk_token] == \
        ["[CLS]", "[SEP]", "[PAD]", "[UNK]"]
    assert [tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id, tokenizer.unk_token_id] == \
        [101, 102, 0, 100]
    assert tokenizer.tokenize("Hello WORLD how ARE yoU?") == ["hello", "world", "how", "are", "you", "?"]
    assert tokenizer.convert_tokens_to_ids(["hello", "world"]) == [7592, 2088]
    assert "##" in "".join(tokenizer.tokenize("unbelievably"))   # split into word pieces
    assert tiny.max_length == 512 and tiny.vocab_size == 30522


def test_tokenize_texts_adds_cls_sep_cuts_and_drops_html_breaks(tiny):
    long_review = "great<br /><br />" + "word " * 600
    ids = tokenize_texts(tiny.tokenizer, [SENTENCE, long_review], max_length=32)
    assert ids[0][0] == 101 and ids[0][-1] == 102 and len(ids[0]) < 32
    assert len(ids[1]) == 32 and ids[1][0] == 101 and ids[1][-1] == 102
    assert tiny.tokenizer.convert_ids_to_tokens(ids[1][:4].tolist()) == ["[CLS]", "great", "word", "word"]


def test_tiny_bert_is_the_same_model_every_time(tiny):
    again = load_encoder(TINY_BERT_DIR)
    assert again.source == "random" and again.identity == tiny.identity
    for a, b in zip(tiny.model.parameters(), again.model.parameters()):
        assert torch.equal(a, b) and not a.requires_grad
    assert not tiny.model.training


def test_local_paths_and_hub_names(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO_ROOT / "notebooks")   # where notebooks run
    assert local_model_dir("../helpers/fixtures/tiny-bert") == TINY_BERT_DIR
    with pytest.raises(TransformerError, match="no model folder"):   # relative to the current folder only:
        local_model_dir("helpers/fixtures/tiny-bert")                   # the library knows no checkout
    assert local_model_dir("bert-base-uncased") is None
    assert local_model_dir("google/bert_uncased_L-2_H-128_A-2") is None
    for missing in ("../no/such/model", str(tmp_path / "nothing"), "./nothing"):
        with pytest.raises(TransformerError, match="no model folder"):
            local_model_dir(missing)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TransformerError, match="no config.json"):
        load_encoder(empty)


def test_folder_without_weights_or_seed_is_an_error(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    for name in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        (folder / name).write_bytes((TINY_BERT_DIR / name).read_bytes())
    (folder / "config.json").write_text((TINY_BERT_DIR / "config.json").read_text().replace(
        '"random_init_seed": 1234', '"initializer_range": 0.02'))
    with pytest.raises(TransformerError, match="has no weights"):
        load_encoder(folder)


@pytest.mark.parametrize("env", [{"HF_HUB_OFFLINE": "1"}, {"HF_ENDPOINT": "http://127.0.0.1:9"}],
                         ids=["HF_HUB_OFFLINE", "unreachable-endpoint"])
def test_unreachable_hub_gives_a_clear_error(env, tmp_path):
    """A fresh process (the hub settings are read at import), an empty Hugging Face cache."""
    code = ("from helpers.encoders import load_encoder, TransformerError\n"
            "try:\n    load_encoder('bert-base-uncased')\n"
            "except TransformerError as err:\n    print('ERROR:', err)\n")
    environment = {**os.environ, **env, "HF_HOME": str(tmp_path / "hf"), "PYTHONPATH": str(REPO_ROOT)}
    environment.pop("SENTIMENT_TRANSFORMER", None)
    result = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True,
                            timeout=120, cwd=tmp_path)
    message = result.stdout
    assert "ERROR: cannot load the transformer 'bert-base-uncased'" in message, result.stdout + result.stderr
    assert "local model folder" in message and "TRANSFORMER" in message   # says what to pass instead
    assert ("HF_HUB_OFFLINE" in message) == ("HF_HUB_OFFLINE" in env)


# ---------------------------------------------------------------------------- the feature cache

def test_features_equal_a_direct_model_call(tiny, reviews, tmp_cache):
    store = encode_cached(tiny, reviews, max_length=64, cache_dir=tmp_cache)
    for index in (0, 3):
        ids = tokenize_texts(tiny.tokenizer, [reviews[index]], 64)[0]
        with torch.inference_mode():
            direct = tiny.model(input_ids=torch.as_tensor(ids)[None]).last_hidden_state[0]
        assert store[index].shape == (len(ids), tiny.hidden_size) and store[index].dtype == np.float16
        np.testing.assert_allclose(store[index].astype(np.float32), direct.numpy(), atol=2e-3, rtol=2e-3)
    assert store.lengths.tolist() == [len(i) for i in tokenize_texts(tiny.tokenizer, reviews, 64)]
    assert store.features.shape == (store.lengths.sum(), tiny.hidden_size)   # ragged: no padding stored
    assert isinstance(store.features, np.memmap)


def test_cache_is_written_once_and_reused(tiny, reviews, tmp_cache, monkeypatch):
    first = encode_cached(tiny, reviews, max_length=64, cache_dir=tmp_cache)
    assert not first.from_cache and first.meta["encode_seconds"] > 0

    def refuse(*args, **kwargs):
        raise AssertionError("encoded again")

    monkeypatch.setattr(features_module, "encoder_features", refuse)
    second = encode_cached(tiny, reviews, max_length=64, cache_dir=tmp_cache)
    assert second.from_cache and second.folder == first.folder
    np.testing.assert_array_equal(np.asarray(second.features), np.asarray(first.features))
    assert entries(tmp_cache / "transformer-features") == [first.folder.name]


def test_cache_key_changes_with_max_length_model_and_data(tiny, reviews, tmp_path):
    base = feature_cache_folder(tiny, reviews, 64, tmp_path)
    assert feature_cache_folder(tiny, reviews, 64, tmp_path) == base
    assert feature_cache_folder(tiny, reviews, 32, tmp_path) != base
    assert feature_cache_folder(tiny, reviews[:-1], 64, tmp_path) != base
    assert feature_cache_folder(tiny, reviews[::-1], 64, tmp_path) != base
    other = load_encoder(TINY_BERT_DIR)
    other.identity = {**other.identity, "random_init_seed": 99}
    assert feature_cache_folder(other, reviews, 64, tmp_path) != base


def test_failed_encoding_leaves_nothing(tiny, reviews, tmp_cache, monkeypatch):
    real, calls = features_module.encoder_features, []

    def fail_second_batch(model, ids, lengths):
        calls.append(len(ids))
        if len(calls) == 2:
            raise RuntimeError("interrupted")
        return real(model, ids, lengths)

    monkeypatch.setattr(features_module, "encoder_features", fail_second_batch)
    with pytest.raises(RuntimeError, match="interrupted"):
        encode_cached(tiny, reviews, max_length=64, cache_dir=tmp_cache, batch_tokens=64)
    assert len(calls) == 2
    assert entries(tmp_cache / "transformer-features") == [] and leftovers(tmp_cache) == []
    monkeypatch.setattr(features_module, "encoder_features", real)
    assert not encode_cached(tiny, reviews, max_length=64, cache_dir=tmp_cache).from_cache


def test_feature_loader_pads_floats_and_batches_by_length(tiny, reviews, tmp_cache):
    store = encode_cached(tiny, reviews, max_length=64, cache_dir=tmp_cache)
    labels = np.arange(len(reviews)) % 2
    loader = feature_loaders({"valid": store}, {"valid": labels}, batch_size=4)["valid"]
    batches = list(loader)
    assert [len(b[2]) for b in batches] == [4, 3]
    features, lengths, batch_labels = batches[0]
    assert features.dtype == torch.float32 and features.shape == (4, int(lengths.max()), tiny.hidden_size)
    assert lengths.tolist() == sorted(lengths.tolist(), reverse=True)
    short = int(lengths.argmin())
    assert torch.all(features[short, lengths[short]:] == 0)
    collated = FeatureCollate()([(torch.ones(2, 3), 1), (torch.ones(5, 3), 0)])
    assert collated[0].shape == (2, 5, 3) and collated[1].tolist() == [5, 2] and collated[2].tolist() == [0, 1]


def test_one_loader_over_several_stores(tiny, reviews, tmp_cache):
    first = encode_cached(tiny, reviews[:4], max_length=64, cache_dir=tmp_cache)
    second = encode_cached(tiny, reviews[4:], max_length=64, cache_dir=tmp_cache)
    loader = feature_loader([first, second], [[0, 0, 0, 0], [1] * (len(reviews) - 4)], batch_size=3,
                            shuffle=True, seed=1)
    seen = sorted((int(length), int(label)) for _, lengths, labels in loader for length, label in zip(lengths, labels))
    expected = sorted([(int(n), 0) for n in first.lengths] + [(int(n), 1) for n in second.lengths])
    assert seen == expected                                     # every review once, with its own label
    again = [labels.tolist() for _, _, labels in feature_loader([first, second], [[0] * 4, [1] * 3], 3,
                                                                 shuffle=True, seed=1)]
    assert again == [labels.tolist() for _, _, labels in feature_loader([first, second], [[0] * 4, [1] * 3], 3,
                                                                         shuffle=True, seed=1)]
    with pytest.raises(ValueError, match="one labels array per store"):
        feature_loader([first, second], [[0] * 4], 3)


def test_timing_runs_the_cache_loop_and_counts_its_tokens(tiny, reviews, tmp_cache, monkeypatch):
    store = encode_cached(tiny, reviews, max_length=64, cache_dir=tmp_cache)
    real, calls = features_module.encoder_features, []

    def counting(model, ids, lengths):
        calls.append(int(lengths.sum()))
        return real(model, ids, lengths)

    monkeypatch.setattr(features_module, "encoder_features", counting)
    speed = time_encoder(tiny, reviews, 64, batch_tokens=64)
    assert speed["reviews"] == len(reviews) and speed["tokens"] == store.meta["total_tokens"] == sum(calls)
    assert len(calls) > 1 and speed["seconds"] > 0 and speed["precision"] == training_precision("cpu")


def test_the_encoder_runs_in_the_training_precision_fp16_included(tiny, reviews, monkeypatch):
    monkeypatch.setattr(hardware, "cpu_flags", lambda *args: {"avx512f"})
    assert time_encoder(tiny, reviews[:4], 32)["precision"] == "fp32"
    monkeypatch.setattr(hardware, "cpu_flags", lambda *args: {"avx512f", "avx512_bf16"})
    assert time_encoder(tiny, reviews[:4], 32)["precision"] == "bf16"
    seen = []
    real = features_module.encoder_features

    def dtype_seen(model, ids, lengths):
        seen.append(torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None)
        return real(model, ids, lengths)

    monkeypatch.setattr(features_module, "encoder_features", dtype_seen)
    assert time_encoder(tiny, reviews[:4], 32, precision="fp16")["precision"] == "fp16"   # forced: runs on a CPU
    assert seen and set(seen) == {torch.float16}


def test_html_breaks_are_cleaned_alike_for_spacy_and_wordpiece(tiny):
    text = "Good.<br /><br />Bad<BR>end"
    words = Tokenizer().clean(text)
    assert "<" not in words
    wordpieces = tiny.tokenizer.convert_ids_to_tokens(tokenize_texts(tiny.tokenizer, [text], 32)[0].tolist())
    assert wordpieces == ["[CLS]"] + tiny.tokenizer.tokenize(words) + ["[SEP]"]


def test_predict_sentiment_is_the_whole_model_through_a_sigmoid(tiny, reviews):
    torch.manual_seed(0)
    model = BERTGRUSentiment(tiny.model, 8, 1, 1, False, 0.0)
    probabilities = predict_sentiment(model, tiny.tokenizer, reviews[:3], 64)
    padded, lengths = pad_ids(tokenize_texts(tiny.tokenizer, reviews[:3], 64), 0)
    with torch.no_grad():
        expected = torch.sigmoid(model.eval()(padded, lengths)).squeeze(-1).numpy()
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)
    assert predict_sentiment(model, tiny.tokenizer, reviews[0], 64) == pytest.approx(float(probabilities[0]), abs=1e-6)


# ---------------------------------------------------------------------------- the GRU head

@pytest.mark.parametrize("bidirectional,n_layers", [(True, 2), (False, 1)])
def test_packed_gru_matches_packed_nn_gru(bidirectional, n_layers):
    torch.manual_seed(0)
    ours = PackedGRU(6, 8, n_layers, bidirectional, dropout=0.0, batch_first=True)
    reference = ours.to_reference()
    x = torch.randn(4, 7, 6)
    lengths = torch.tensor([7, 3, 5, 1])
    packed = nn.utils.rnn.pack_padded_sequence(x.transpose(0, 1), lengths, enforce_sorted=False)
    _, hidden = reference(packed)
    expected = torch.cat((hidden[-2], hidden[-1]), dim=1) if bidirectional else hidden[-1]
    torch.testing.assert_close(ours(x, lengths), expected, atol=1e-6, rtol=1e-5)


def test_gru_head_ignores_padding(tiny, reviews, tmp_cache):
    torch.manual_seed(0)
    head = GRUHead(tiny.hidden_size, 16, 1, 2, True, 0.25).eval()
    store = encode_cached(tiny, reviews, max_length=64, cache_dir=tmp_cache)
    collate = FeatureCollate()
    items = [(torch.from_numpy(store[i].astype(np.float32)), 0) for i in range(len(store))]
    shortest = int(store.lengths.argmin())
    alone = head(*collate([items[shortest]])[:2])
    features, lengths, _ = collate(items)
    assert features.shape[1] > store.lengths[shortest]          # it really is padded in the batch
    row = int((lengths == store.lengths[shortest]).nonzero()[0])
    together = head(features, lengths)
    torch.testing.assert_close(alone[0], together[row], atol=1e-5, rtol=1e-5)
    features[row, lengths[row]:] = 7.0                           # padding content must not matter
    torch.testing.assert_close(head(features, lengths)[row], together[row], atol=1e-5, rtol=1e-5)


def test_bert_gru_model_freezes_the_encoder_and_matches_the_cached_path(tiny, reviews, tmp_cache):
    torch.manual_seed(0)
    model = BERTGRUSentiment(tiny.model, 16, 1, 2, True, 0.25)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == sum(p.numel() for p in model.head.parameters())
    model.train()
    assert model.head.training and not model.bert.training
    model.eval()
    ids = tokenize_texts(tiny.tokenizer, reviews[:3], 64)
    padded, lengths = pad_ids(ids, 0)
    store = encode_cached(tiny, reviews[:3], max_length=64, cache_dir=tmp_cache)
    features, cached_lengths, _ = FeatureCollate()([(torch.from_numpy(store[i].astype(np.float32)), 0)
                                                    for i in range(3)])
    order = torch.argsort(lengths, descending=True, stable=True)
    torch.testing.assert_close(model(padded, lengths)[order], model.head(features, cached_lengths),
                               atol=2e-3, rtol=2e-3)
    # Trevett's parameter count with bert-base-uncased's 768-dimensional output
    head = GRUHead(768, 256, 1, 2, True, 0.25)
    assert sum(p.numel() for p in head.parameters()) == 2_759_169


# ---------------------------------------------------------------------------- the real MiniLM

def _minilm() -> Path | None:
    candidates = [os.environ.get("SENTIMENT_TRANSFORMER")]
    if REAL_DATA_DIR:
        candidates.append(Path(REAL_DATA_DIR).expanduser().resolve().parent / "models" / "all-MiniLM-L6-v2")
    candidates.append(REPO_ROOT.parent / "shared" / "models" / "all-MiniLM-L6-v2")
    for candidate in candidates:
        if candidate and (Path(candidate) / "config.json").is_file() and \
                (Path(candidate) / "model.safetensors").is_file():
            return Path(candidate)
    return None


def test_real_minilm_on_four_reviews(reviews, tmp_cache):
    path = _minilm()
    if path is None:
        pytest.skip("all-MiniLM-L6-v2 not found (set SENTIMENT_TRANSFORMER or SENTIMENT_DATA_DIR)")
    encoder = load_encoder(path)
    assert encoder.source == "local" and encoder.hidden_size == 384 and encoder.max_length == 512
    assert encoder.tokenizer.tokenize("Hello WORLD how ARE yoU?") == ["hello", "world", "how", "are", "you", "?"]
    store = encode_cached(encoder, reviews[:4], max_length=64, cache_dir=tmp_cache)
    ids = tokenize_texts(encoder.tokenizer, reviews[:1], 64)[0]
    with torch.inference_mode():
        direct = encoder.model(input_ids=torch.as_tensor(ids)[None]).last_hidden_state[0]
    np.testing.assert_allclose(store[0].astype(np.float32), direct.numpy(), atol=1e-2, rtol=1e-2)
    torch.manual_seed(0)
    model = BERTGRUSentiment(encoder.model, 32, 1, 2, True, 0.25).eval()
    features, lengths, _ = next(iter(feature_loaders({"test": store}, {"test": [0, 1, 0, 1]}, 4)["test"]))
    assert model.head(features, lengths).shape == (4, 1)
