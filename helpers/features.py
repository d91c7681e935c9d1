"""Lesson 6's feature cache: a frozen encoder's output, computed once and kept on disk.

The encoder is frozen, so its output for a review never changes. `encode_cached`
computes it once (float16, only the real tokens of each review, one ragged array) and
every epoch reads it back as a `FeatureStore` instead of re-running the transformer.
`time_encoder` times the same pass without storing it. Both run `_run_encoder`, the
one batch loop. Batches of features for training: `helpers.batching.feature_loader(s)`.
Appendix C caches the output of a lower layer instead (`layer`, `helpers.encoders.lower_layers`), of
texts cut to their head and tail (`head_tokens`).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from .encoders import Encoder, lower_layers, pad_ids, tokenize_texts
from .files import DataError, atomic_path
from .hardware import describe_hardware, hardware_summary
from .models import encoder_features
from .precision import autocast, training_precision
from .progress import progress

FEATURE_FORMAT = 1


class FeatureStore:
    """Cached encoder features of n texts, read from disk as a memory map.

    `features`: float16 [total tokens, hidden] (every review's real tokens, one after
    another, no padding); `offsets`: int64 [n + 1], review i is rows offsets[i]:offsets[i+1];
    `meta`: how and when it was made (including `encode_seconds`); `from_cache`:
    whether this call found it on disk.
    """

    def __init__(self, folder: Path, from_cache: bool):
        self.folder = Path(folder)
        self.meta = json.loads((self.folder / "meta.json").read_text(encoding="utf-8"))
        self.offsets = np.load(self.folder / "offsets.npy")
        self.features = np.load(self.folder / "features.npy", mmap_mode="r")
        self.from_cache = from_cache
        if self.features.shape[0] != self.offsets[-1] or len(self.offsets) != self.meta["n"] + 1:
            raise ValueError(f"{self.folder}: features and offsets disagree")

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: int) -> np.ndarray:
        return self.features[self.offsets[index]:self.offsets[index + 1]]

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def nbytes(self) -> int:
        return int(self.features.nbytes)

    @property
    def hidden_size(self) -> int:
        return int(self.features.shape[1])


def texts_digest(texts: Sequence[str]) -> str:
    """sha256 of the texts in order (each prefixed by its length, so boundaries count)."""
    digest = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def feature_cache_folder(encoder: Encoder, texts: Sequence[str], max_length: int, cache_dir: str | os.PathLike,
                         precision: str = "fp32", layer: int | None = None, head_tokens: int | None = None) -> Path:
    """Where `encode_cached` keeps the features under `cache_dir`: a hash of the model, the max
    length, the precision the encoder ran in, the texts and, when given, the layer and head+tail cut."""
    key = {"model": encoder.identity, "max_length": int(max_length), "texts": texts_digest(texts),
           "n": len(texts), "clean": "html-breaks", "format": FEATURE_FORMAT}
    if precision != "fp32":   # float32 entries keep the keys they had before precision was a choice
        key["precision"] = precision
    for name, value in (("layer", layer), ("head_tokens", head_tokens)):
        if value is not None:   # lesson 6's entries (last layer, first tokens) keep their keys
            key[name] = int(value)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    slug = re.sub(r"[^\w.-]+", "-", encoder.label)[:60]
    return Path(cache_dir) / "transformer-features" / f"{slug}-{max_length}-{digest}"


def _token_batches(lengths: np.ndarray, batch_tokens: int) -> list[np.ndarray]:
    """Indices sorted longest first, cut into batches of at most `batch_tokens` padded tokens."""
    order = np.argsort(-lengths, kind="stable")
    batches, start = [], 0
    while start < len(order):
        size = max(1, batch_tokens // int(lengths[order[start]]))   # the first is the longest
        batches.append(order[start:start + size])
        start += size
    return batches


def _run_encoder(encoder: Encoder, ids: Sequence[np.ndarray], device, precision: str, batch_tokens: int,
                 on_batch: Callable[[np.ndarray, np.ndarray], None] | None = None, desc: str | None = None,
                 layer: int | None = None) -> int:
    """The one encoder pass: `ids` sorted by length, in batches of about `batch_tokens` tokens
    (little padding), under `torch.inference_mode()` in `precision`. Each batch's output (the last
    hidden states, or with `layer` the hidden states after that many layers, the layers above it
    not run) is brought to the CPU as float16 [batch, time, hidden] and given to
    `on_batch(indices, output)` when set. Returns the number of batches."""
    lengths = np.array([len(row) for row in ids], dtype=np.int64)
    batches = _token_batches(lengths, batch_tokens)
    model = encoder.model.to(device).eval()
    with torch.inference_mode(), autocast(device, precision):
        for batch in (progress(batches, desc) if desc else batches):
            padded, batch_lengths = pad_ids([ids[i] for i in batch], encoder.pad_id)
            padded = padded.to(device)
            output = (encoder_features(model, padded, batch_lengths) if layer is None
                      else lower_layers(model, padded, batch_lengths, layer))
            output = output.to(torch.float16).cpu().numpy()
            if on_batch is not None:
                on_batch(batch, output)
    return len(batches)


def _device_of(encoder: Encoder, device) -> torch.device:
    return torch.device(device) if device is not None else next(encoder.model.parameters()).device


def encode_cached(encoder: Encoder, texts: Sequence[str], max_length: int, cache_dir: str | os.PathLike,
                  device=None, batch_tokens: int = 8192, desc: str = "encoding", precision: str = "auto",
                  layer: int | None = None, head_tokens: int | None = None) -> FeatureStore:
    """The encoder's features for `texts`, computed once and then read from `cache_dir`.

    Texts are tokenized, cut to `max_length` (their first tokens, or with `head_tokens` their
    head and tail: `tokenize_texts`) and encoded by `_run_encoder` on `device` (default: the
    encoder's) in `training_precision(device, precision)`, the training rule (bfloat16 where the
    hardware has it: about 2x faster, features within 1e-4 cosine of float32; float16 on older
    CUDA GPUs, no gradients to scale here). The features are the last hidden
    states, or with `layer` the hidden states after that many layers (appendix C). Only real
    tokens are stored, as float16. The entry is written to a temporary folder and renamed
    into place when complete, so an interrupted run leaves nothing behind. Its meta.json
    says how long that took and on which machine (`helpers.hardware.describe_hardware`: the
    machine that computed the cache, which may not be the one reading it later).
    """
    device = _device_of(encoder, device)
    precision = training_precision(device, precision)
    folder = feature_cache_folder(encoder, texts, max_length, cache_dir, precision, layer, head_tokens)
    if (folder / "meta.json").is_file():
        try:
            return FeatureStore(folder, from_cache=True)
        except (OSError, ValueError, KeyError):
            pass  # damaged entry: rebuild it
    start = time.perf_counter()
    ids = tokenize_texts(encoder.tokenizer, texts, max_length, desc=f"{desc}: tokenizing", head_tokens=head_tokens)
    tokenize_seconds = time.perf_counter() - start
    lengths = np.array([len(row) for row in ids], dtype=np.int64)
    offsets = np.zeros(len(ids) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    needed = int(offsets[-1]) * encoder.hidden_size * 2
    folder.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder.parent).free
    if needed > free:
        raise DataError(f"the encoder features need {needed / 1e9:.1f} GB but {folder.parent} has "
                        f"{free / 1e9:.1f} GB free: use a cache folder on a bigger disk or a lower maximum length")
    with atomic_path(folder) as tmp:
        tmp.mkdir()
        np.save(tmp / "offsets.npy", offsets)
        features = np.lib.format.open_memmap(tmp / "features.npy", mode="w+", dtype=np.float16,
                                             shape=(int(offsets[-1]), encoder.hidden_size))

        def store(batch, output):
            for row, index in enumerate(batch):
                features[offsets[index]:offsets[index + 1]] = output[row, :lengths[index]]

        start = time.perf_counter()
        n_batches = _run_encoder(encoder, ids, device, precision, batch_tokens, store, desc, layer)
        features.flush()
        encode_seconds = time.perf_counter() - start
        del features
        hardware = describe_hardware(device, precision)
        meta = {"n": len(texts), "total_tokens": int(offsets[-1]), "hidden_size": encoder.hidden_size,
                "max_length": int(max_length), "model": encoder.name, "source": encoder.source,
                "truncated": int((lengths >= max_length).sum()), "encode_seconds": encode_seconds,
                "tokenize_seconds": tokenize_seconds, "device": hardware_summary(hardware), "hardware": hardware,
                "precision": precision, "batches": n_batches, "created": time.strftime("%Y-%m-%d %H:%M:%S"),
                "layer": layer, "head_tokens": head_tokens}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return FeatureStore(folder, from_cache=False)


def time_encoder(encoder: Encoder, texts: Sequence[str], max_length: int, device=None,
                 batch_tokens: int = 8192, precision: str = "auto") -> dict:
    """Encode `texts` once as `encode_cached` does, without storing, and time it:
    {"reviews", "tokens", "seconds", "seconds_per_review", "precision"}, tokenizing included."""
    device = _device_of(encoder, device)
    precision = training_precision(device, precision)
    start = time.perf_counter()
    ids = tokenize_texts(encoder.tokenizer, texts, max_length)
    _run_encoder(encoder, ids, device, precision, batch_tokens)
    seconds = time.perf_counter() - start
    return {"reviews": len(texts), "tokens": int(sum(len(row) for row in ids)), "seconds": seconds,
            "seconds_per_review": seconds / max(len(texts), 1), "precision": precision}
