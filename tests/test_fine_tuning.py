"""Appendix C's fine-tuning on cached lower layers (helpers.fine_tuning), with the feature cache's
`layer` and `head_tokens` (helpers.features) and head+tail truncation (helpers.encoders).

Fast: everything runs on the tiny random BERT (2 layers) shipped in helpers/fixtures/tiny-bert.
"""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from torch import nn
from torch.backends import cuda
from transformers import get_linear_schedule_with_warmup

from helpers.batching import feature_loader
from helpers.encoders import (keep_head_and_tail, lower_layers, pad_ids, predict_sentiment, tokenize_texts,
                              training_attention)
from helpers.features import FEATURE_FORMAT, encode_cached, feature_cache_folder, texts_digest
from helpers.fine_tuning import (FineTunedSentiment, ScheduledOptimizer, UpperLayersClassifier, default_head_tokens,
                                 default_train_layers, first_trained_layer, masked_mean, weight_decay_groups)
from helpers.models import count_parameters, encoder_features
from helpers.reproducibility import set_seed
from helpers.training import fit
from test_transformer import tiny  # noqa: F401  (lesson 6's tiny BERT fixture, shared)


@pytest.fixture(scope="module")
def reviews(imdb_fixture):
    train = imdb_fixture["train"]
    return [train.texts[i] for i in (0, 1, 150, 199, 3, 160, 140, 2)] + ["A short one: great!", "Bad."]


def padded_batch(encoder, texts, max_length=128):
    return pad_ids(tokenize_texts(encoder.tokenizer, texts, max_length), encoder.pad_id)


# ---------------------------------------------------------------------------- the split is exact

@pytest.mark.parametrize("first_layer", [0, 1])
def test_lower_then_upper_layers_are_the_full_encoder_exactly_in_fp32(tiny, reviews, first_layer):
    ids, lengths = padded_batch(tiny, reviews)
    assert len(set(lengths.tolist())) > 3                       # a batch of different lengths: padding to mask
    classifier = UpperLayersClassifier(tiny.model, first_layer).eval()
    with torch.no_grad():
        full = encoder_features(tiny.model, ids, lengths)
        inputs = ids if first_layer == 0 else lower_layers(tiny.model, ids, lengths, first_layer)
        split = classifier.encode(inputs, lengths)
    for row, length in enumerate(lengths.tolist()):
        assert torch.equal(split[row, :length], full[row, :length])   # bit for bit on every real token


def test_lower_layers_ignore_padding_and_reach_the_last_hidden_state(tiny, reviews):
    ids, lengths = padded_batch(tiny, reviews)
    n = len(tiny.model.encoder.layer)
    with torch.no_grad():
        assert torch.equal(lower_layers(tiny.model, ids, lengths, n), encoder_features(tiny.model, ids, lengths))
        in_batch = lower_layers(tiny.model, ids, lengths, 1)
        alone = lower_layers(tiny.model, ids[-1:, :lengths[-1]], lengths[-1:], 1)
    torch.testing.assert_close(in_batch[-1, :lengths[-1]], alone[0], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="layer must be from 0 to 2"):
        lower_layers(tiny.model, ids, lengths, 3)


def test_cached_layer_through_the_loader_matches_the_full_encoder_within_fp16(tiny, reviews, tmp_cache):
    store = encode_cached(tiny, reviews, max_length=64, cache_dir=tmp_cache, precision="fp32", layer=1)
    assert store.meta["layer"] == 1 and store.features.dtype == np.float16
    classifier = UpperLayersClassifier(tiny.model, first_layer=1).eval()
    # labels = review indices, to find each row again in batches re-padded in another composition
    loader = feature_loader([store], [np.arange(len(reviews))], batch_size=3)
    checked = 0
    with torch.no_grad():
        for features, lengths, indices in loader:
            top = classifier.encode(features, lengths)
            for row, index in enumerate(indices.tolist()):
                ids = torch.as_tensor(tokenize_texts(tiny.tokenizer, [reviews[index]], 64)[0])[None]
                full = tiny.model(input_ids=ids).last_hidden_state[0]
                assert top[row, :lengths[row]].shape == full.shape
                torch.testing.assert_close(top[row, :lengths[row]], full, atol=2e-2, rtol=1e-2)   # fp16 storage
                checked += 1
    assert checked == len(reviews)


