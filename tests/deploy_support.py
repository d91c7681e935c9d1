"""Small models trained on the fixtures and exported as bundles, for the export and deployment tests.

Training takes a second or two: a couple of full-batch Adam steps on the fixture
IMDb / TREC training texts. The numbers mean nothing; the tests check the plumbing.
"""
from __future__ import annotations

from pathlib import Path

from helpers.course import FIXTURE_DATA_DIR as FIXTURE_DATA   # the data shipped in the package
BUNDLE_NAMES = ("sentiment", "sentiment-cnn", "question-type")


def train_small(name: str, steps: int = 8, seed: int = 0):
    """(model, vocab, tokenizer, export kwargs, test texts) for bundle `name`, trained on the fixtures."""
    import torch
    from torch import nn

    from helpers.data import read_imdb, read_trec
    from helpers.models import CNN, FastText
    from helpers.text import Tokenizer, Vocab, add_bigrams
    from helpers.training import encode_texts, loss_and_correct, set_seed

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
        loss, _ = loss_and_correct(logits, targets, criterion)
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
        export_bundle(model, vocab, tokenizer, root / name, kwargs)
    return root


REPO_ROOT = Path(__file__).resolve().parent.parent
COMMITTED_MODELS = REPO_ROOT / "deployment" / "models"


def committed_bundles_present(names=("sentiment", "question-type")) -> bool:
    return all((COMMITTED_MODELS / name / "meta.json").is_file() for name in names)


def bundles_for_tests(tmp_root: Path) -> Path:
    """The folder of bundles the deployment tests serve: deployment/models when it holds the
    bundles, else fixture-trained ones built in `tmp_root`. sentiment-cnn is always available:
    taken from deployment/models when present, else built."""
    if committed_bundles_present(("sentiment", "question-type", "sentiment-cnn")):
        return COMMITTED_MODELS
    root = tmp_root / "models"
    root.mkdir(parents=True, exist_ok=True)
    import shutil

    for name in BUNDLE_NAMES:
        if (COMMITTED_MODELS / name / "meta.json").is_file():
            shutil.copytree(COMMITTED_MODELS / name, root / name)
        else:
            build_bundles(root, [name])
    return root


def http_event(method: str, body=None, version: str = "2.0", base64_body: bool = False, path: str = "/sentiment"):
    """An API Gateway proxy event: HTTP API payload 2.0 or REST API payload 1.0."""
    import base64

    if isinstance(body, (dict, list)):
        import json

        body = json.dumps(body)
    if base64_body and body is not None:
        raw = body if isinstance(body, bytes) else body.encode("utf-8")
        body = base64.b64encode(raw).decode("ascii")
    if version == "2.0":
        return {"version": "2.0", "routeKey": f"{method} {path}", "rawPath": path, "rawQueryString": "",
                "headers": {"content-type": "application/json"},
                "requestContext": {"http": {"method": method, "path": path, "sourceIp": "127.0.0.1"},
                                   "stage": "$default"},
                "body": body, "isBase64Encoded": base64_body}
    return {"resource": path, "path": path, "httpMethod": method, "headers": {"Content-Type": "application/json"},
            "multiValueHeaders": {}, "queryStringParameters": None, "requestContext": {"httpMethod": method,
                                                                                      "stage": "prod"},
            "body": body, "isBase64Encoded": base64_body}
