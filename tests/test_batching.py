"""helpers.batching: datasets, length-bucketed batches and padding."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.batching import BucketBatchSampler, PadCollate, SequenceDataset, make_loader

PAD = 1


@pytest.fixture(scope="module")
def lengths() -> np.ndarray:
    """Review-like lengths: long-tailed, 5 to ~2,000 tokens."""
    return np.clip(np.random.default_rng(0).lognormal(5.3, 0.7, size=3000).astype(int), 5, None)


def padding_share(batches, lengths) -> float:
    padded = sum(len(b) * lengths[b].max() for b in batches)
    return 1 - sum(lengths[b].sum() for b in batches) / padded


# ---------------------------------------------------------------------------- SequenceDataset

def test_sequence_dataset_items():
    dataset = SequenceDataset.from_lists([[5, 6, 7], [8], [9, 10]], [1, 0, 1])
    assert len(dataset) == 3 and dataset.lengths.tolist() == [3, 1, 2]
    ids, label = dataset[0]
    assert ids.tolist() == [5, 6, 7] and ids.dtype == torch.int64 and label.item() == 1
    assert dataset[2][0].tolist() == [9, 10] and dataset[1][1].item() == 0


def test_sequence_dataset_from_encoded_corpus(imdb_corpus, imdb_fixture):
    from helpers.text import Vocab

    vocab = Vocab.from_counts(imdb_corpus.counts(), max_size=500)
    ids, offsets = imdb_corpus.encode(vocab)
    dataset = SequenceDataset(ids, offsets, imdb_fixture["train"].labels)
    assert len(dataset) == len(imdb_fixture["train"])
    assert dataset[7][0].tolist() == vocab.lookup_indices(imdb_corpus.tokens(7))
    assert dataset[7][1].item() == imdb_fixture["train"].labels[7]


def test_sequence_dataset_label_count_mismatch():
    with pytest.raises(ValueError, match="2 sequences but 3 labels"):
        SequenceDataset(np.arange(5), [0, 2, 5], [0, 1, 1])


# ---------------------------------------------------------------------------- BucketBatchSampler

def test_bucket_sampler_covers_every_index_once(lengths):
    sampler = BucketBatchSampler(lengths, batch_size=64)
    for _ in range(2):
        batches = list(sampler)
        assert len(batches) == len(sampler) == -(-len(lengths) // 64)
        flat = [i for batch in batches for i in batch]
        assert sorted(flat) == list(range(len(lengths)))
        assert all(1 <= len(batch) <= 64 for batch in batches)


def test_bucket_sampler_drop_last():
    sampler = BucketBatchSampler(np.arange(1, 101), batch_size=30, drop_last=True)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 3 and all(len(b) == 30 for b in batches)


def test_bucket_batches_pad_much_less_than_random(lengths):
    bucketed = [np.array(b) for b in BucketBatchSampler(lengths, batch_size=64, seed=1)]
    order = np.random.default_rng(1).permutation(len(lengths))
    random_batches = [order[i:i + 64] for i in range(0, len(order), 64)]
    bucket_share, random_share = padding_share(bucketed, lengths), padding_share(random_batches, lengths)
    assert random_share > 0.4
    assert bucket_share < 0.2 * random_share
    # each batch is nearly length-homogeneous
    spreads = [lengths[b].max() / lengths[b].min() for b in bucketed if len(b) == 64]
    assert np.median(spreads) < 1.1


def test_bucket_sampler_epochs_and_seeds(lengths):
    sampler = BucketBatchSampler(lengths, batch_size=32, seed=5)
    epoch0, epoch1 = list(sampler), list(sampler)
    assert epoch0 != epoch1
    assert sorted(map(tuple, epoch0)) != sorted(map(tuple, epoch1))  # different batches, not just reordered
    again = BucketBatchSampler(lengths, batch_size=32, seed=5)
    assert list(again) == epoch0 and list(again) == epoch1
    assert list(BucketBatchSampler(lengths, batch_size=32, seed=6)) != epoch0


def test_bucket_sampler_batch_order_is_shuffled(lengths):
    """Batches are not served shortest first: their order is random."""
    batches = list(BucketBatchSampler(lengths, batch_size=32, seed=2))
    means = [lengths[b].mean() for b in batches]
    assert means != sorted(means) and means != sorted(means, reverse=True)


def test_eval_sampler_is_sorted_and_deterministic(lengths):
    sampler = BucketBatchSampler(lengths, batch_size=50, shuffle=False)
    batches = list(sampler)
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(len(lengths)))
    assert np.all(np.diff(lengths[flat]) >= 0)
    assert list(sampler) == batches


def test_bucket_sampler_rejects_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        BucketBatchSampler([1, 2], batch_size=0)


# ---------------------------------------------------------------------------- PadCollate

BATCH = [(torch.tensor([5, 6]), torch.tensor(0)), (torch.tensor([7, 8, 9, 10]), torch.tensor(1)),
         (torch.tensor([11]), torch.tensor(1))]


def test_pad_collate_time_first():
    ids, lengths, labels = PadCollate(pad_index=PAD, batch_first=False)(BATCH)
    assert ids.shape == (4, 3)  # [time, batch]
    assert lengths.tolist() == [4, 2, 1] and lengths.dtype == torch.int64 and lengths.device.type == "cpu"
    assert labels.tolist() == [1, 0, 1] and labels.dtype == torch.int64
    assert ids[:, 0].tolist() == [7, 8, 9, 10]
    assert ids[:, 1].tolist() == [5, 6, PAD, PAD]
    assert ids[:, 2].tolist() == [11, PAD, PAD, PAD]
    assert ids.is_contiguous()


def test_pad_collate_batch_first_by_default():
    ids, lengths, labels = PadCollate(pad_index=0)(BATCH)
    assert ids.shape == (3, 4)
    assert ids.tolist() == [[7, 8, 9, 10], [5, 6, 0, 0], [11, 0, 0, 0]]


def test_pad_collate_max_length():
    ids, lengths, _ = PadCollate(pad_index=PAD, batch_first=True, max_length=3)(BATCH)
    assert ids.shape == (3, 3) and lengths.tolist() == [3, 2, 1]
    assert ids[0].tolist() == [7, 8, 9]


def test_pad_collate_min_length_pads_a_one_word_review():
    ids, lengths, _ = PadCollate(pad_index=PAD, batch_first=True, min_length=5)([(torch.tensor([42]), 1)])
    assert ids.tolist() == [[42, PAD, PAD, PAD, PAD]]
    assert lengths.tolist() == [1]


def test_pad_collate_works_with_pack_padded_sequence():
    ids, lengths, _ = PadCollate(pad_index=PAD, batch_first=False)(BATCH)
    embedded = torch.nn.Embedding(20, 3, padding_idx=PAD)(ids)
    packed = torch.nn.utils.rnn.pack_padded_sequence(embedded, lengths)  # needs sorted CPU int64 lengths
    assert packed.data.shape == (7, 3)


# ---------------------------------------------------------------------------- make_loader

def test_make_loader_bucketed_and_plain():
    sequences = [[2 + i] * (1 + i % 17) for i in range(200)]
    dataset = SequenceDataset.from_lists(sequences, [i % 2 for i in range(200)])
    seen = []
    for ids, lengths, labels in make_loader(dataset, 32, PadCollate(PAD), seed=3):
        assert ids.shape[0] == lengths.shape[0] == labels.shape[0] <= 32
        assert ids.shape[1] == lengths.max()
        seen += [row[0].item() - 2 for row in ids]
    assert sorted(seen) == list(range(200))
    plain = list(make_loader(dataset, 50, PadCollate(PAD, batch_first=False), shuffle=False, bucket=False))
    assert len(plain) == 4 and plain[0][0].shape[1] == 50  # time first
    first_batch_ids = sorted(int(col[0]) - 2 for col in plain[0][0].t())
    assert first_batch_ids == list(range(50))


def test_pad_collate_for_an_encoding_pads_as_the_encoding_does():
    from helpers.encoding import TextEncoding
    from helpers.text import Tokenizer, Vocab

    vocab = Vocab(["<unk>", "x", "<pad>", *(f"t{i}" for i in range(3, 12))])   # <pad> is 2 here
    collate = PadCollate.for_encoding(TextEncoding(Tokenizer(), vocab, min_length=5, batch_first=False), max_length=3)
    assert (collate.pad_index, collate.min_length, collate.batch_first, collate.max_length) == (2, 5, False, 3)
    ids, lengths, _ = collate(BATCH)
    assert ids.shape == (5, 3) and lengths.tolist() == [3, 2, 1]
    assert ids[:, 0].tolist() == [7, 8, 9, 2, 2]
