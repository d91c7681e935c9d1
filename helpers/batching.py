"""Batches of similar-length sequences: the replacement for torchtext's BucketIterator.

Padding a 40-token review to the length of a 900-token one wastes compute; putting
reviews of similar length together (sorted within large random pools) and shuffling
the order of the batches keeps training random while padding little.

Token ids (lessons 1-5): `SequenceDataset`, `PadCollate`, `make_loader`, `loaders_for` (the ids a
`helpers.encoding.TextEncoding` gives, in batches).
Cached encoder features (lesson 6, `helpers.features`): `FeatureDataset`,
`FeatureCollate`, `feature_loader`, `feature_loaders`. Every loader's order comes from
its `seed` (the sampler's, or the DataLoader's generator), so a run repeats.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Sampler

from .encoding import TextEncoding


class SequenceDataset(Dataset):
    """Numericalized documents and labels. `ids`: int64 [total tokens], `offsets`: [n + 1],
    `labels`: [n]. Item i is (LongTensor [length_i], label)."""

    def __init__(self, ids: np.ndarray, offsets: np.ndarray, labels: Sequence[int] | np.ndarray):
        self.ids = torch.as_tensor(np.asarray(ids, dtype=np.int64))
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.labels = torch.as_tensor(np.asarray(labels, dtype=np.int64))
        if len(self.offsets) - 1 != len(self.labels):
            raise ValueError(f"{len(self.offsets) - 1} sequences but {len(self.labels)} labels")

    @classmethod
    def from_lists(cls, sequences: Sequence[Sequence[int]], labels) -> "SequenceDataset":
        offsets = np.zeros(len(sequences) + 1, dtype=np.int64)
        np.cumsum([len(s) for s in sequences], out=offsets[1:])
        ids = np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences]) if sequences else np.zeros(0)
        return cls(ids, offsets, labels)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.ids[self.offsets[index]:self.offsets[index + 1]], self.labels[index]


class BucketBatchSampler(Sampler[list[int]]):
    """Yields lists of indices whose sequences have similar lengths.

    With `shuffle`, indices are shuffled, cut into pools of `batch_size * pool_batches`,
    sorted by length inside each pool, cut into batches, and the batches are shuffled;
    each pass (epoch) uses a new permutation drawn from `seed` and the epoch number.
    Without `shuffle` (evaluation) the whole set is sorted by length, deterministically.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, shuffle: bool = True, seed: int = 0,
                 pool_batches: int = 100, drop_last: bool = False):
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.lengths = np.asarray(lengths)
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.pool_size = batch_size * pool_batches
        self.drop_last = drop_last
        self.epoch = 0

    def __len__(self) -> int:
        n = len(self.lengths)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        if not self.shuffle:
            order = np.argsort(self.lengths, kind="stable")
            batches = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        else:
            rng = np.random.default_rng([self.seed, self.epoch])
            self.epoch += 1
            order = rng.permutation(len(self.lengths))
            batches = []
            for start in range(0, len(order), self.pool_size):
                pool = order[start:start + self.pool_size]
                pool = pool[np.argsort(self.lengths[pool], kind="stable")]
                batches += [pool[i:i + self.batch_size] for i in range(0, len(pool), self.batch_size)]
            batches = [batches[i] for i in rng.permutation(len(batches))]
        for batch in batches:
            if self.drop_last and len(batch) < self.batch_size:
                continue
            yield batch.tolist()


