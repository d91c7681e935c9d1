"""Solutions to lesson 2's coding exercises (notebooks/02_upgraded_sentiment.ipynb, "Exercises"), checked on the
small fixture reviews shipped with the course, so they cannot rot."""
import pytest
import torch
from torch import nn

from helpers.encoding import TextEncoding
from helpers.models import BiLSTM, count_parameters
from helpers.text import Vocab


class TutorialRNN(nn.Module):
    """Lesson 2's copy of the tutorial's model: nn.LSTM on a packed sequence, final states -> linear."""

    def __init__(self, vocab_size, embedding_dim, hidden_dim, output_dim, n_layers, bidirectional, dropout, pad_idx):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_idx)
        self.rnn = nn.LSTM(embedding_dim, hidden_dim, num_layers=n_layers, bidirectional=bidirectional,
                           dropout=dropout)
        self.fc = nn.Linear(hidden_dim * 2, output_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, text, text_lengths):
        embedded = self.dropout(self.embedding(text))
        packed = nn.utils.rnn.pack_padded_sequence(embedded, text_lengths.to("cpu"), enforce_sorted=False)
        _, (hidden, _) = self.rnn(packed)
        return self.fc(self.dropout(torch.cat((hidden[-2], hidden[-1]), dim=1)))


# ----------------------------------------------------------------- exercise 2: average over the review
def mean_over_length(output: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each review's outputs averaged over its own real steps: output [time, batch, features] (padding
    anywhere after lengths[b]), lengths int64 [batch] -> [batch, features]."""
    steps = torch.arange(output.shape[0], device=output.device)[:, None]            # [time, 1]
    real = (steps < lengths.to(output.device)[None, :]).unsqueeze(2)                  # [time, batch, 1]
    return (output * real).sum(dim=0) / lengths.to(output.device)[:, None]


class TutorialRNNMean(TutorialRNN):
    """The tutorial's model classifying the average of its outputs instead of the final states."""

    def forward(self, text, text_lengths):
        embedded = self.dropout(self.embedding(text))                                    # [time, batch, emb]
        packed = nn.utils.rnn.pack_padded_sequence(embedded, text_lengths.to("cpu"), enforce_sorted=False)
        packed_output, _ = self.rnn(packed)
        output, output_lengths = nn.utils.rnn.pad_packed_sequence(packed_output)         # [time, batch, hidden * 2]
        return self.fc(self.dropout(mean_over_length(output, output_lengths)))


@pytest.fixture(scope="module")
def reviews_and_encoding(imdb_fixture, tokenizer):
    """A short and a longer fixture review, and an encoding whose vocabulary comes from fixture training texts."""
    texts = imdb_fixture["train"].texts[:50]
    tokens = [tokenizer(text) for text in texts]
    vocab = Vocab.from_counts({token: 1 for review in tokens for token in review})
    by_length = sorted(range(len(texts)), key=lambda i: len(tokens[i]))
    return texts[by_length[0]], texts[by_length[-1]], TextEncoding(tokenizer, vocab, batch_first=False)


def test_mean_over_length_ignores_the_padding():
    output = torch.tensor([[1.0, 10.0], [3.0, 99.0], [5.0, 99.0]]).unsqueeze(2)          # [time 3, batch 2, 1]
    assert mean_over_length(output, torch.tensor([3, 1])).squeeze(1).tolist() == [3.0, 10.0]


def test_exercise_2_the_average_gives_the_same_logit_alone_and_in_a_batch(reviews_and_encoding):
    short, long, encoding = reviews_and_encoding
    torch.manual_seed(0)
    model = TutorialRNNMean(len(encoding.vocab), 16, 12, 1, 2, True, 0.5, encoding.vocab.pad_index).eval()
    ids, lengths = (torch.as_tensor(array) for array in encoding.encode([short]))
    alone = model(ids, lengths)[0]
    ids, lengths = (torch.as_tensor(array) for array in encoding.encode([long, short]))
    assert lengths[0] > lengths[1] + 20                                                  # really padded
    torch.testing.assert_close(model(ids, lengths)[1], alone, atol=1e-5, rtol=1e-5)
    # averaging the padding too (a plain mean over time) would not be the same
    with torch.no_grad():
        packed = nn.utils.rnn.pack_padded_sequence(model.embedding(ids), lengths, enforce_sorted=False)
        output, _ = nn.utils.rnn.pad_packed_sequence(model.rnn(packed)[0])
        assert (output[:, 1].mean(dim=0) - mean_over_length(output, lengths)[1]).abs().max() > 1e-3


def test_the_tutorials_model_is_the_lessons_model(reviews_and_encoding):
    """What the lesson's comparison cell checks, on fixture reviews: same weights, same logits."""
    short, long, encoding = reviews_and_encoding
    torch.manual_seed(0)
    ours = BiLSTM(len(encoding.vocab), 16, 12, 1, 2, True, 0.5, encoding.vocab.pad_index).eval()
    tutorial = TutorialRNN(len(encoding.vocab), 16, 12, 1, 2, True, 0.5, encoding.vocab.pad_index).eval()
    tutorial.load_state_dict({name.replace("rnn.rnn.", "rnn."): w for name, w in ours.state_dict().items()})
    ids, lengths = (torch.as_tensor(array) for array in encoding.encode([long, short]))
    torch.testing.assert_close(ours(ids, lengths), tutorial(ids, lengths), atol=1e-5, rtol=1e-4)


# ----------------------------------------------------------------- exercise 4: parameters, one or two directions
def lstm_model_parameters(vocab_size, embedding_dim, hidden_dim, n_layers, bidirectional) -> int:
    """BiLSTM's parameters by hand: embedding, 4 gates x (W_i, W_h, two biases) per layer and direction, linear."""
    directions = 2 if bidirectional else 1
    h, total = hidden_dim, vocab_size * embedding_dim
    for layer in range(n_layers):
        d_in = embedding_dim if layer == 0 else h * directions
        total += directions * 4 * (h * d_in + h * h + 2 * h)
    return total + (h * directions + 1)


@pytest.mark.parametrize("bidirectional", [True, False])
def test_exercise_4_parameters_by_hand(bidirectional):
    v, d, h = 25_002, 50, 256
    model = BiLSTM(v, d, h, 1, 2, bidirectional, 0.5, pad_index=1)
    assert count_parameters(model) == lstm_model_parameters(v, d, h, 2, bidirectional)
    if bidirectional:
        assert count_parameters(model) == 3_458_357          # the lesson's print with glove.6B.50d
