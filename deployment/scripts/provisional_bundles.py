"""Provisional bundles for deployment/models/, until the reference notebook run replaces them.

    python deployment/scripts/provisional_bundles.py --data-dir ../shared/data [--only sentiment]

Runs the training code path of notebook 3 (FastText on IMDb with bigrams, 5 epochs) and
of notebook 5 (CNN on TREC, 5 epochs) on the real data and exports the bundles with
`provisional: true` in their meta.json. Running notebooks 3, 4 and 5 in the full profile
(`make all`) overwrites them with the reference bundles (lesson 4 adds sentiment-cnn).
"""
from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from helpers.batching import loaders_for
from helpers.data import load_imdb, load_trec, stratified_split
from helpers.export import DEPLOYMENT_MODELS_DIR, export_bundle
from helpers.models import CNN, FastText
from helpers.profiles import default_vectors
from helpers.text import Tokenizer, Vocab
from helpers.training import evaluate, fit, set_seed
from helpers.vectors import embedding_matrix, load_glove

NOTE = "provisional bundle from deployment/scripts/provisional_bundles.py; regenerate with the full notebook run"


def sentiment(data_dir: Path, seed: int = 1234, epochs: int = 5) -> Path:
    """Notebook 3's code path."""
    set_seed(seed)
    tokenizer = Tokenizer()
    imdb = load_imdb(tokenizer, data_dir)
    train_data, valid_data = stratified_split(imdb["train"], valid_fraction=0.3, seed=seed)
    test_data = imdb["test"]
    train_data, valid_data, test_data = (replace(data, tokens=data.tokens.with_bigrams())
                                         for data in (train_data, valid_data, test_data))
    vocab = Vocab.from_counts(train_data.tokens.counts(), max_size=25_000)
    glove = load_glove(default_vectors(data_dir), data_dir)
    loaders = loaders_for({"train": train_data, "valid": valid_data, "test": test_data}, vocab, 64, seed=seed,
                          batch_first=True)
    model = FastText(len(vocab), glove.dim, 1, vocab.pad_index)
    model.embedding.weight.data.copy_(embedding_matrix(vocab, glove, unk_init=torch.Tensor.normal_))
    model.embedding.weight.data[vocab.unk_index] = 0
    model.embedding.weight.data[vocab.pad_index] = 0
    criterion = nn.BCEWithLogitsLoss()
    fit(model, loaders["train"], loaders["valid"], torch.optim.Adam(model.parameters()), criterion, epochs, "cpu")
    test = evaluate(model, loaders["test"], criterion, "cpu")
    print(f"sentiment: test accuracy {test['accuracy']:.2%}")
    return export_bundle(model, vocab, tokenizer, DEPLOYMENT_MODELS_DIR / "sentiment", name="sentiment",
                         task="sentiment", labels=train_data.label_names, bigrams=True,
                         source_notebook="03_faster_sentiment", test_accuracy=test["accuracy"], profile="full",
                         provisional=True, notes=f"{NOTE}; {epochs} epochs, {default_vectors(data_dir)}",
                         check_texts=test_data.texts[:100])


def question_type(data_dir: Path, seed: int = 1234, epochs: int = 5) -> Path:
    """Notebook 5's code path (the lesson's model, not the going-further one)."""
    set_seed(seed)
    tokenizer = Tokenizer()
    trec = load_trec(tokenizer, data_dir)
    train_data, valid_data = stratified_split(trec["train"], valid_fraction=0.3, seed=seed)
    test_data = trec["test"]
    labels = train_data.label_names
    vocab = Vocab.from_counts(train_data.tokens.counts(), max_size=25_000)
    glove = load_glove(default_vectors(data_dir), data_dir)
    filter_sizes = [2, 3, 4]
    loaders = loaders_for({"train": train_data, "valid": valid_data, "test": test_data}, vocab, 64, seed=seed,
                          batch_first=True, min_length=max(filter_sizes))
    model = CNN(len(vocab), glove.dim, 100, filter_sizes, len(labels), 0.5, vocab.pad_index)
    model.embedding.weight.data.copy_(embedding_matrix(vocab, glove, unk_init=torch.Tensor.normal_))
    model.embedding.weight.data[vocab.unk_index] = 0
    model.embedding.weight.data[vocab.pad_index] = 0
    criterion = nn.CrossEntropyLoss()
    fit(model, loaders["train"], loaders["valid"], torch.optim.Adam(model.parameters()), criterion, epochs, "cpu")
    test = evaluate(model, loaders["test"], criterion, "cpu")
    print(f"question-type: test accuracy {test['accuracy']:.2%}")
    return export_bundle(model, vocab, tokenizer, DEPLOYMENT_MODELS_DIR / "question-type", name="question-type",
                         task="question-type", labels=labels, min_length=max(filter_sizes),
                         source_notebook="05_multiclass_questions", test_accuracy=test["accuracy"], profile="full",
                         provisional=True, notes=f"{NOTE}; {epochs} epochs, {default_vectors(data_dir)}",
                         check_texts=test_data.texts[:100])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--only", choices=["sentiment", "question-type"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.only in (None, "sentiment"):
        sentiment(args.data_dir.resolve())
    if args.only in (None, "question-type"):
        question_type(args.data_dir.resolve())


if __name__ == "__main__":
    main()
