"""How a text becomes model input: one `TextEncoding`, the same in training, export, parity check and serving.

    encoding = TextEncoding.build(tokenizer, train_data.tokens, max_size=25_000, bigrams=True)
    ids, lengths = encoding.encode(["A fine film"])       # what a model reads, as NumPy arrays
    loaders_for(splits, encoding, 64)                      # helpers.batching: the same ids in batches
    export_bundle(model, encoding, ...)                    # helpers.export: written into the bundle
    TextEncoding.from_bundle(folder)                       # the Lambda handler: read back, checked

An encoding holds the tokenizer, the vocabulary and the three settings that change a model's input:
`bigrams` (append each distinct adjacent pair, lesson 3's FastText), `min_length` (pad a batch to at
least this width: a CNN's widest filter) and `batch_first` (ids [batch, time]; False: [time, batch],
for lessons 1-2's RNNs). A bundle's `tokenizer.json` is `settings()`: the tokenizer's config plus
`bigrams` and `min_length` (bundles are batch-first; `batch_first` is written only when False).

Standard library, NumPy, `helpers.text`, `helpers.bundle` and `helpers.files` only (no torch): the
Lambda package holds this file. A corpus (`helpers.corpus.TokenizedCorpus`) is used through its
methods (`with_bigrams`, `encode`, `counts`), not imported.
"""
from __future__ import annotations

import dataclasses
import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .bundle import TOKENIZER_FILE, VOCAB_FILE, BundleError, check_servable, read_checked_file, read_meta
from .files import atomic_path
from .text import Tokenizer, Vocab, add_bigrams, pad_sequences


