"""Small models trained on the fixtures and exported as bundles, for the export and deployment tests.

Training takes a second or two: a couple of full-batch Adam steps on the fixture
IMDb / TREC training texts. The numbers mean nothing; the tests check the plumbing.
"""
from __future__ import annotations

from pathlib import Path

FIXTURE_DATA = Path(__file__).resolve().parent / "fixtures" / "data"
BUNDLE_NAMES = ("sentiment", "sentiment-cnn", "question-type")


def train_small(name: str, steps: int = 8, seed: int = 0):
    """(model, vocab, tokenizer, export kwargs, test texts) for bundle `name`, trained on the fixtures."""
    import torch
    from torch import nn

    from helpers.data import read_imdb, read_trec
    from helpers.models import CNN, FastText
    from helpers.text import Tokenizer, Vocab, add_bigrams
    from helpers.training import encode_texts, set_seed

    set_seed(seed)
    tokenizer = Tokenizer()
    if name == "question-type":
        data = read_trec(FIXTURE_DATA)
    else:
        data = read_imdb(FIXTURE_DATA)
    train, test = data["train"], data["test"]
    bigrams = name == "sentiment"
    min_length = {"sentiment": 1, "sentiment-cnn": 5, "question-type": 4}[name]
    token_lists = [tokenizer(text) for text in train.texts]
    if bigrams:
        token_lists = [add_bigrams(tokens) for tokens in token_lists]
    vocab = Vocab.build(token_lists, max_size=5000)
    labels = list(train.label_names)
    if name == "sentiment":
        model = FastText(len(vocab), 16, 1, vocab.pad_index)
    elif name == "sentiment-cnn":
        model = CNN(len(vocab), 16, 8, [3, 4, 5], 1, 0.5, vocab.pad_index)
    else:
        model = CNN(len(vocab), 16, 8, [2, 3, 4], len(labels), 0.5, vocab.pad_index)
    ids, lengths = encode_texts(train.texts, tokenizer, vocab, bigrams=bigrams, min_length=min_length)
    targets = torch.as_tensor(train.labels)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    criterion = nn.BCEWithLogitsLoss() if name != "question-type" else nn.CrossEntropyLoss()
    model.train()
    for _ in range(steps):
        logits = model(ids, lengths)
        loss = criterion(logits.squeeze(-1), targets.float()) if name != "question-type" else criterion(logits, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    kwargs = {"name": name, "task": "question-type" if name == "question-type" else "sentiment",
              "labels": labels, "bigrams": bigrams, "min_length": min_length,
              "source_notebook": "tests (fixtures)", "test_accuracy": None, "profile": "test",
              "notes": "tiny test model trained on the fixtures"}
    return model, vocab, tokenizer, kwargs, list(test.texts)


def build_bundles(root: Path, names=BUNDLE_NAMES) -> Path:
    """Export a fixture-trained bundle for each name into `root/<name>`; return root."""
    from helpers.export import export_bundle

    for name in names:
        model, vocab, tokenizer, kwargs, _ = train_small(name)
        export_bundle(model, vocab, tokenizer, root / name, **kwargs)
    return root