class PadCollate:
    """Turns a list of (sequence, label) into (padded ids, lengths, labels).

    Returns ids LongTensor [batch, time] (`batch_first`) or [time, batch], lengths
    int64 [batch] on the CPU (what `pack_padded_sequence` wants, also on a GPU), and
    labels int64 [batch]. Sequences are sorted longest first; they are cut at
    `max_length` and padded up to at least `min_length` (a CNN needs at least its
    widest filter). `for_encoding` takes the padding, width and layout from a `TextEncoding`.
    """

    def __init__(self, pad_index: int, batch_first: bool = True, max_length: int | None = None,
                 min_length: int = 1):
        self.pad_index, self.batch_first = pad_index, batch_first
        self.max_length, self.min_length = max_length, min_length

    @classmethod
    def for_encoding(cls, encoding: TextEncoding, max_length: int | None = None) -> "PadCollate":
        """The collate that pads as `encoding.encode` does: its `<pad>`, `min_length` and layout."""
        return cls(encoding.vocab.pad_index, batch_first=encoding.batch_first, max_length=max_length,
                   min_length=encoding.min_length)

    def __call__(self, batch):
        sequences = [seq[:self.max_length] if self.max_length else seq for seq, _ in batch]
        lengths = torch.tensor([max(len(s), 1) for s in sequences], dtype=torch.int64)
        order = torch.argsort(lengths, descending=True, stable=True)
        width = max(int(lengths.max()), self.min_length)
        padded = torch.full((len(batch), width), self.pad_index, dtype=torch.int64)
        for row, index in enumerate(order.tolist()):
            padded[row, :len(sequences[index])] = sequences[index]
        labels = torch.stack([torch.as_tensor(batch[i][1]) for i in order.tolist()])
        lengths = lengths[order]
        return (padded if self.batch_first else padded.t().contiguous()), lengths, labels


def make_loader(dataset: SequenceDataset, batch_size: int, collate, *, shuffle: bool = True, seed: int = 0,
                bucket: bool = True) -> DataLoader:
    """A DataLoader yielding `collate`'s batches (a `PadCollate`: ids, lengths, labels), bucketed by length.

    `bucket=False` gives plain random (or in-order) batches, for comparison.
    """
    if bucket:
        return bucket_loader(dataset, dataset.lengths, batch_size, collate, shuffle, seed)
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, collate_fn=collate, generator=generator)


def bucket_loader(dataset: Dataset, lengths: Sequence[int], batch_size: int, collate, shuffle: bool,
                  seed: int) -> DataLoader:
    """A DataLoader over `dataset` in `BucketBatchSampler` batches of `lengths`, collated by `collate`.

    No worker processes: the batch order comes from `seed` alone. (Each pass still draws
    one number from torch's global generator for worker seeds, as every DataLoader without
    a generator does; `make_reproducible` seeds that, and the reference runs depend on it.)
    """
    sampler = BucketBatchSampler(lengths, batch_size, shuffle=shuffle, seed=seed)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate)


def loaders_for(datasets: dict, encoding: TextEncoding, batch_size: int, *, seed: int = 0,
                max_length: int | None = None) -> dict[str, DataLoader]:
    """One loader per split of tokenized datasets (anything with `.tokens` and `.labels`; tokens without
    bigrams: `encoding` adds them), numericalized and padded by `encoding`: "train" is shuffled by
    buckets, the others are sorted by length for fast evaluation."""
    collate = PadCollate.for_encoding(encoding, max_length)
    return {name: make_loader(SequenceDataset(*encoding.numericalize(data.tokens), data.labels), batch_size,
                              collate, shuffle=(name == "train"), seed=seed)
            for name, data in datasets.items()}


class FeatureDataset(Dataset):
    """Item i is (float32 features [length_i, hidden] read from `store`, label): `store` is a
    `helpers.features.FeatureStore` (anything with `len`, `store[i]` and `.lengths`)."""

    def __init__(self, store, labels):
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


def feature_loader(stores: Sequence, labels: Sequence, batch_size: int, shuffle: bool = False,
                   seed: int = 0) -> DataLoader:
    """One loader over one or more feature stores taken together (e.g. train + validation),
    with `labels[i]` the labels of `stores[i]`, batched by length: shuffled in pools with
    `shuffle` (training), else sorted by length."""
    if len(stores) != len(labels) or not stores:
        raise ValueError(f"one labels array per store: {len(stores)} store(s), {len(labels)} labels array(s)")
    parts = [FeatureDataset(store, part_labels) for store, part_labels in zip(stores, labels)]
    dataset = parts[0] if len(parts) == 1 else ConcatDataset(parts)
    lengths = np.concatenate([part.lengths for part in parts])
    return bucket_loader(dataset, lengths, batch_size, FeatureCollate(), shuffle, seed)


def feature_loaders(stores: dict, labels: dict, batch_size: int, seed: int = 0) -> dict[str, DataLoader]:
    """One `feature_loader` per split: "train" shuffled, the others sorted by length."""
    return {name: feature_loader([store], [labels[name]], batch_size, shuffle=(name == "train"), seed=seed)
            for name, store in stores.items()}
