"""Lesson 6: a frozen pretrained transformer (BERT) feeding a GRU.

* `resolve_transformer` / `load_encoder`: which encoder to use and loading it, a Hugging
  Face hub name (downloaded once by transformers) or a local model folder (never
  touches the network), with a clear error when the hub cannot be reached;
* `encode_cached`: the encoder is frozen, so its output for a review never changes.
  It is computed once and kept on disk (float16, only the real tokens of each review,
  one ragged array), and every epoch reads it back instead of re-running BERT;
* `FeatureDataset`, `FeatureCollate`, `feature_loaders`: batches of those features;
* `GRUHead`, `BERTGRUSentiment`: the model (the GRU is `helpers.models.PackedGRU`).

Models follow the rest of the course: forward(x, lengths) returns logits [batch, 1].
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .batching import BucketBatchSampler
from .files import FIXTURES_DIR, REPO_ROOT, DataError, atomic_path, cache_dir
from .models import PackedGRU, length_mask
from .text import pad_sequences

DEFAULT_TRANSFORMER = "bert-base-uncased"
TINY_BERT_DIR = FIXTURES_DIR / "tiny-bert"
OFFLINE_TRANSFORMER = "all-MiniLM-L6-v2"   # looked for in <data dir>/../models/ by full offline runs
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
FEATURE_FORMAT = 1
_HTML_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)


class TransformerError(DataError):
    """The transformer cannot be found or loaded; the message says what to pass instead."""


# ---------------------------------------------------------------------------- which encoder

def local_model_dir(name: str | os.PathLike) -> Path | None:
    """The model folder `name` points to, or None when `name` is a hub id like "bert-base-uncased".

    A relative path is tried from the current folder, then from the repository root
    (notebooks run inside notebooks/, so "../shared/models/x" still works). Something
    that looks like a path but is not a folder is an error, not a hub id.
    """
    text = str(name)
    raw = Path(text).expanduser()
    candidates = [raw] if raw.is_absolute() else list(dict.fromkeys([Path.cwd() / raw, REPO_ROOT / raw]))
    for candidate in candidates:
        if candidate.is_dir():
            return candidate.resolve()
    if not re.fullmatch(r"[\w-][\w.-]*(/[\w.-]+)?", text):   # not "name" or "org/name": a path
        raise TransformerError(f"no model folder at {text!r} (tried {', '.join(str(c) for c in candidates)}). "
                               "Pass a folder holding config.json and the weights, or a Hugging Face model "
                               "name such as 'bert-base-uncased'.")
    return None


def resolve_transformer(name: str | None = None, profile: str = "full", data_directory=None) -> str:
    """The transformer a lesson uses, as a hub name or a local folder path.

    In order: `name` (the notebook's TRANSFORMER); env `SENTIMENT_TRANSFORMER`; in the
    smoke profile the tiny random BERT of the test fixtures; in a full run with a local
    data folder, `<data dir>/../models/all-MiniLM-L6-v2` when it exists (an offline
    stand-in, announced); else "bert-base-uncased".
    """
    if name:
        return str(name)
    if os.environ.get("SENTIMENT_TRANSFORMER"):
        return os.environ["SENTIMENT_TRANSFORMER"]
    if profile == "smoke":
        print(f"smoke profile: using the tiny randomly initialised BERT in {TINY_BERT_DIR.relative_to(REPO_ROOT)}")
        return str(TINY_BERT_DIR)
    if data_directory is not None:
        offline = Path(data_directory).resolve().parent / "models" / OFFLINE_TRANSFORMER
        if (offline / "config.json").is_file():
            print(f"TRANSFORMER not set: using the local {offline} instead of {DEFAULT_TRANSFORMER} "
                  "(found beside the data folder)")
            return str(offline)
    return DEFAULT_TRANSFORMER


@dataclass
class Encoder:
    """A loaded, frozen encoder. `identity` names exactly these weights and vocabulary (the cache key)."""

    name: str
    source: str          # "hub", "local" or "random" (a config without weights, initialised from a seed)
    tokenizer: object = field(repr=False)
    model: nn.Module = field(repr=False)
    identity: dict = field(repr=False)

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def max_length(self) -> int:
        """The longest input, in tokens, the model accepts ([CLS] and [SEP] included)."""
        limits = [getattr(self.model.config, "max_position_embeddings", None),
                  getattr(self.tokenizer, "model_max_length", None)]
        return int(min(limit for limit in limits if limit and limit < 1_000_000))

    @property
    def vocab_size(self) -> int:
        return len(self.tokenizer)

    @property
    def label(self) -> str:
        """A short name for printing: the hub id or the folder name."""
        return self.name if self.source == "hub" else Path(self.name).name


@contextlib.contextmanager
def _quiet_transformers():
    """No weight-loading progress bars or info chatter in the notebooks' output."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    verbosity = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if enabled:
            hf_logging.enable_progress_bar()


def _hub_reachable(timeout: float = 5.0) -> bool:
    """Whether the Hugging Face endpoint answers at all (one request, no retries)."""
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    try:
        get_session().head(constants.ENDPOINT, timeout=timeout)
        return True
    except Exception:  # any network failure: DNS, refused, timeout, proxy
        return False


def _offline_message(name: str, reason: str) -> str:
    return (f"cannot load the transformer {name!r}: {reason}, and no copy of it is in the local Hugging Face "
            "cache. Without internet, use a local model folder: set the notebook parameter "
            "TRANSFORMER = 'path/to/model' (papermill: -p TRANSFORMER path/to/model) or the environment "
            "variable SENTIMENT_TRANSFORMER=path/to/model, e.g. ../shared/models/all-MiniLM-L6-v2 "
            "(a folder with config.json, the weights and the tokenizer files).")


def _folder_identity(folder: Path) -> dict:
    """Files of a model folder with size and mtime: a cheap fingerprint of weights and vocabulary."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    return {"path": str(folder), "files": [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files]}


def _content_identity(folder: Path, names: Sequence[str]) -> dict:
    """sha256 of small files (config, vocabulary): the same tiny BERT anywhere gives the same key."""
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
            for name in names if (folder / name).is_file()}


def load_encoder(name: str | os.PathLike, device="cpu") -> Encoder:
    """Tokenizer and frozen model (eval mode, no gradients) for a hub name or a local folder.

    A local folder is read with `local_files_only=True`. A folder whose config.json has
    `random_init_seed` and no weights file (the tiny test BERT) is initialised from that
    seed. A hub name is downloaded (or taken from the Hugging Face cache); if the hub is
    unreachable and the model is not cached, TransformerError says what to pass instead.
    """
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    name = str(name)
    folder = local_model_dir(name)
    with _quiet_transformers():
        if folder is not None:
            if not (folder / "config.json").is_file():
                raise TransformerError(f"{folder} has no config.json: not a Hugging Face model folder")
            try:
                tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
                config = AutoConfig.from_pretrained(folder, local_files_only=True)
                if any((folder / weights).is_file() for weights in WEIGHT_FILES):
                    model = AutoModel.from_pretrained(folder, local_files_only=True)
                    source, identity = "local", _folder_identity(folder)
                elif getattr(config, "random_init_seed", None) is not None:
                    seed = int(config.random_init_seed)
                    with torch.random.fork_rng(devices=[]):  # leave the lesson's random stream alone
                        torch.manual_seed(seed)
                        model = AutoModel.from_config(config)
                    source = "random"
                    identity = {"random_init_seed": seed,
                                **_content_identity(folder, ["config.json", "vocab.txt", "tokenizer.json"])}
                else:
                    raise TransformerError(f"{folder} has no weights ({' or '.join(WEIGHT_FILES[::2])})")
            except (OSError, ValueError) as err:
                raise TransformerError(f"could not load the model folder {folder}: {err}") from None
            name = str(folder)
        else:
            from huggingface_hub import constants, try_to_load_from_cache

            try:
                cached = isinstance(try_to_load_from_cache(name, "config.json"), str)
            except Exception:  # an odd repository id: let transformers say what is wrong
                cached = False
            offline = bool(constants.HF_HUB_OFFLINE)
            reason = "HF_HUB_OFFLINE is set"
            if not offline and not _hub_reachable():
                offline, reason = True, f"the Hugging Face hub ({constants.ENDPOINT}) cannot be reached"
            if offline and not cached:
                raise TransformerError(_offline_message(name, reason))
            try:
                tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=offline)
                model = AutoModel.from_pretrained(name, local_files_only=offline)
            except OSError as err:
                raise TransformerError(_offline_message(name, f"loading failed ({str(err).splitlines()[0]})")) \
                    from None
            source = "hub"
            identity = {"hub": name, "commit": getattr(model.config, "_commit_hash", None),
                        "config": model.config.to_json_string(use_diff=False)}
    model.requires_grad_(False)
    model.eval()
    return Encoder(name, source, tokenizer, model.to(device), identity)


# ---------------------------------------------------------------------------- tokens

def clean_review(text: str) -> str:
    """IMDb reviews contain `<br />` line breaks; BERT would read them as `<`, `br`, `/`, `>`."""
    return _HTML_BREAK.sub(" ", text)


def tokenize_texts(tokenizer, texts: Sequence[str], max_length: int, chunk: int = 2000,
                   desc: str = "tokenizing") -> list[np.ndarray]:
    """WordPiece ids of each text, `[CLS] ... [SEP]`, cut to `max_length` tokens in all."""
    from .progress import progress

    ids = []
    starts = range(0, len(texts), chunk)
    for start in (progress(starts, desc) if len(starts) > 1 else starts):
        batch = [clean_review(text) for text in texts[start:start + chunk]]
        encoded = tokenizer(batch, truncation=True, max_length=max_length, return_attention_mask=False,
                            return_token_type_ids=False)["input_ids"]
        ids += [np.asarray(row, dtype=np.int64) for row in encoded]
    return ids


def pad_ids(sequences: Sequence, pad_index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids LongTensor [batch, time] padded with `pad_index`, lengths int64 [batch])."""
    ids, lengths = pad_sequences(sequences, pad_index)
    return torch.from_numpy(ids), torch.from_numpy(lengths)


def encoder_features(model: nn.Module, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The encoder's last hidden states [batch, time, hidden] for padded ids [batch, time].

    The attention mask hides the padding, so a review's features do not depend on
    what it is batched with.
    """
    mask = length_mask(lengths.to(ids.device), ids.shape[1]).long()
    return model(input_ids=ids, attention_mask=mask).last_hidden_state


# ---------------------------------------------------------------------------- the feature cache

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


def feature_cache_folder(encoder: Encoder, texts: Sequence[str], max_length: int, cache=None,
                         precision: str = "fp32") -> Path:
    """Where `encode_cached` keeps the features: a hash of the model, the max length, the
    precision the encoder ran in and the texts."""
    key = {"model": encoder.identity, "max_length": int(max_length), "texts": texts_digest(texts),
           "n": len(texts), "clean": "html-breaks", "format": FEATURE_FORMAT}
    if precision != "fp32":   # float32 entries keep the keys they had before precision was a choice
        key["precision"] = precision
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    slug = re.sub(r"[^\w.-]+", "-", encoder.label)[:60]
    return cache_dir(cache) / "transformer-features" / f"{slug}-{max_length}-{digest}"


def encoder_precision(device, precision: str | None = None) -> str:
    """The precision the frozen encoder runs in: "fp16" on CUDA, else `training_precision`
    ("bf16" on CPUs with native bfloat16, "fp32" elsewhere, or what `precision` says)."""
    from .training import training_precision

    device = torch.device(device)
    precision = precision or os.environ.get("SENTIMENT_PRECISION") or "auto"
    if precision == "auto" and device.type == "cuda":
        return "fp16"
    return precision if precision == "fp16" else training_precision(device, precision)


def encoder_autocast(device, precision: str | None = None):
    """The autocast context for `encoder_precision(device, precision)`."""
    device = torch.device(device)
    precision = encoder_precision(device, precision)
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.float16 if precision == "fp16" else torch.bfloat16)


def _token_batches(lengths: np.ndarray, batch_tokens: int) -> list[np.ndarray]:
    """Indices sorted longest first, cut into batches of at most `batch_tokens` padded tokens."""
    order = np.argsort(-lengths, kind="stable")
    batches, start = [], 0
    while start < len(order):
        size = max(1, batch_tokens // int(lengths[order[start]]))   # the first is the longest
        batches.append(order[start:start + size])
        start += size
    return batches


def encode_cached(encoder: Encoder, texts: Sequence[str], max_length: int, cache=None, device=None,
                  batch_tokens: int = 8192, desc: str = "encoding", precision: str | None = None) -> FeatureStore:
    """The encoder's features for `texts`, computed once and then read from the disk cache.

    Texts are tokenized, cut to `max_length`, sorted by length and encoded in batches of
    about `batch_tokens` tokens (little padding) under `torch.inference_mode()`. Only
    real tokens are stored, as float16. The encoder runs in float16 on CUDA and in
    `training_precision(device, precision)` elsewhere (bfloat16 on CPUs that have it:
    about 2x faster, features within 1e-4 cosine of float32). The entry is written to a temporary folder and
    renamed into place when complete, so an interrupted run leaves nothing behind.
    """
    from .results import device_name
    from .progress import progress

    device = torch.device(device) if device is not None else next(encoder.model.parameters()).device
    precision = encoder_precision(device, precision)
    folder = feature_cache_folder(encoder, texts, max_length, cache, precision)
    if (folder / "meta.json").is_file():
        try:
            return FeatureStore(folder, from_cache=True)
        except (OSError, ValueError, KeyError):
            pass  # damaged entry: rebuild it
    start = time.perf_counter()
    ids = tokenize_texts(encoder.tokenizer, texts, max_length, desc=f"{desc}: tokenizing")
    tokenize_seconds = time.perf_counter() - start
    lengths = np.array([len(row) for row in ids], dtype=np.int64)
    offsets = np.zeros(len(ids) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    model = encoder.model.to(device).eval()
    pad = encoder.tokenizer.pad_token_id or 0
    autocast = encoder_autocast(device, precision)
    needed = int(offsets[-1]) * encoder.hidden_size * 2
    folder.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder.parent).free
    if needed > free:
        raise DataError(f"the encoder features need {needed / 1e9:.1f} GB but {folder.parent} has "
                        f"{free / 1e9:.1f} GB free: set SENTIMENT_CACHE_DIR to a bigger disk or lower MAX_LENGTH")
    with atomic_path(folder) as tmp:
        tmp.mkdir()
        np.save(tmp / "offsets.npy", offsets)
        features = np.lib.format.open_memmap(tmp / "features.npy", mode="w+", dtype=np.float16,
                                             shape=(int(offsets[-1]), encoder.hidden_size))
        start = time.perf_counter()
        batches = _token_batches(lengths, batch_tokens)
        with torch.inference_mode(), autocast:
            for batch in progress(batches, desc):
                padded, batch_lengths = pad_ids([ids[i] for i in batch], pad)
                output = encoder_features(model, padded.to(device), batch_lengths)
                output = output.to(torch.float16).cpu().numpy()
                for row, index in enumerate(batch):
                    features[offsets[index]:offsets[index + 1]] = output[row, :lengths[index]]
        features.flush()
        encode_seconds = time.perf_counter() - start
        del features
        meta = {"n": len(texts), "total_tokens": int(offsets[-1]), "hidden_size": encoder.hidden_size,
                "max_length": int(max_length), "model": encoder.name, "source": encoder.source,
                "truncated": int((lengths >= max_length).sum()), "encode_seconds": encode_seconds,
                "tokenize_seconds": tokenize_seconds, "device": device_name(device), "precision": precision,
                "batches": len(batches), "created": time.strftime("%Y-%m-%d %H:%M:%S")}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return FeatureStore(folder, from_cache=False)


def time_encoder(encoder: Encoder, texts: Sequence[str], max_length: int, device=None,
                 batch_tokens: int = 8192, precision: str | None = None) -> dict:
    """Encode `texts` once without caching (as `encode_cached` does) and time it:
    {"reviews", "tokens", "seconds", "seconds_per_review", "precision"}, tokenizing included."""
    device = torch.device(device) if device is not None else next(encoder.model.parameters()).device
    start = time.perf_counter()
    ids = tokenize_texts(encoder.tokenizer, texts, max_length)
    lengths = np.array([len(row) for row in ids])
    with torch.inference_mode(), encoder_autocast(device, precision):
        for batch in _token_batches(lengths, batch_tokens):
            padded, batch_lengths = pad_ids([ids[i] for i in batch], encoder.tokenizer.pad_token_id or 0)
            encoder_features(encoder.model, padded.to(device), batch_lengths).float().cpu()
    seconds = time.perf_counter() - start
    return {"reviews": len(texts), "tokens": int(lengths.sum()), "seconds": seconds,
            "seconds_per_review": seconds / max(len(texts), 1), "precision": encoder_precision(device, precision)}


# ---------------------------------------------------------------------------- batches of features

class FeatureDataset(Dataset):
    """Item i is (float32 features [length_i, hidden] read from the store, label)."""

    def __init__(self, store: FeatureStore, labels):
        self.store = store
        self.labels = torch.as_tensor(np.asarray(labels, dtype=np.int64))
        if len(store) != len(self.labels):
            raise ValueError(f"{len(store)} feature rows but {len(self.labels)} labels")

    @property
    def lengths(self) -> np.ndarray:
        return self.store.lengths

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        return torch.from_numpy(self.store[index].astype(np.float32)), self.labels[index]


class FeatureCollate:
    """(features, label) pairs -> (features float [batch, time, hidden] zero-padded, lengths, labels),
    longest first; lengths int64 on the CPU like `PadCollate`."""

    def __call__(self, batch):
        lengths = torch.tensor([len(features) for features, _ in batch], dtype=torch.int64)
        order = torch.argsort(lengths, descending=True, stable=True).tolist()
        hidden = batch[0][0].shape[1]
        padded = torch.zeros(len(batch), int(lengths.max()), hidden, dtype=torch.float32)
        for row, index in enumerate(order):
            padded[row, :lengths[index]] = batch[index][0]
        labels = torch.stack([torch.as_tensor(batch[i][1]) for i in order])
        return padded, lengths[order], labels


def feature_loaders(stores: dict[str, FeatureStore], labels: dict, batch_size: int, seed: int = 0
                    ) -> dict[str, DataLoader]:
    """One loader per split, batched by length: "train" shuffled (pools sorted by length,
    batch order shuffled), the others sorted by length."""
    loaders = {}
    for name, store in stores.items():
        dataset = FeatureDataset(store, labels[name])
        sampler = BucketBatchSampler(dataset.lengths, batch_size, shuffle=(name == "train"), seed=seed)
        loaders[name] = DataLoader(dataset, batch_sampler=sampler, collate_fn=FeatureCollate())
    return loaders


# ---------------------------------------------------------------------------- the model

class GRUHead(nn.Module):
    """The trainable part: encoder features [batch, time, emb] -> GRU that skips padding ->
    final forward and backward states -> dropout -> linear -> logits [batch, output_dim]."""

    def __init__(self, embedding_dim: int, hidden_dim: int, output_dim: int, n_layers: int,
                 bidirectional: bool, dropout: float):
        super().__init__()
        self.rnn = PackedGRU(embedding_dim, hidden_dim, n_layers, bidirectional,
                             dropout=0 if n_layers < 2 else dropout, batch_first=True)
        self.out = nn.Linear(hidden_dim * (2 if bidirectional else 1), output_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, features, lengths):
        hidden = self.rnn(features, lengths)               # [batch, hidden * dirs]
        return self.out(self.dropout(hidden))              # [batch, output_dim]


class BERTGRUSentiment(nn.Module):
    """Lesson 6: a frozen BERT reads the review, a GRU reads BERT's output, a linear layer scores it.

    forward(ids [batch, time] of WordPiece ids, lengths) -> logits [batch, output_dim].
    The encoder's weights are frozen (requires_grad=False) and it stays in eval mode,
    so `head(encode(ids))` is all that training changes, and `encode` can be cached.
    """

    def __init__(self, bert: nn.Module, hidden_dim: int, output_dim: int, n_layers: int,
                 bidirectional: bool, dropout: float):
        super().__init__()
        self.bert = bert
        for param in self.bert.parameters():
            param.requires_grad = False
        self.head = GRUHead(bert.config.hidden_size, hidden_dim, output_dim, n_layers, bidirectional, dropout)

    def encode(self, ids, lengths):
        with torch.no_grad():
            return encoder_features(self.bert, ids, lengths)   # [batch, time, emb]

    def forward(self, ids, lengths):
        return self.head(self.encode(ids, lengths), lengths)

    def train(self, mode: bool = True):
        super().train(mode)
        self.bert.eval()   # frozen means fixed features: no dropout inside BERT
        return self


@torch.inference_mode()
def predict_sentiment(model: BERTGRUSentiment, tokenizer, texts: str | Sequence[str], max_length: int,
                      device="cpu") -> np.ndarray | float:
    """P(positive) for raw text(s): WordPiece, [CLS]/[SEP], cut to `max_length`, BERT, GRU, sigmoid."""
    single = isinstance(texts, str)
    ids = tokenize_texts(tokenizer, [texts] if single else list(texts), max_length, desc="predict")
    padded, lengths = pad_ids(ids, tokenizer.pad_token_id or 0)
    model.eval()
    probs = torch.sigmoid(model(padded.to(device), lengths).squeeze(-1)).cpu().numpy()
    return float(probs[0]) if single else probs
