"""The lesson models: shapes, padding invariance, and PackedLSTM == nn.LSTM on packed input."""
import pytest
import torch
from torch import nn

from helpers.models import (CNN, BiLSTM, FastText, PackedGRU, PackedLSTM, SimpleRNN, count_parameters,
                            reverse_within_length)


def test_reverse_within_length_keeps_padding_last():
    x = torch.arange(5.0).reshape(5, 1, 1).repeat(1, 2, 1)  # two sequences 0..4
    out = reverse_within_length(x, torch.tensor([3, 5]))
    assert out[:, 0, 0].tolist() == [2, 1, 0, 3, 4]
    assert out[:, 1, 0].tolist() == [4, 3, 2, 1, 0]


@pytest.mark.parametrize("bidirectional,n_layers", [(True, 2), (False, 1), (True, 1)])
def test_packed_lstm_matches_packed_nn_lstm(bidirectional, n_layers):
    torch.manual_seed(0)
    ours = PackedLSTM(6, 8, n_layers, bidirectional, dropout=0.0)
    reference = ours.to_reference()
    assert sum(p.numel() for p in reference.parameters()) == sum(p.numel() for p in ours.parameters())
    x = torch.randn(7, 4, 6)
    lengths = torch.tensor([7, 3, 5, 1])
    _, (hidden, _) = reference(nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False))
    expected = torch.cat((hidden[-2], hidden[-1]), dim=1) if bidirectional else hidden[-1]
    torch.testing.assert_close(ours(x, lengths), expected, atol=1e-6, rtol=1e-5)
    # padding content must not matter
    x2 = x.clone()
    x2[5:, 1] = 99.0
    torch.testing.assert_close(ours(x2, lengths), expected, atol=1e-6, rtol=1e-5)


def _padded_batch(sequences, pad, min_length=1, batch_first=True):
    lengths = torch.tensor([len(s) for s in sequences])
    ids = torch.full((len(sequences), max(int(lengths.max()), min_length)), pad)
    for i, s in enumerate(sequences):
        ids[i, :len(s)] = torch.tensor(s)
    return (ids if batch_first else ids.t()), lengths


@pytest.mark.parametrize("make,batch_first,min_length", [
    (lambda: FastText(30, 8, 1, pad_index=1), True, 1),
    (lambda: CNN(30, 8, 4, [3, 4, 5], 6, 0.5, pad_index=1), True, 5),
    (lambda: BiLSTM(30, 8, 6, 1, 2, True, 0.5, pad_index=1), False, 1),
])
def test_scores_do_not_depend_on_batch_padding(make, batch_first, min_length):
    torch.manual_seed(0)
    model = make().eval()
    short, long = [5, 6, 7], [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
    alone = model(*_padded_batch([short], 1, min_length, batch_first))
    together = model(*_padded_batch([long, short], 1, min_length, batch_first))
    torch.testing.assert_close(alone[0], together[1], atol=1e-5, rtol=1e-5)


def test_cnn_handles_one_word_input_padded_to_widest_filter():
    model = CNN(30, 8, 4, [3, 4, 5], 1, 0.5, pad_index=1).eval()
    logits = model(*_padded_batch([[7]], 1, min_length=5))
    assert logits.shape == (1, 1) and torch.isfinite(logits).all()


def test_output_shapes_and_parameter_counts():
    rnn = SimpleRNN(100, 10, 12, 1)
    text = torch.randint(0, 100, (9, 3))
    assert rnn(text, torch.full((3,), 9)).shape == (3, 1)
    # embedding + RNN (ih, hh, two biases) + linear
    assert count_parameters(rnn) == 100 * 10 + (10 * 12 + 12 * 12 + 2 * 12) + (12 + 1)
    rnn.embedding.weight.requires_grad = False
    assert count_parameters(rnn) == count_parameters(rnn, trainable_only=False) - 1000


@pytest.mark.parametrize("cell,batch_first", [(PackedLSTM, False), (PackedGRU, True)])
def test_packed_and_padded_paths_give_the_same_states_and_gradients(cell, batch_first):
    """`pack=True` (what CUDA runs: `self.rnn` on a packed sequence) and `pack=False` (the CPU's padded
    path) are one computation on one set of weights."""
    torch.manual_seed(0)
    model = cell(6, 8, 2, True, dropout=0.0, batch_first=batch_first)
    x = torch.randn(4, 7, 6) if batch_first else torch.randn(7, 4, 6)
    lengths = torch.tensor([7, 3, 5, 1])
    results = []
    for pack in (True, False):
        model.pack = pack
        model.zero_grad()
        states = model(x, lengths)
        states.pow(2).sum().backward()
        results.append((states, {name: p.grad.clone() for name, p in model.named_parameters()}))
    (packed, packed_grads), (padded, padded_grads) = results
    torch.testing.assert_close(padded, packed, atol=1e-6, rtol=1e-5)
    assert packed_grads.keys() == padded_grads.keys() and len(packed_grads) == 16   # 2 layers x 2 directions x 4
    for name in packed_grads:
        torch.testing.assert_close(padded_grads[name], packed_grads[name], atol=1e-5, rtol=1e-4)


def test_on_a_cpu_the_default_is_the_padded_path_and_pack_true_packs(monkeypatch):
    calls = []
    pack = nn.utils.rnn.pack_padded_sequence
    monkeypatch.setattr(nn.utils.rnn, "pack_padded_sequence", lambda *a, **k: calls.append(1) or pack(*a, **k))
    model = PackedLSTM(6, 8, 1, True, dropout=0.0)
    x, lengths = torch.randn(5, 2, 6), torch.tensor([5, 2])
    model(x, lengths)
    assert calls == []                                   # pack=None on a CPU: padded
    model.pack = True
    model(x, lengths)
    assert calls == [1]


def test_dropout_between_layers_only_and_the_reference_is_a_copy():
    model = PackedLSTM(6, 8, 2, True, dropout=0.5)
    assert model.rnn.dropout == 0.5 and model.dropout.p == 0.5
    assert PackedLSTM(6, 8, 1, True, dropout=0.5).rnn.dropout == 0.0   # one layer: nothing between layers
    reference = model.to_reference()
    assert reference is not model.rnn
    for name, weight in model.rnn.named_parameters():
        assert torch.equal(getattr(reference, name), weight) and getattr(reference, name) is not weight
