"""Solutions to lesson 1's coding exercises (notebooks/01_simple_rnn.ipynb, "Exercises"), checked on the
small fixture reviews shipped with the course, so they cannot rot."""
import pytest
import torch
from torch import nn

from helpers.encoding import TextEncoding
from helpers.models import SimpleRNN, count_parameters
from helpers.text import Vocab


# ----------------------------------------------------------------- exercise 2: read each review's real end
def final_states(outputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each review's hidden state after its own last token: outputs [time, batch, hidden], lengths [batch]
    -> [batch, hidden] (`outputs[lengths[b] - 1, b]`)."""
    batch = torch.arange(outputs.shape[1], device=outputs.device)
    return outputs[lengths.to(outputs.device) - 1, batch]


class SimpleRNNRealEnd(SimpleRNN):
    """Lesson 1's model classifying h at each review's last real token instead of after the padding."""

    def forward(self, text, lengths):
        outputs, _ = self.rnn(self.embedding(text))          # [time, batch, hidden]
        return self.fc(final_states(outputs, lengths))       # [batch, 1]


@pytest.fixture(scope="module")
def reviews_and_encoding(imdb_fixture, tokenizer):
    """A short and a longer fixture review, and an encoding whose vocabulary comes from the fixture's training texts."""
    texts = imdb_fixture["train"].texts
    tokens = [tokenizer(text) for text in texts[:50]]
    vocab = Vocab.from_counts({token: 1 for review in tokens for token in review})
    by_length = sorted(range(len(tokens)), key=lambda i: len(tokens[i]))
    short, long = texts[by_length[0]], texts[by_length[-1]]
    assert len(tokens[by_length[-1]]) > len(tokens[by_length[0]]) + 20
    return short, long, TextEncoding(tokenizer, vocab, batch_first=False)


def logits_alone_and_beside_a_longer_review(model, short, long, encoding):
    ids, lengths = (torch.as_tensor(array) for array in encoding.encode([short]))            # [time, 1]
    alone = model(ids, lengths)
    ids, lengths = (torch.as_tensor(array) for array in encoding.encode([long, short]))      # [time, 2]
    assert lengths[0] > lengths[1]                                       # the short review really is padded
    return alone[0], model(ids, lengths)[1]


def test_exercise_2_the_real_end_gives_the_same_logit_alone_and_in_a_batch(reviews_and_encoding):
    short, long, encoding = reviews_and_encoding
    torch.manual_seed(0)
    solution = SimpleRNNRealEnd(len(encoding.vocab), 16, 32, output_dim=1).eval()
    alone, batched = logits_alone_and_beside_a_longer_review(solution, short, long, encoding)
    torch.testing.assert_close(alone, batched, atol=1e-5, rtol=1e-5)
    # the lesson's model, with the same weights, classifies the state after the padding: a different state
    states = []
    for texts in ([short], [long, short]):
        ids, _ = (torch.as_tensor(array) for array in encoding.encode(texts))
        states.append(solution.rnn(solution.embedding(ids))[1][0, -1])      # h after the batch's last step
    assert (states[0] - states[1]).abs().max() > 1e-2


def test_final_states_picks_the_last_real_step():
    outputs = torch.arange(12.0).reshape(4, 3, 1)           # [time 4, batch 3, hidden 1]; value = 3 * t + b
    assert final_states(outputs, torch.tensor([4, 1, 2])).squeeze(1).tolist() == [9.0, 1.0, 5.0]


# ----------------------------------------------------------------- exercise 3: parameters by hand
def gru_model_parameters(vocab_size: int, embedding_dim: int, hidden_dim: int) -> int:
    """Lesson 1's model with nn.GRU: embedding, three gates (update, reset, candidate) each with
    W_i [h, d], W_h [h, h] and two biases [h], and the linear layer [1, h] + 1."""
    v, d, h = vocab_size, embedding_dim, hidden_dim
    return v * d + 3 * (h * d + h * h + 2 * h) + (h + 1)


def test_exercise_3_parameters_by_hand():
    v, d, h = 25_002, 100, 256
    rnn = SimpleRNN(v, d, h, output_dim=1)
    assert count_parameters(rnn) == v * d + (h * d + h * h + 2 * h) + (h + 1) == 2_592_105   # the lesson's print
    gru = SimpleRNN(v, d, h, output_dim=1)
    gru.rnn = nn.GRU(d, h)
    assert count_parameters(gru) == gru_model_parameters(v, d, h)


# ----------------------------------------------------------------- exercise 4: the gradient vanishes
def gradient_norms_per_step(model: SimpleRNN, ids: torch.Tensor) -> torch.Tensor:
    """||dL/dx_t|| for each step t of one review (ids [time, 1]), L = BCE against the label 1."""
    embedded = model.embedding(ids)                         # [time, 1, emb]
    embedded.retain_grad()
    _, hidden = model.rnn(embedded)
    logit = model.fc(hidden.squeeze(0)).squeeze()
    nn.functional.binary_cross_entropy_with_logits(logit, torch.tensor(1.0)).backward()
    return embedded.grad.squeeze(1).norm(dim=1)             # [time]


def test_exercise_4_the_first_tokens_get_almost_no_gradient(reviews_and_encoding):
    _, long, encoding = reviews_and_encoding
    torch.manual_seed(0)
    model = SimpleRNN(len(encoding.vocab), 100, 256, output_dim=1)   # the lesson's sizes, freshly initialised
    ids = torch.as_tensor(encoding.encode([long])[0])              # [time, 1]
    norms = gradient_norms_per_step(model, ids)
    assert len(norms) > 100
    assert norms[-1] > 0 and norms[0] < 1e-6 * norms[-1]    # orders of magnitude smaller at the start
