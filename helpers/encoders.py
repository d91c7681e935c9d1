"""Lesson 6's pretrained transformer: loading it frozen, WordPiece ids, prediction on raw text.

* `load_encoder`: a Hugging Face hub name (downloaded once by transformers) or a local
  model folder (never touches the network), with a clear error when the hub cannot be
  reached. Which encoder a lesson uses is the course layer's decision (its profile);
  this module loads what it is given.
* `tokenize_texts`, `pad_ids`: WordPiece ids `[CLS] ... [SEP]` cut to a maximum length (the
  first tokens, or head and tail: `keep_head_and_tail`).
* `transformer_layers`, `lower_layers`: a BERT-like encoder's layer stack, and its hidden states
  after its first k layers (what `helpers.features` caches: the last layer for lesson 6, a lower
  one for appendix C, whose `helpers.fine_tuning` trains the layers above it);
  `training_attention`: the attention kernel those layers run in while gradients are recorded.
* `predict_sentiment`: raw text -> probabilities through a `BERTGRUSentiment`
  (`helpers.models`), by `helpers.inference.probabilities` like every other lesson.

The feature cache over this encoder is `helpers.features`.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from .files import DataError
from .inference import probabilities
from .models import length_mask
from .progress import progress
from .text import pad_sequences, remove_html_breaks

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")


class TransformerError(DataError):
    """The transformer cannot be found or loaded; the message says what to pass instead."""


def local_model_dir(name: str | os.PathLike) -> Path | None:
    """The model folder `name` points to, or None when `name` is a hub id like "bert-base-uncased".

    A relative path is taken from the current folder. Something that looks like a path
    but is not a folder is an error, not a hub id.
    """
    text = str(name)
    candidate = Path(text).expanduser()
    if candidate.is_dir():
        return candidate.resolve()
    if not re.fullmatch(r"[\w-][\w.-]*(/[\w.-]+)?", text):   # not "name" or "org/name": a path
        raise TransformerError(f"no model folder at {text!r} (looked at {candidate.absolute()}). "
                               "Pass a folder holding config.json and the weights, or a Hugging Face model "
                               "name such as 'bert-base-uncased'.")
    return None


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
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id or 0

    @property
    def label(self) -> str:
        """A short name for printing: the hub id or the folder name."""
        return self.name if self.source == "hub" else Path(self.name).name


@contextlib.contextmanager
def _quiet_transformers():
    """No weight-loading progress bars or info chatter in the notebooks' output."""
    from transformers.utils import logging as hf_logging   # deferred: transformers takes seconds to import

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
    from huggingface_hub import constants   # deferred: only a model from the hub needs huggingface_hub
    from huggingface_hub.utils import get_session   # deferred: as above

    try:
        get_session().head(constants.ENDPOINT, timeout=timeout)
        return True
    except Exception:  # any network failure: DNS, refused, timeout, proxy
        return False


def _offline_message(name: str, reason: str) -> str:
    return (f"cannot load the transformer {name!r}: {reason}, and no copy of it is in the local Hugging Face "
            "cache. Without internet, pass a local model folder instead (a folder with config.json, the "
            "weights and the tokenizer files, e.g. ../shared/models/all-MiniLM-L6-v2); in the lesson "
            "notebook that is its TRANSFORMER parameter (papermill: -p TRANSFORMER path/to/model).")


def _folder_identity(folder: Path) -> dict:
    """Files of a model folder with size and mtime: a cheap fingerprint of weights and vocabulary."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    return {"path": str(folder), "files": [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files]}


def _content_identity(folder: Path, names: Sequence[str]) -> dict:
    """sha256 of small files (config, vocabulary): the same tiny BERT anywhere gives the same key."""
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
            for name in names if (folder / name).is_file()}


def _load_folder(folder: Path):
    """(tokenizer, model, source, identity) of a local model folder, never touching the network."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer   # deferred: seconds to import

    if not (folder / "config.json").is_file():
        raise TransformerError(f"{folder} has no config.json: not a Hugging Face model folder")
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        config = AutoConfig.from_pretrained(folder, local_files_only=True)
        if any((folder / weights).is_file() for weights in WEIGHT_FILES):
            return tokenizer, AutoModel.from_pretrained(folder, local_files_only=True), "local", \
                _folder_identity(folder)
        if getattr(config, "random_init_seed", None) is None:
            raise TransformerError(f"{folder} has no weights ({' or '.join(WEIGHT_FILES[::2])})")
        seed = int(config.random_init_seed)
        with torch.random.fork_rng(devices=[]):  # leave the lesson's random stream alone
            torch.manual_seed(seed)
            model = AutoModel.from_config(config)
        identity = {"random_init_seed": seed,
                    **_content_identity(folder, ["config.json", "vocab.txt", "tokenizer.json"])}
        return tokenizer, model, "random", identity
    except (OSError, ValueError) as err:
        raise TransformerError(f"could not load the model folder {folder}: {err}") from None


