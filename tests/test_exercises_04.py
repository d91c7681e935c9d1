"""Lesson 4's exercise 1 (which window made a filter fire): a solution, and what any solution must pass."""
import torch
import torch.nn.functional as F

from helpers.encoding import TextEncoding
from helpers.models import CNN
from helpers.text import Tokenizer, Vocab


@torch.inference_mode()
def strongest_window(model: CNN, encoding: TextEncoding, text: str, conv_index: int, filter_index: int) -> list[str]:
    """The words of the window of `text` on which filter `filter_index` of `model.convs[conv_index]` scores
    highest (its c_i before max-pooling), among the review's own windows (none reaching into the padding)."""
    model.eval()
    ids, lengths = encoding.encode([text])
    ids = torch.from_numpy(ids)
    conv = model.convs[conv_index]
    scores = F.relu(conv(model.embedding(ids).permute(0, 2, 1)))[0, filter_index]   # [time - h + 1]
    width = conv.kernel_size[0]
    n_windows = max(int(lengths[0]) - width + 1, 1)
    start = int(scores[:n_windows].argmax())
    tokens = [encoding.vocab.itos[i] for i in ids[0, start:start + width].tolist()]
    return tokens


def not_good_detector() -> tuple[CNN, TextEncoding]:
    """A CNN whose width-2 filter 0 scores 1 on "not good" and at most 0.5 elsewhere (one-hot embeddings)."""
    words = ["<unk>", "<pad>", "the", "film", "is", "not", "good", "very", "bad", "."]
    vocab = Vocab(words)
    model = CNN(len(vocab), len(vocab), 2, [2, 3], 1, 0.0, vocab.pad_index)
    with torch.no_grad():
        model.embedding.weight.copy_(torch.eye(len(vocab)))
        for conv in model.convs:
            conv.weight.zero_()
            conv.bias.zero_()
        model.convs[0].weight[0, vocab.stoi["not"], 0] = 0.5     # first word of the window: "not"
        model.convs[0].weight[0, vocab.stoi["good"], 1] = 0.5    # second word: "good"
    return model, TextEncoding(Tokenizer(), vocab, min_length=3)


def test_the_filter_fires_on_not_good():
    model, encoding = not_good_detector()
    assert strongest_window(model, encoding, "the film is not good .", 0, 0) == ["not", "good"]
    assert strongest_window(model, encoding, "not bad . the film is not good", 0, 0) == ["not", "good"]


def test_windows_stay_inside_a_short_review():
    """A one-word review has one window, padded: the answer is that window, not one in the padding."""
    model, encoding = not_good_detector()
    assert strongest_window(model, encoding, "good", 1, 0) == ["good", "<pad>", "<pad>"]


def test_a_fixture_review_gives_a_window_of_its_own_words(imdb_fixture, tokenizer):
    text = imdb_fixture["train"].texts[0]
    words = tokenizer(text)
    vocab = Vocab.from_counts({word: 1 for word in words})
    torch.manual_seed(0)
    model = CNN(len(vocab), 8, 4, [3, 4, 5], 1, 0.5, vocab.pad_index)
    window = strongest_window(model, TextEncoding(tokenizer, vocab, min_length=5), text, 2, 3)
    assert len(window) == 5
    assert any(words[i:i + 5] == window for i in range(len(words) - 4))