def test_cache_keys_of_lesson_6_are_unchanged_and_layer_and_cut_have_their_own(tiny, reviews, tmp_path):
    key = {"model": tiny.identity, "max_length": 64, "texts": texts_digest(reviews), "n": len(reviews),
           "clean": "html-breaks", "format": FEATURE_FORMAT, "precision": "bf16"}   # the key before this change
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    lesson6 = feature_cache_folder(tiny, reviews, 64, tmp_path, "bf16")
    assert lesson6.name == f"tiny-bert-64-{digest}"
    assert feature_cache_folder(tiny, reviews, 64, tmp_path, "bf16", layer=None, head_tokens=None) == lesson6
    others = {feature_cache_folder(tiny, reviews, 64, tmp_path, "bf16", layer=1),
              feature_cache_folder(tiny, reviews, 64, tmp_path, "bf16", layer=2),
              feature_cache_folder(tiny, reviews, 64, tmp_path, "bf16", head_tokens=15),
              feature_cache_folder(tiny, reviews, 64, tmp_path, "bf16", layer=1, head_tokens=15)}
    assert len(others) == 4 and lesson6 not in others


# ---------------------------------------------------------------------------- head+tail truncation

def test_keep_head_and_tail_on_known_inputs():
    assert keep_head_and_tail(range(10), keep=6, head=2) == [0, 1, 6, 7, 8, 9]
    assert keep_head_and_tail(range(10), keep=6, head=0) == [4, 5, 6, 7, 8, 9]
    assert keep_head_and_tail(range(10), keep=6, head=6) == [0, 1, 2, 3, 4, 5]
    assert keep_head_and_tail(range(5), keep=6, head=2) == [0, 1, 2, 3, 4]         # short: untouched
    assert keep_head_and_tail(range(6), keep=6, head=2) == [0, 1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="head must be between 0 and keep"):
        keep_head_and_tail(range(10), keep=6, head=7)


def test_tokenize_head_and_tail_keeps_the_opening_and_the_verdict(tiny):
    long_review = "brilliant opening scene<br />" + "then some plot " * 300 + "overall awful"
    ids = tokenize_texts(tiny.tokenizer, [long_review, "This film is great"], 16, head_tokens=3)
    tokens = tiny.tokenizer.convert_ids_to_tokens(ids[0].tolist())
    assert len(tokens) == 16 and tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    assert tokens[1:4] == ["brilliant", "opening", "scene"] and tokens[-3:-1] == ["overall", "awful"]
    head_only = tokenize_texts(tiny.tokenizer, [long_review, "This film is great"], 16)
    assert "awful" not in tiny.tokenizer.convert_ids_to_tokens(head_only[0].tolist())
    np.testing.assert_array_equal(ids[1], head_only[1])                         # short texts: the same ids
    with pytest.raises(ValueError, match="head_tokens must be between 0 and max_length - 2"):
        tokenize_texts(tiny.tokenizer, [long_review], 16, head_tokens=15)


def test_head_and_tail_features_are_cached_under_their_own_entry(tiny, reviews, tmp_cache):
    head_only = encode_cached(tiny, reviews, max_length=32, cache_dir=tmp_cache, layer=1)
    head_tail = encode_cached(tiny, reviews, max_length=32, cache_dir=tmp_cache, layer=1, head_tokens=7)
    assert head_tail.folder != head_only.folder and head_tail.meta["head_tokens"] == 7
    assert head_tail.lengths.tolist() == head_only.lengths.tolist()     # same lengths, other tokens
    assert not np.array_equal(np.asarray(head_tail.features), np.asarray(head_only.features))


# ---------------------------------------------------------------------------- parameters

def test_bad_parameters_get_clear_errors(tiny):
    for bad in (0, 7, -1, 2.0, True, None):
        with pytest.raises(ValueError, match="TRAIN_LAYERS must be a whole number from 1 to 6"):
            first_trained_layer(6, bad)
    assert first_trained_layer(6, 2) == 4 and first_trained_layer(6, 6) == 0
    for bad in (2, 0, 513, 128.0):
        with pytest.raises(ValueError, match="MAX_LENGTH must be a whole number from 3"):
            default_head_tokens(bad, 512)
    with pytest.raises(ValueError, match=r"HEAD_TOKENS must be a whole number from 0 to MAX_LENGTH - 2 \(254\)"):
        default_head_tokens(256, 512, head_tokens=255)
    assert default_head_tokens(512, 512) == 127 and default_head_tokens(256, 512, head_tokens=0) == 0
    assert [default_train_layers(n, "cpu") for n in (1, 2, 6, 12)] == [1, 1, 3, 6]
    assert default_train_layers(6, "cuda") == 6
    with pytest.raises(ValueError, match="TRAIN_LAYERS"):
        UpperLayersClassifier(tiny.model, first_layer=2)                # no layer left to train
    with pytest.raises(ValueError, match="pooling must be one of"):
        UpperLayersClassifier(tiny.model, first_layer=1, pooling="max")
    with pytest.raises(ValueError, match="not a BERT-like encoder"):
        UpperLayersClassifier(nn.Linear(2, 2), first_layer=1)