def _load_hub(name: str, cache_dir):
    """(tokenizer, model, "hub", identity) of a hub model: downloaded once, or from the cache offline."""
    from huggingface_hub import constants, try_to_load_from_cache   # deferred: only a hub model needs it
    from transformers import AutoModel, AutoTokenizer   # deferred: seconds to import

    try:
        cached = isinstance(try_to_load_from_cache(name, "config.json", cache_dir=cache_dir), str)
    except Exception:  # an odd repository id: let transformers say what is wrong
        cached = False
    offline = bool(constants.HF_HUB_OFFLINE)
    reason = "HF_HUB_OFFLINE is set"
    if not offline and not _hub_reachable():
        offline, reason = True, f"the Hugging Face hub ({constants.ENDPOINT}) cannot be reached"
    if offline and not cached:
        raise TransformerError(_offline_message(name, reason))
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=offline, cache_dir=cache_dir)
        model = AutoModel.from_pretrained(name, local_files_only=offline, cache_dir=cache_dir)
    except OSError as err:
        raise TransformerError(_offline_message(name, f"loading failed ({str(err).splitlines()[0]})")) from None
    identity = {"hub": name, "commit": getattr(model.config, "_commit_hash", None),
                "config": model.config.to_json_string(use_diff=False)}
    return tokenizer, model, "hub", identity


def load_encoder(name_or_path: str | os.PathLike, device="cpu", cache_dir: str | os.PathLike | None = None
                 ) -> Encoder:
    """Tokenizer and frozen model (eval mode, no gradients) for a hub name or a local folder.

    A local folder is read with `local_files_only=True`. A folder whose config.json has
    `random_init_seed` and no weights file (the tiny test BERT) is initialised from that
    seed. A hub name is downloaded into `cache_dir` (None: the Hugging Face cache) or taken
    from it; if the hub is unreachable and the model is not cached, TransformerError says
    what to pass instead.
    """
    name = str(name_or_path)
    folder = local_model_dir(name)
    with _quiet_transformers():
        if folder is not None:
            tokenizer, model, source, identity = _load_folder(folder)
            name = str(folder)
        else:
            tokenizer, model, source, identity = _load_hub(name, cache_dir)
    model.requires_grad_(False)
    model.eval()
    return Encoder(name, source, tokenizer, model.to(device), identity)


def keep_head_and_tail(ids: Sequence[int], keep: int, head: int) -> list[int]:
    """`ids` itself when it has at most `keep` items, else its first `head` and last `keep - head` items
    (head+tail truncation, Sun et al. 2019, "How to Fine-Tune BERT for Text Classification?": a review's
    opening and its conclusion say more about its sentiment than its middle)."""
    if not 0 <= head <= keep:
        raise ValueError(f"head must be between 0 and keep ({keep}), not {head}")
    ids = list(ids)
    return ids if len(ids) <= keep else ids[:head] + ids[len(ids) - (keep - head):]


def tokenize_texts(tokenizer, texts: Sequence[str], max_length: int, chunk: int = 2000,
                   desc: str = "tokenizing", head_tokens: int | None = None) -> list[np.ndarray]:
    """WordPiece ids of each text (HTML line breaks removed), `[CLS] ... [SEP]`, cut to
    `max_length` tokens in all: a list of int64 arrays [length_i].

    `head_tokens` None keeps a long text's first tokens (lesson 6); a number keeps its first
    `head_tokens` and its last `max_length - 2 - head_tokens` tokens (`keep_head_and_tail`).
    """
    if head_tokens is not None and not 0 <= head_tokens <= max_length - 2:
        raise ValueError(f"head_tokens must be between 0 and max_length - 2 ({max_length - 2}), not {head_tokens}")
    ids = []
    starts = range(0, len(texts), chunk)
    for start in (progress(starts, desc) if len(starts) > 1 else starts):
        batch = [remove_html_breaks(text) for text in texts[start:start + chunk]]
        if head_tokens is None:
            encoded = tokenizer(batch, truncation=True, max_length=max_length, return_attention_mask=False,
                                return_token_type_ids=False)["input_ids"]
        else:   # the whole text first (verbose=False: no warning that it is longer than the model takes)
            whole = tokenizer(batch, add_special_tokens=False, truncation=False, verbose=False,
                              return_attention_mask=False, return_token_type_ids=False)["input_ids"]
            encoded = [[tokenizer.cls_token_id, *keep_head_and_tail(row, max_length - 2, head_tokens),
                        tokenizer.sep_token_id] for row in whole]
        ids += [np.asarray(row, dtype=np.int64) for row in encoded]
    return ids


