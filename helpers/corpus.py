"""Tokenized text stored as flat numpy arrays, tokenized in parallel and cached on disk.

A `TokenizedCorpus` keeps every distinct token once (`words`) and each document
as a run of word ids in one int32 array (`ids`, cut by `offsets`). That makes
counting (`np.bincount`), numericalizing (one fancy-indexing step), subsetting
and saving fast, and a reload from the cache takes well under a second.
"""
from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .progress import progress
from .text import Tokenizer, Vocab


@dataclass
class TokenizedCorpus:
    """`words`: distinct tokens; `ids`: int32 [total tokens] into `words`; `offsets`: int64 [n_docs + 1]."""

    words: list[str]
    ids: np.ndarray
    offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def lengths(self) -> np.ndarray:
        """Tokens per document, int64 [n_docs]."""
        return np.diff(self.offsets)

    def tokens(self, index: int) -> list[str]:
        """The token strings of one document."""
        return [self.words[i] for i in self.ids[self.offsets[index]:self.offsets[index + 1]]]

    def __iter__(self):
        return (self.tokens(i) for i in range(len(self)))

    def counts(self) -> dict[str, int]:
        """How often each token occurs over all documents."""
        counts = np.bincount(self.ids, minlength=len(self.words))
        return {self.words[i]: int(counts[i]) for i in np.flatnonzero(counts)}

    def subset(self, indices: Sequence[int] | np.ndarray) -> "TokenizedCorpus":
        """The documents at `indices`, in that order (word list shared)."""
        indices = np.asarray(indices, dtype=np.int64)
        lengths = self.lengths()[indices]
        offsets = np.zeros(len(indices) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        starts = self.offsets[indices]
        # position of every kept token in the old ids array, built without a Python loop
        positions = np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1])
        return TokenizedCorpus(self.words, self.ids[positions], offsets)

    def encode(self, vocab: Vocab) -> tuple[np.ndarray, np.ndarray]:
        """Numericalize: (vocab ids int64 [total tokens], offsets) with unknown words -> `vocab.default_index`."""
        default = -1 if vocab.default_index is None else vocab.default_index
        table = np.array([vocab.stoi.get(word, default) for word in self.words], dtype=np.int64)
        encoded = table[self.ids]
        if (encoded < 0).any():
            raise KeyError("corpus has tokens missing from a vocabulary without a default index")
        return encoded, self.offsets

    def with_bigrams(self) -> "TokenizedCorpus":
        """Each document followed by its distinct adjacent pairs ("a b"), like `text.add_bigrams`."""
        n_docs = len(self)
        doc_of_token = np.repeat(np.arange(n_docs), self.lengths())
        same_doc = doc_of_token[:-1] == doc_of_token[1:]
        first, second, doc = self.ids[:-1][same_doc], self.ids[1:][same_doc], doc_of_token[:-1][same_doc]
        pair_key = first.astype(np.int64) * len(self.words) + second
        # first occurrence of each (doc, pair): np.unique keeps the lowest position
        _, keep = np.unique(doc * (len(self.words) ** 2) + pair_key, return_index=True)
        keep.sort()
        pair_key, doc = pair_key[keep], doc[keep]
        unique_pairs, pair_ids = np.unique(pair_key, return_inverse=True)
        n_words = len(self.words)
        words = self.words + [f"{self.words[k // n_words]} {self.words[k % n_words]}" for k in unique_pairs]
        pair_counts = np.bincount(doc, minlength=n_docs)
        lengths = self.lengths() + pair_counts
        offsets = np.zeros(n_docs + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        ids = np.empty(offsets[-1], dtype=np.int32)
        token_pos = np.repeat(offsets[:-1] - self.offsets[:-1], self.lengths()) + np.arange(len(self.ids))
        ids[token_pos] = self.ids
        pair_starts = offsets[:-1] + self.lengths()
        pair_rank = np.arange(len(doc)) - np.repeat(np.cumsum(pair_counts) - pair_counts, pair_counts)
        ids[pair_starts[doc] + pair_rank] = pair_ids + n_words
        return TokenizedCorpus(words, ids, offsets)

    def save(self, folder: Path) -> None:
        """Write into `folder` (the caller makes it atomic)."""
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "ids.npy", self.ids)
        np.save(folder / "offsets.npy", self.offsets)
        (folder / "words.json").write_text(json.dumps(self.words, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> "TokenizedCorpus":
        words = json.loads((folder / "words.json").read_text(encoding="utf-8"))
        return cls(words, np.load(folder / "ids.npy"), np.load(folder / "offsets.npy"))


def _tokenize_chunk(args: tuple[Tokenizer, list[str]]) -> tuple[list[str], np.ndarray, np.ndarray]:
    tokenizer, texts = args
    index: dict[str, int] = {}
    ids, lengths = [], []
    for text in texts:
        tokens = tokenizer(text)
        ids.extend(index.setdefault(token, len(index)) for token in tokens)
        lengths.append(len(tokens))
    return list(index), np.asarray(ids, dtype=np.int32), np.asarray(lengths, dtype=np.int64)


def tokenize_corpus(texts: Sequence[str], tokenizer: Tokenizer, workers: int | None = None,
                    chunk_size: int = 500, desc: str = "tokenizing") -> TokenizedCorpus:
    """Tokenize `texts` with `workers` processes (default: all cores) into one corpus.

    Each worker returns its own small word list and ids; they are merged here, so
    only integers and distinct words cross process boundaries.
    """
    workers = workers or os.cpu_count() or 1
    chunks = [(tokenizer, list(texts[i:i + chunk_size])) for i in range(0, len(texts), chunk_size)]
    words: dict[str, int] = {}
    all_ids, all_lengths = [], []
    bar = progress(total=len(texts), desc=desc, unit="doc")

    def merge(result):
        local_words, ids, lengths = result
        remap = np.array([words.setdefault(word, len(words)) for word in local_words], dtype=np.int32)
        all_ids.append(remap[ids] if len(ids) else ids)
        all_lengths.append(lengths)
        bar.update(len(lengths))

    if workers > 1 and len(chunks) > 1:
        # fork is fast and safe here: the workers only run spaCy's tokenizer
        context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
        with context.Pool(min(workers, len(chunks))) as pool:
            for result in pool.imap(_tokenize_chunk, chunks):
                merge(result)
    else:
        for chunk in chunks:
            merge(_tokenize_chunk(chunk))
    bar.close()
    lengths = np.concatenate(all_lengths) if all_lengths else np.zeros(0, dtype=np.int64)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    ids = np.concatenate(all_ids) if all_ids else np.zeros(0, dtype=np.int32)
    return TokenizedCorpus(list(words), ids, offsets)


def map_corpus(corpus: TokenizedCorpus, function: Callable[[list[str]], list[str]]) -> TokenizedCorpus:
    """Apply a token-list function to every document (a slow, general path; see `with_bigrams`)."""
    words: dict[str, int] = {}
    ids, lengths = [], []
    for tokens in corpus:
        new = function(tokens)
        ids.extend(words.setdefault(token, len(words)) for token in new)
        lengths.append(len(new))
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return TokenizedCorpus(list(words), np.asarray(ids, dtype=np.int32), offsets)
