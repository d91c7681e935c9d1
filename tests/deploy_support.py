"""Small models trained on the fixtures and exported as bundles, for the export and deployment tests.

Training takes a second or two: a couple of full-batch Adam steps on the fixture
IMDb / TREC training texts. The numbers mean nothing; the tests check the plumbing.
"""
from __future__ import annotations

from pathlib import Path

from deployment.events import http_event  # noqa: F401 (the tests' event builder lives with the deployment)
from helpers.course import FIXTURE_DATA_DIR as FIXTURE_DATA   # the data shipped in the package

BUNDLE_NAMES = ("sentiment", "sentiment-cnn", "question-type")


# What the course layer passes as a bundle's provenance (values, not computed by the export)
TEST_PROVENANCE = {"git_commit": "0123456789abcdef0123456789abcdef01234567", "torch_version": "test-torch",
                   "onnx_version": "test-onnx"}


def train_small(name: str, steps: int = 8, seed: int = 0):
    """(model, encoding, export kwargs, test texts) for bundle `name`, trained on the fixtures."""
    import torch
    from torch import nn

    from helpers.data import read_imdb, read_trec
    from helpers.models import CNN, FastText
    from helpers.encoding import TextEncoding
    from helpers.text import Tokenizer, Vocab, add_bigrams
    from helpers.reproducibility import set_seed
    from helpers.training import loss_and_correct

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
    encoding = TextEncoding(tokenizer, vocab, bigrams=bigrams, min_length=min_length)
    labels = list(train.label_names)
    if name == "sentiment":
        model = FastText(len(vocab), 16, 1, vocab.pad_index)
    elif name == "sentiment-cnn":
        model = CNN(len(vocab), 16, 8, [3, 4, 5], 1, 0.5, vocab.pad_index)
    else:
        model = CNN(len(vocab), 16, 8, [2, 3, 4], len(labels), 0.5, vocab.pad_index)
    ids, lengths = map(torch.from_numpy, encoding.encode(train.texts))
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
              "labels": labels, "source_notebook": "tests (fixtures)", "test_accuracy": None, "profile": "test",
              "notes": "tiny test model trained on the fixtures", "provenance": TEST_PROVENANCE}
    return model, encoding, kwargs, list(test.texts)


def build_bundles(root: Path, names=BUNDLE_NAMES) -> Path:
    """Export a fixture-trained bundle for each name into `root/<name>`; return root."""
    from helpers.export import export_bundle

    for name in names:
        model, encoding, kwargs, _ = train_small(name)
        export_bundle(model, encoding, root / name, kwargs)
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
                  "symbol_chunks_64", "affix_chunks_64", "quote_chunks_64", "dot_run_chunks_64")
REAL_REQUESTS = ("imdb_longest_64",)   # built from the real data: only with a data folder


def _body(texts: list[str]) -> str:
    import json

    data = json.dumps({"texts": texts}, ensure_ascii=False)
    if len(data.encode("utf-8")) > 1_000_000 or len(texts) > 64:
        raise AssertionError(f"a heavy request must stay within the API's limits: {len(texts)} texts, "
                             f"{len(data.encode('utf-8')):,} bytes")
    return data


def longest_imdb_test_reviews(data_dir, n: int = 64) -> list[str]:
    """The `n` longest IMDb test reviews (in characters), longest first: real text the API must always answer."""
    from helpers.data import read_imdb

    return sorted(read_imdb(data_dir)["test"].texts, key=len, reverse=True)[:n]


