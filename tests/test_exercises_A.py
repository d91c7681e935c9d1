"""Solution to appendix A's coding exercise (notebooks/A_own_dataset.ipynb, "Exercises"): a FastText logit is
the average of its tokens' scores s_t = W E_t + b. On the shipped reviews.csv (helpers/fixtures/data/own)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from helpers.batching import loaders_for
from helpers.data import load_table, stratified_split
from helpers.encoding import TextEncoding
from helpers.models import FastText
from helpers.text import Tokenizer
from helpers.training import fit


def token_scores(model: FastText, encoding: TextEncoding, text: str) -> list[tuple[str, float]]:
    """Each token of `text` as the model reads it (words, then bigrams; `<unk>` for one the vocabulary lacks)
    with its score s_t = W E_t + b (the model's one output)."""
    vocab = encoding.vocab
    tokens = [token if token in vocab else "<unk>" for token in encoding.tokens(text)]
    with torch.no_grad():
        scores = model.fc(model.embedding.weight[vocab.lookup_indices(tokens)])[:, 0]
    return list(zip(tokens, scores.tolist()))


@pytest.fixture(scope="module")
def trained(fixture_data_dir):
    """A FastText trained for two epochs on the shipped reviews.csv, and its encoding."""
    torch.manual_seed(0)
    tokenizer = Tokenizer()
    dataset = load_table(fixture_data_dir / "own" / "reviews.csv", text_column="review", label_column="sentiment",
                         tokenizer=tokenizer, workers=1)
    train, valid = stratified_split(dataset, valid_fraction=0.25, seed=1234)
    encoding = TextEncoding.build(tokenizer, train.tokens, bigrams=True)
    loaders = loaders_for({"train": train, "valid": valid}, encoding, 16, seed=1234)
    model = FastText(len(encoding.vocab), 16, 1, encoding.vocab.pad_index)
    fit(model, loaders["train"], loaders["valid"], torch.optim.Adam(model.parameters(), lr=3e-3),
        nn.BCEWithLogitsLoss(), 2, torch.device("cpu"), precision="fp32")
    return model.eval(), encoding


@pytest.mark.parametrize("text", ["This film is great", "not bad at all", "A zxqv film, wholly unseen words."])
def test_the_logit_is_the_mean_of_the_token_scores(trained, text):
    model, encoding = trained
    scored = token_scores(model, encoding, text)
    assert [token for token, _ in scored] == [token if token in encoding.vocab else "<unk>"
                                               for token in encoding.tokens(text)]
    ids, lengths = encoding.encode([text])
    with torch.no_grad():
        logit = model(torch.as_tensor(ids), torch.as_tensor(lengths))[0, 0].item()
    mean = sum(score for _, score in scored) / len(scored)
    assert mean == pytest.approx(logit, abs=1e-5)
    # not a coincidence of a constant model: the tokens' scores differ
    assert max(score for _, score in scored) - min(score for _, score in scored) > 1e-4