# ---------------------------------------------------------------------------- the model and its training

def test_masked_mean_averages_real_tokens_only():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]], [[5.0, 6.0], [0.0, 0.0], [0.0, 0.0]]])
    torch.testing.assert_close(masked_mean(hidden, torch.tensor([2, 1])), torch.tensor([[2.0, 3.0], [5.0, 6.0]]))


def test_classifier_trains_copies_and_leaves_the_encoder_alone(tiny, reviews, tmp_cache):
    before = {name: param.clone() for name, param in tiny.model.named_parameters()}
    set_seed(0)
    classifier = UpperLayersClassifier(tiny.model, first_layer=1)
    layer_params = sum(p.numel() for p in tiny.model.encoder.layer[1].parameters())
    assert count_parameters(classifier) == layer_params + tiny.hidden_size + 1     # one layer + linear
    store = encode_cached(tiny, reviews, max_length=64, cache_dir=tmp_cache, layer=1)
    loader = feature_loader([store], [np.arange(len(reviews)) % 2], batch_size=4, shuffle=True, seed=1)
    optimizer = torch.optim.AdamW(classifier.parameters(), lr=1e-2)
    history = fit(classifier, loader, loader, ScheduledOptimizer(
        optimizer, get_linear_schedule_with_warmup(optimizer, 1, 2 * len(loader))), nn.BCEWithLogitsLoss(), 2, "cpu")
    assert len(history) == 2 and all(np.isfinite(row["train_loss"]) for row in history)
    for name, param in tiny.model.named_parameters():
        assert torch.equal(param, before[name]) and not param.requires_grad
    assert not torch.equal(classifier.layers[0].output.dense.weight, tiny.model.encoder.layer[1].output.dense.weight)


def test_weight_decay_spares_biases_and_layer_norms(tiny):
    classifier = UpperLayersClassifier(tiny.model, first_layer=1)
    decayed, kept = weight_decay_groups(classifier, 0.01)
    assert (decayed["weight_decay"], kept["weight_decay"]) == (0.01, 0.0)
    assert all(name.endswith("bias") or "LayerNorm" in name for name in kept["names"])
    assert "out.bias" in kept["names"] and "layers.0.output.LayerNorm.weight" in kept["names"]
    assert "out.weight" in decayed["names"] and "layers.0.attention.self.query.weight" in decayed["names"]
    assert not any(name.endswith("bias") or "LayerNorm" in name for name in decayed["names"])
    trainable = [param for param in classifier.parameters() if param.requires_grad]
    assert sum(len(group["params"]) for group in (decayed, kept)) == len(trainable)
    # AdamW takes the groups as they are (the extra "names" key rides along) and decays only the first
    adamw = torch.optim.AdamW(weight_decay_groups(classifier, 0.5), lr=0.1)
    for param in classifier.parameters():
        param.grad = torch.zeros_like(param)
    before = {name: param.detach().clone() for name, param in classifier.named_parameters()}
    adamw.step()
    after = dict(classifier.named_parameters())
    assert torch.equal(after["out.bias"], before["out.bias"])               # zero gradient, no decay: unchanged
    assert not torch.equal(after["out.weight"], before["out.weight"])       # zero gradient, decay: shrinks
    with pytest.raises(ValueError, match="weight_decay must be 0 or more"):
        weight_decay_groups(classifier, -1.0)


def test_whole_model_on_ids_equals_the_classifier_on_the_cache(tiny, reviews, tmp_cache):
    set_seed(0)
    classifier = UpperLayersClassifier(tiny.model, first_layer=1, pooling="cls")
    whole = FineTunedSentiment(tiny.model, classifier)
    whole.train()
    assert classifier.training and not tiny.model.training               # frozen layers: no dropout
    ids, lengths = padded_batch(tiny, reviews)
    whole.eval()
    with torch.no_grad():
        direct = whole(ids, lengths)
        cached = classifier(lower_layers(tiny.model, ids, lengths, 1), lengths)
    assert direct.shape == (len(reviews), 1) and torch.equal(direct, cached)
    probabilities = predict_sentiment(whole, tiny.tokenizer, reviews[:3], 128, head_tokens=10)
    assert probabilities.shape == (3,) and np.all((probabilities > 0) & (probabilities < 1))
    full = FineTunedSentiment(tiny.model, UpperLayersClassifier(tiny.model, first_layer=0))
    assert count_parameters(full) == count_parameters(tiny.model, trainable_only=False) - sum(
        p.numel() for p in tiny.model.pooler.parameters()) + tiny.hidden_size + 1   # all but BERT's unused pooler