def heavy_requests(names=HEAVY_REQUESTS, seed: int = 0, data_dir=None) -> dict[str, list[str]]:
    r"""The costliest bodies found for the API within its limits (1 MB, 64 texts of 20,000 characters):
    name -> list of request bodies (JSON strings, UTF-8 at most 1,000,000 bytes), sent one after another.
    Only the cases in `names` are built.

    No case can be answered from a cache: each case draws from its own random generator, seeded by
    `seed` and the case's name, so every text, and every chunk within a text, is new random content
    (spaCy caches each chunk it has tokenized, so a repeated chunk would cost nothing), and another
    `seed` gives other content. Symbols include multi-byte ones (€, ✓, 😀).

    a_comma_64          64 x 7,810 pairs "<letter>,": 15,620 one-character tokens each, cut to 3,000 (the most
                        tokens per byte: memory)
    distinct_words_64   64 texts of 2,600 random 5-letter words (as many as fit): 2,600 tokens + 2,599 bigrams
                        each, every word new to spaCy's string table
    distinct_words_x3   three such requests, each with new words: spaCy's string table must not grow forever
    symbol_runs_64      64 texts of 15,000 bytes without a space: runs of 2 to 12 of one symbol after another
                        (one run of 15,000 was the quadratic case before tokenizer version 2)
    random_symbols_64   64 texts of 15,000 bytes of random symbols without a space
    symbol_chunks_64    64 texts of 180 random 80-symbol chunks: the longest chunks spaCy sees uncut
    affix_chunks_64     64 texts of 64 chunks of 4 letters and 76 of `)]}!?.,` (332 KB): spaCy peels 76
                        suffixes off each chunk, rescanning the chunk for each (issue 19)
    quote_chunks_64     the same with 76 quotes (`'"‘’“”` and backtick), the affixes that cost spaCy the most
    dot_run_chunks_64   64 texts of 180 chunks of 4 letters and runs of 6 to 9 dots, each closed by a mark: the
                        suffix rule that is not of bounded width (`\.\.+`), peeled run by run
    imdb_longest_64     the 64 longest IMDb test reviews (needs `data_dir`): real text, never refused
    """
    import random

    letters = "abcdefghijklmnopqrstuvwxyz"
    symbols = "!$%)'?.,;:-/*+=@#(<>€✓😀"

    def words(rng, n):
        return " ".join("".join(rng.choices(letters, k=5)) for _ in range(n))

    def utf8_prefix(pieces, n_bytes):
        text, size = [], 0
        for piece in pieces:
            size += len(piece.encode("utf-8"))
            if size > n_bytes:
                break
            text.append(piece)
        return "".join(text)

    def symbol_runs(rng):
        return utf8_prefix((rng.choice(symbols) * rng.randint(2, 12) for _ in range(15_000)), 15_000)

    def chunk_text(rng, n_chunks, make_chunk):
        return " ".join(make_chunk(rng) for _ in range(n_chunks))

    def affix_chunk(marks):
        return lambda rng: "".join(rng.choices(letters, k=4)) + "".join(rng.choices(marks, k=76))

    def dot_run_chunk(rng):
        chunk = "".join(rng.choices(letters, k=4))
        while len(chunk) < 70:
            chunk += "." * rng.randint(6, 9) + rng.choice(")]}!?,")
        return chunk

    builders = {
        "a_comma_64": lambda rng: [_body(["".join(c + "," for c in rng.choices(letters, k=7810)) for _ in range(64)])],
        "distinct_words_64": lambda rng: [_body([words(rng, 2600) for _ in range(64)])],
        "distinct_words_x3": lambda rng: [_body([words(rng, 2600) for _ in range(64)]) for _ in range(3)],
        "symbol_runs_64": lambda rng: [_body([symbol_runs(rng) for _ in range(64)])],
        "random_symbols_64": lambda rng: [_body([utf8_prefix(rng.choices(symbols, k=15_000), 15_000)
                                                 for _ in range(64)])],
        "symbol_chunks_64": lambda rng: [_body([chunk_text(rng, 180, lambda r: "".join(r.choices(symbols[:20], k=80)))
                                                for _ in range(64)])],
        "affix_chunks_64": lambda rng: [_body([chunk_text(rng, 64, affix_chunk(")]}!?.,")) for _ in range(64)])],
        "quote_chunks_64": lambda rng: [_body([chunk_text(rng, 64, affix_chunk("'\"`‘’“”")) for _ in range(64)])],
        "dot_run_chunks_64": lambda rng: [_body([chunk_text(rng, 180, dot_run_chunk) for _ in range(64)])],
        "imdb_longest_64": lambda rng: [_body(longest_imdb_test_reviews(data_dir))],
    }
    unknown = sorted(set(names) - set(builders))
    if unknown:
        raise ValueError(f"unknown heavy request(s) {unknown}: choose from {', '.join(builders)}")
    if data_dir is None and set(names) & set(REAL_REQUESTS):
        raise ValueError(f"{', '.join(sorted(set(names) & set(REAL_REQUESTS)))} needs the real data: pass data_dir")
    return {name: builders[name](random.Random(f"{seed}:{name}")) for name in names}


# Run in a fresh Python (`python -c PROBE <code> <function> <bodies.json>`): load the handler of the checkout <code>
# and its model, send each case's requests (bodies.json: {case: [body, ...]}, built beforehand by the caller, so
# that the same bodies can be sent to another version of the code), print JSON {"baseline_rss_mb", "cases": {case:
# {"seconds", "statuses", "peak_rss_mb"}}}. The peak is the process's so far (VmHWM), so each case's figure
# includes those before it. Not ru_maxrss: Linux carries it across exec, so a probe started from a big process
# (pytest after hundreds of tests) reports its parent's size at the fork. VmHWM belongs to the address space
# exec makes anew.
PROBE = r"""
import json, sys, time
code, function_name, bodies_file = sys.argv[1:4]
sys.path[:0] = [code]
with open(bodies_file, encoding="utf-8") as handle:
    requests = json.load(handle)
from deployment import handler
assert handler.__file__.startswith(code), (handler.__file__, code)
def peak_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
function = getattr(handler, function_name)
assert function({"httpMethod": "GET"}, None)["statusCode"] == 200
report = {"baseline_rss_mb": peak_mb(), "cases": {}}
for case, bodies in requests.items():
    statuses, seconds = [], []
    for body in bodies:
        start = time.perf_counter()
        statuses.append(function({"httpMethod": "POST", "body": body}, None)["statusCode"])
        seconds.append(time.perf_counter() - start)
    report["cases"][case] = {"statuses": statuses, "seconds": seconds, "peak_rss_mb": peak_mb()}
print(json.dumps(report))
"""


def probe_requests(function_name: str, requests: dict[str, list[str]], models_dir: Path, timeout: float = 300,
                   code_dir: Path = REPO_ROOT) -> dict:
    """Run PROBE for the handler function `function_name` ("sentiment", "question_type") of the checkout
    `code_dir` (default: this one) on `requests` ({case: [body, ...]}, e.g. from `heavy_requests`) in a
    fresh Python serving `models_dir`; its JSON report."""
    import json
    import os
    import subprocess
    import sys
    import tempfile

    code_dir = Path(code_dir).resolve()
    env = {**os.environ, "MODELS_DIR": str(Path(models_dir).resolve())}
    for name in ("MODEL_S3_URI", "SENTIMENT_MODEL", "QUESTION_TYPE_MODEL", "PYTHONPATH"):
        env.pop(name, None)
    with tempfile.TemporaryDirectory() as scratch:
        bodies = Path(scratch) / "bodies.json"
        bodies.write_text(json.dumps(requests, ensure_ascii=False), encoding="utf-8")
        out = subprocess.run([sys.executable, "-c", PROBE, str(code_dir), function_name, str(bodies)], env=env,
                             cwd=code_dir, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"the request probe failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