@dataclass(frozen=True, eq=False)
class TextEncoding:
    """How a text becomes model input. Two encodings are equal when their `settings()` and
    vocabularies are (the tokenizer object itself, with its spaCy cache, does not count).

    `tokenizer`: a `helpers.text.Tokenizer`; `vocab`: a `helpers.text.Vocab` with `<pad>`;
    `bigrams`: append each distinct adjacent pair (`add_bigrams`); `min_length`: pad to at least
    this many time steps (>= 1); `batch_first`: ids [batch, time], else [time, batch].
    """

    tokenizer: Tokenizer
    vocab: Vocab
    bigrams: bool = False
    min_length: int = 1
    batch_first: bool = True

    def __post_init__(self):
        for name in ("bigrams", "batch_first"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if not isinstance(self.min_length, int) or isinstance(self.min_length, bool) or self.min_length < 1:
            raise ValueError(f"min_length must be an integer of at least 1, got {self.min_length!r}")
        if self.vocab.pad_index is None:
            raise ValueError("the vocabulary has no '<pad>' token, which pads batches")

    @classmethod
    def build(cls, tokenizer: Tokenizer, corpus, *, max_size: int | None = None, min_freq: int = 1,
              bigrams: bool = False, min_length: int = 1, batch_first: bool = True) -> "TextEncoding":
        """The encoding whose vocabulary counts `corpus` (a `TokenizedCorpus`, or a list of token lists; without
        bigrams: they are added here when `bigrams`): `Vocab.from_counts` with `max_size` and `min_freq`."""
        if hasattr(corpus, "counts"):
            counts = (corpus.with_bigrams() if bigrams else corpus).counts()
        else:   # plain token lists (a test, a few sentences typed in a notebook)
            counts = Counter(token for tokens in corpus for token in (add_bigrams(tokens) if bigrams else tokens))
        vocab = Vocab.from_counts(counts, max_size=max_size, min_freq=min_freq)
        return cls(tokenizer, vocab, bigrams=bigrams, min_length=min_length, batch_first=batch_first)

    def with_vocab(self, vocab: Vocab) -> "TextEncoding":
        """The same settings with another vocabulary (lesson 5's vocabulary of the training and validation texts)."""
        return dataclasses.replace(self, vocab=vocab)

    def tokens(self, text: str) -> list[str]:
        """The tokens of one text as the model sees them (bigrams appended when `bigrams`)."""
        return self._with_bigrams(self.tokenizer(text))

    def _with_bigrams(self, tokens: Sequence[str]) -> Sequence[str]:
        """`tokens` (one text's, without bigrams) with their bigrams appended when `bigrams`."""
        return add_bigrams(tokens) if self.bigrams else tokens

    def prepare(self, corpus):
        """`corpus` (tokenized, without bigrams) as this encoding reads it: with its bigrams when `bigrams`."""
        return corpus.with_bigrams() if self.bigrams else corpus

    def numericalize(self, corpus) -> tuple[np.ndarray, np.ndarray]:
        """A tokenized corpus -> (ids int64 [total tokens], offsets int64 [n + 1]): document i is
        ids[offsets[i]:offsets[i + 1]], unknown words the vocabulary's default index."""
        return self.prepare(corpus).encode(self.vocab)

    def encode(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Raw strings -> (ids int64 [batch, time] padded at the end with `<pad>` ([time, batch] when not
        `batch_first`), lengths int64 [batch]). `time` is the longest text, at least `min_length`; a text
        with no token becomes a single `<pad>`, so every length is at least 1."""
        return self.encode_tokens([self.tokenizer(text) for text in texts])

    def encode_tokens(self, token_lists: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
        """`encode` for texts already split into tokens (without bigrams: added here when `bigrams`), e.g. a
        text with one token dropped (`helpers.occlusion`). Same outputs as `encode`."""
        sequences = [self.vocab.lookup_indices(self._with_bigrams(tokens)) or [self.vocab.pad_index]
                     for tokens in token_lists]
        ids, lengths = pad_sequences(sequences, self.vocab.pad_index, self.min_length)
        return (ids if self.batch_first else np.ascontiguousarray(ids.T)), lengths

    def settings(self) -> dict:
        """The tokenizer's config plus `bigrams` and `min_length` (and `batch_first` only when False): a
        bundle's tokenizer.json and meta.json's "tokenizer", key for key."""
        settings = {**self.tokenizer.config, "bigrams": self.bigrams, "min_length": self.min_length}
        if not self.batch_first:
            settings["batch_first"] = False
        return settings

    @classmethod
    def from_settings(cls, settings: dict, vocab: Vocab) -> "TextEncoding":
        """The encoding `settings` (as `settings()` gives them) describe, with `vocab`."""
        return cls(Tokenizer.from_config(settings), vocab, bigrams=settings["bigrams"],
                   min_length=settings["min_length"], batch_first=settings.get("batch_first", True))

    def save(self, folder: str | os.PathLike) -> list[str]:
        """Write vocab.json and tokenizer.json into `folder` (made if missing), each atomically; return their
        names. The bytes are a bundle's: the same encoding always writes the same files."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.vocab.save(folder / VOCAB_FILE)
        with atomic_path(folder / TOKENIZER_FILE) as tmp:
            Path(tmp).write_text(json.dumps(self.settings(), indent=2) + "\n", encoding="utf-8")
        return [VOCAB_FILE, TOKENIZER_FILE]

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "TextEncoding":
        """The encoding `save` wrote into `folder` (one's own checkpoint: nothing is checked; for a
        bundle someone else made use `from_bundle`)."""
        folder = Path(folder)
        settings = json.loads((folder / TOKENIZER_FILE).read_text(encoding="utf-8"))
        return cls.from_settings(settings, Vocab.load(folder / VOCAB_FILE))

    @classmethod
    def from_bundle(cls, bundle: str | os.PathLike, meta: dict | None = None) -> "TextEncoding":
        """The encoding of the bundle folder `bundle`, read as the Lambda handler reads it: meta.json through
        `helpers.bundle.read_meta` (or `meta`, already read so), the bundle's meaning through `check_servable`
        (tokenizer.json must say what meta.json says), vocab.json's bytes checked against their sha256, a
        vocabulary with `<pad>`, a default token and meta.json's `vocab_size`, ids [batch, time].
        Every refusal is a `helpers.bundle.BundleError` naming the bundle and the problem."""
        meta = read_meta(bundle) if meta is None else meta
        tokenizer_file = read_checked_file(bundle, meta, TOKENIZER_FILE) if TOKENIZER_FILE in meta["files"] else None
        check_servable(meta, bundle, tokenizer_file)
        settings = meta["tokenizer"]
        try:
            vocab = Vocab.from_dict(json.loads(read_checked_file(bundle, meta, VOCAB_FILE)))
        except BundleError:
            raise
        except (ValueError, KeyError, TypeError, RecursionError) as err:
            raise BundleError(f"bundle {bundle}: {VOCAB_FILE} is not a vocabulary ({type(err).__name__}: "
                              f"{str(err)[:200]})") from None
        if vocab.pad_index is None or vocab.default_index is None:
            raise BundleError(f"bundle {bundle}: {VOCAB_FILE} needs '<pad>' and a default token for unknown words "
                              f"(pad index {vocab.pad_index}, default index {vocab.default_index})")
        if meta.get("vocab_size", len(vocab)) != len(vocab):
            raise BundleError(f"bundle {bundle}: meta.json's vocab_size is {meta['vocab_size']!r}, "
                              f"{VOCAB_FILE} has {len(vocab):,} tokens")
        return cls.from_settings(settings, vocab)

    def differences(self, other: "TextEncoding") -> list[str]:
        """The names of the settings in which `other` differs (plus "vocab" when the vocabularies do), sorted."""
        mine, theirs = self.settings(), other.settings()
        different = sorted(key for key in {*mine, *theirs} if mine.get(key) != theirs.get(key))
        return different + (["vocab"] if self.vocab.to_dict() != other.vocab.to_dict() else [])

    def __eq__(self, other) -> bool:
        if not isinstance(other, TextEncoding):
            return NotImplemented
        return not self.differences(other)

    __hash__ = None   # equal by value, and the vocabulary is mutable

    def __repr__(self) -> str:
        layout = "[batch, time]" if self.batch_first else "[time, batch]"
        return (f"TextEncoding(vocab size {len(self.vocab):,}, bigrams={self.bigrams}, "
                f"min_length={self.min_length}, ids {layout})")