def test_scheduled_optimizer_warms_up_decays_and_clips():
    weight = nn.Parameter(torch.zeros(3))
    optimizer = torch.optim.SGD([weight], lr=1.0)
    scheduled = ScheduledOptimizer(optimizer, get_linear_schedule_with_warmup(optimizer, 2, 6), max_grad_norm=0.5)
    rates = []
    for _ in range(6):
        rates.append(scheduled.lr)
        scheduled.zero_grad()
        (weight * torch.tensor([30.0, 40.0, 0.0])).sum().backward()    # gradient norm 50
        scheduled.step()
        assert weight.grad.norm().item() == pytest.approx(0.5)         # clipped before the step
    assert rates == pytest.approx([0.0, 0.5, 1.0, 0.75, 0.5, 0.25]) and scheduled.steps == 6
    assert weight.detach().tolist() == pytest.approx([-0.3 * 3.0, -0.4 * 3.0, 0.0])   # sum of rates x clipped grad


def test_scheduled_optimizer_behind_a_gradient_scaler_clips_unscaled_gradients_and_skips_overflows():
    """float16 training: the scaler unscales the gradients (through `param_groups`) before the clipping step,
    and a step whose gradients overflowed is skipped, learning-rate schedule included."""
    weight = nn.Parameter(torch.zeros(3))
    optimizer = torch.optim.SGD([weight], lr=1.0)
    scheduled = ScheduledOptimizer(optimizer, get_linear_schedule_with_warmup(optimizer, 0, 4), max_grad_norm=0.5)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    scaler.scale((weight * torch.tensor([30.0, 40.0, 0.0])).sum()).backward()   # gradient norm 50, scaled by 1024
    scaler.step(scheduled)
    scaler.update()
    assert weight.grad.norm().item() == pytest.approx(0.5) and scheduled.steps == 1   # unscaled, then clipped
    assert weight.detach().tolist() == pytest.approx([-0.3, -0.4, 0.0]) and scheduled.lr == pytest.approx(0.75)
    scheduled.zero_grad()
    scaler.scale((weight * torch.tensor([float("inf"), 1.0, 1.0])).sum()).backward()
    scaler.step(scheduled)
    scaler.update()
    assert scheduled.steps == 1 and scheduled.lr == pytest.approx(0.75) and scaler.get_scale() == 512.0   # skipped


def test_trained_attention_runs_in_the_math_kernel_on_cuda_only_with_gradients():
    """On a GPU the memory-efficient kernel's backward is not deterministic (torch warns): while gradients are
    recorded there, only SDPA's math kernel may run. The flags are torch's own, readable without a GPU."""
    def kernels():
        return cuda.flash_sdp_enabled(), cuda.mem_efficient_sdp_enabled(), cuda.math_sdp_enabled()

    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)   # as every lesson run has them
    try:
        default = kernels()
        with training_attention("cuda"):
            assert kernels() == (False, False, True)
        assert kernels() == default
        with training_attention("cpu"):
            assert kernels() == default                          # the CPU keeps torch's choice
        with torch.no_grad(), training_attention("cuda"):
            assert kernels() == default                          # frozen layers, evaluation: fast kernels
    finally:
        torch.use_deterministic_algorithms(deterministic)


def test_fine_tuning_on_the_cache_repeats_exactly_with_the_same_seed(tiny, reviews, tmp_cache):
    store = encode_cached(tiny, reviews, max_length=64, cache_dir=tmp_cache, layer=1, head_tokens=15)

    def train_once():
        set_seed(7)
        classifier = UpperLayersClassifier(tiny.model, first_layer=1)
        loader = feature_loader([store], [np.arange(len(reviews)) % 2], batch_size=3, shuffle=True, seed=7)
        optimizer = torch.optim.AdamW(classifier.parameters(), lr=1e-3)
        history = fit(classifier, loader, None, ScheduledOptimizer(
            optimizer, get_linear_schedule_with_warmup(optimizer, 1, len(loader))), nn.BCEWithLogitsLoss(), 1, "cpu")
        return history[0]["train_loss"], classifier.state_dict()

    (first_loss, first), (second_loss, second) = train_once(), train_once()
    assert first_loss == second_loss                                   # dropout and batch order from the seeds
    assert all(torch.equal(first[name], second[name]) for name in first)
