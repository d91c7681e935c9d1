"""Small models trained on the fixtures and exported as bundles, for the export and deployment tests.

Training takes a second or two: a couple of full-batch Adam steps on the fixture
IMDb / TREC training texts. The numbers mean nothing; the tests check the plumbing.
"""
from __future__ import annotations

from pathlib import Path

from deployment.events import http_event  # noqa: F401 (the tests' event builder lives with the deployment)
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


# ------------------------------------------------------------------ the heaviest requests within the limits

HEAVY_REQUESTS = ("a_comma_64", "distinct_words_64", "distinct_words_x3", "symbol_runs_64", "random_symbols_64",
                  "symbol_chunks_64")


def heavy_requests(names=HEAVY_REQUESTS) -> dict[str, list[str]]:
    """The costliest bodies found for the API within its limits (1 MB, 64 texts of 20,000 characters):
    name -> list of request bodies (JSON strings, UTF-8 at most 1,000,000 bytes), sent one after another.
    Only the cases in `names` are built.

    a_comma_64          64 x "a," * 7,810: 15,620 one-character tokens each, cut to 3,000 (the issue's 2.7 GB case)
    distinct_words_64   64 texts of 2,600 distinct random words (as many as fit): 2,600 tokens + 2,599 bigrams
                        each, every word new to spaCy's string table
    distinct_words_x3   three such requests, each with new words: spaCy's string table must not grow forever
    symbol_runs_64      64 texts, each one run of 15,000 bytes of a symbol ("!", "€", "✓", emoji...): the
                        quadratic case before tokenizer version 2
    random_symbols_64   64 texts, each 15,000 bytes of random symbols with no space (distinct, so spaCy's
                        cache does not help)
    symbol_chunks_64    64 texts of distinct random 80-symbol chunks: the longest chunks spaCy sees uncut
    """
    import json
    import random

    def body(texts):
        data = json.dumps({"texts": texts}, ensure_ascii=False)
        assert len(data.encode("utf-8")) <= 1_000_000 and len(texts) <= 64
        return data

    def distinct_words(seed):
        rng = random.Random(seed)
        letters = "abcdefghijklmnopqrstuvwxyz"
        return [" ".join("".join(rng.choice(letters) for _ in range(5)) for _ in range(2600)) for _ in range(64)]

    def random_symbols(rng, n_bytes, symbols="!$%)'?.,;:-/*+=@#(<>"):
        return "".join(rng.choice(symbols) for _ in range(n_bytes))

    def symbol_runs():
        symbols = ["!", "$", "%", ")", "'", "€", "✓", "😀"]
        return [symbols[i % 8] * (15_000 // len(symbols[i % 8].encode("utf-8"))) for i in range(64)]

    builders = {
        "a_comma_64": lambda: [body(["a," * 7810] * 64)],
        "distinct_words_64": lambda: [body(distinct_words(0))],
        "distinct_words_x3": lambda: [body(distinct_words(seed)) for seed in range(1, 4)],
        "symbol_runs_64": lambda: [body(symbol_runs())],
        "random_symbols_64": lambda: [body([random_symbols(random.Random(i), 15_000) for i in range(64)])],
        "symbol_chunks_64": lambda: [body([" ".join(random_symbols(random.Random(1000 + i), 80) for _ in range(180))
                                           for i in range(64)])],
    }
    unknown = sorted(set(names) - set(builders))
    if unknown:
        raise ValueError(f"unknown heavy request(s) {unknown}: choose from {', '.join(builders)}")
    return {name: builders[name]() for name in names}


# Run in a fresh Python (`python -c PROBE <repo> <function> <case>...`): build the cases' bodies, load the
# handler's model, send each case's requests, print JSON {"baseline_rss_mb", "cases": {case: {"seconds", "statuses",
# "peak_rss_mb"}}}. The peak is the process's so far (VmHWM), so each case's figure includes those before it.
# Not ru_maxrss: Linux carries it across exec, so a probe started from a big process (pytest after hundreds
# of tests) reports its parent's size at the fork. VmHWM belongs to the address space exec makes anew.
PROBE = r"""
import json, sys, time
repo, function_name, cases = sys.argv[1], sys.argv[2], sys.argv[3:]
sys.path[:0] = [repo, repo + "/tests"]
from deploy_support import heavy_requests
requests = heavy_requests(cases)  # first: building them must not count in the peaks below
from deployment import handler
def peak_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
function = getattr(handler, function_name)
assert function({"httpMethod": "GET"}, None)["statusCode"] == 200
report = {"baseline_rss_mb": peak_mb(), "cases": {}}
for case in cases:
    statuses, seconds = [], []
    for body in requests[case]:
        start = time.perf_counter()
        statuses.append(function({"httpMethod": "POST", "body": body}, None)["statusCode"])
        seconds.append(time.perf_counter() - start)
    report["cases"][case] = {"statuses": statuses, "seconds": seconds, "peak_rss_mb": peak_mb()}
print(json.dumps(report))
"""


def probe_requests(function_name: str, cases, models_dir: Path, timeout: float = 300) -> dict:
    """Run PROBE for the handler function `function_name` ("sentiment", "question_type") on `cases`
    (names from `heavy_requests`) in a fresh Python serving `models_dir`; its JSON report."""
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "MODELS_DIR": str(models_dir)}
    for name in ("MODEL_S3_URI", "SENTIMENT_MODEL", "QUESTION_TYPE_MODEL"):
        env.pop(name, None)
    out = subprocess.run([sys.executable, "-c", PROBE, str(REPO_ROOT), function_name, *cases], env=env,
                         capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"the request probe failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
