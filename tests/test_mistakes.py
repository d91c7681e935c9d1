"""most_confident_mistakes: the right examples, in the order of confidence, mapped back to their texts."""
import numpy as np
import torch
from torch import nn

from helpers.corpus import TokenizedCorpus
from helpers.data import TextDataset
from helpers.encoding import TextEncoding
from helpers.inference import most_confident_mistakes
from helpers.text import Tokenizer, Vocab


class FirstToken(nn.Module):
    """Logits read from each sequence's first token: one logit (token - 10) or two (0, token - 10)."""

    def __init__(self, classes: int = 1):
        super().__init__()
        self.classes = classes

    def forward(self, text, lengths):                     # text: [time, batch]
        logit = text[0].float() - 10
        return logit[:, None] if self.classes == 1 else torch.stack((torch.zeros_like(logit), logit), dim=1)


def data():
    """(time-first encoding, tokenized dataset): the token `t<i>` has the id i, "t1" is `<pad>`'s id."""
    vocab = Vocab(["<unk>", "<pad>", *(f"t{i}" for i in range(2, 20))])
    # Different lengths so that the longest-first order differs from the texts' order.
    firsts = [14, 3, 11, 7, 18, 1, 9, 12]
    labels = [0, 0, 1, 1, 0, 1, 0, 1]       # wrong: first tokens 14, 7, 18 and 1
    sequences = [[first] + [5] * (index % 4) for index, first in enumerate(firsts)]
    offsets = np.cumsum([0, *map(len, sequences)])
    tokens = TokenizedCorpus(vocab.itos, np.concatenate(sequences).astype(np.int32), offsets)
    dataset = TextDataset([f"text {index}" for index in range(len(firsts))], labels, ["neg", "pos"], tokens)
    return TextEncoding(Tokenizer(), vocab, batch_first=False), dataset


def test_binary_mistakes_most_confident_first_with_their_texts():
    encoding, dataset = data()
    mistakes = most_confident_mistakes(FirstToken(), encoding, dataset, batch_size=3, k=3)
    assert [m["index"] for m in mistakes] == [5, 4, 0]          # first tokens 1, 18, 14: |logit| 9, 8, 4
    assert [m["text"] for m in mistakes] == ["text 5", "text 4", "text 0"]
    assert [(m["label"], m["predicted"]) for m in mistakes] == [(1, 0), (0, 1), (0, 1)]
    assert np.isclose(mistakes[0]["confidence"], torch.sigmoid(torch.tensor(9.0)).item())


def test_multi_class_mistakes_use_the_predicted_class_probability():
    encoding, dataset = data()
    mistakes = most_confident_mistakes(FirstToken(classes=2), encoding, dataset, k=10)
    assert [m["index"] for m in mistakes] == [5, 4, 0, 3]      # all wrong ones, most confident first
    assert all(0.5 < m["confidence"] <= 1 for m in mistakes)