def pad_ids(sequences: Sequence, pad_index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids LongTensor [batch, time] padded with `pad_index`, lengths int64 [batch])."""
    ids, lengths = pad_sequences(sequences, pad_index)
    return torch.from_numpy(ids), torch.from_numpy(lengths)


def transformer_layers(model: nn.Module) -> nn.ModuleList:
    """The layer stack of a BERT-like Hugging Face encoder (`model.embeddings`, `model.encoder.layer`)."""
    layers = getattr(getattr(model, "encoder", None), "layer", None)
    if not isinstance(layers, nn.ModuleList) or not hasattr(model, "embeddings"):
        raise ValueError(f"{type(model).__name__} is not a BERT-like encoder (embeddings, then encoder.layer): "
                         "fine-tuning on cached layers supports BERT's architecture (bert-base-uncased, "
                         "all-MiniLM-L6-v2, the tiny test BERT)")
    return layers


def _attention_mask(config, hidden: torch.Tensor, lengths: torch.Tensor):
    """The attention mask `config`'s attention implementation expects, hiding everything past each length."""
    # deferred: transformers takes seconds to import; only a pass through the layers needs it
    from transformers.masking_utils import create_bidirectional_mask

    real = length_mask(lengths.to(hidden.device), hidden.shape[1]).long()
    return create_bidirectional_mask(config=config, inputs_embeds=hidden, attention_mask=real)


def training_attention(device):
    """The context the layers run in on `device`: while gradients are recorded on a CUDA GPU with torch's
    deterministic algorithms on (every lesson run has them), SDPA's math kernel, whose backward pass is
    plain matrix products; else nothing (torch's own choice).

    Why: with a padding mask, torch picks its memory-efficient attention kernel on a GPU, whose backward
    pass adds gradients in a varying order, so two runs would differ and torch warns about it in the
    notebook's output. The math kernel needs more memory (the [batch, heads, time, time] attention
    weights are kept for the backward pass) and gives the same numbers every run. Without gradients
    (the frozen layers, evaluation) the fast kernels are deterministic and stay."""
    if torch.device(device).type == "cuda" and torch.is_grad_enabled() and torch.are_deterministic_algorithms_enabled():
        return sdpa_kernel(SDPBackend.MATH)
    return contextlib.nullcontext()


def run_layers(layers, config, hidden: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """`hidden` [batch, time, hidden] through `layers` in turn, padding masked; the same shape back."""
    mask = _attention_mask(config, hidden, lengths)
    with training_attention(hidden.device):
        for layer in layers:
            output = layer(hidden, mask)
            hidden = output[0] if isinstance(output, tuple) else output   # older transformers return tuples
    return hidden


def lower_layers(model: nn.Module, ids: torch.Tensor, lengths: torch.Tensor, layer: int) -> torch.Tensor:
    """The encoder's hidden states after its first `layer` layers (0: the embeddings alone), for padded
    WordPiece ids [batch, time] with `lengths` [batch]: float [batch, time, hidden]. Layer n (all of them)
    is the encoder's `last_hidden_state`; rows past a review's length are padding."""
    layers = transformer_layers(model)
    if not 0 <= layer <= len(layers):
        raise ValueError(f"layer must be from 0 to {len(layers)}, not {layer}")
    return run_layers(layers[:layer], model.config, model.embeddings(input_ids=ids), lengths)


def predict_sentiment(model: nn.Module, tokenizer, texts: str | Sequence[str], max_length: int,
                      device="cpu", head_tokens: int | None = None) -> np.ndarray:
    """P(positive) for raw text(s) through a whole model on WordPiece ids (`BERTGRUSentiment`, appendix C's
    `FineTunedSentiment`): [CLS]/[SEP], cut to `max_length` (head and tail with `head_tokens`, see
    `tokenize_texts`), the model, sigmoid. float [n], or one value for a single string."""
    single = isinstance(texts, str)
    ids = tokenize_texts(tokenizer, [texts] if single else list(texts), max_length, desc="predict",
                         head_tokens=head_tokens)
    probs = probabilities(model, *pad_ids(ids, tokenizer.pad_token_id or 0), device)
    return probs[0] if single else probs
