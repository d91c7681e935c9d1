"""Benchmark the IMDb data pipeline, cold (empty cache) and warm (prepared cache).

    python benchmarks/bench_data.py [--data-dir ../shared/data] [--workers N] [--out results/benchmarks/data.json]

Each run does what a lesson does before training: `load_imdb` (read the archive
and tokenize, or read the prepared cache), a 70/30 `stratified_split` of train,
`Vocab.from_counts(max_size=25_000)` and encoding train/valid/test. It also loads
GloVe 50d and reports how much of the 25k vocabulary it covers, matched exactly
(torchtext's way) and with `lowercase_fallback`. The data folder comes from
--data-dir or env SENTIMENT_DATA_DIR; the cache is a fresh temporary folder.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from helpers.data import load_imdb, stratified_split  # noqa: E402
from helpers.text import Vocab  # noqa: E402
from helpers.vectors import coverage, load_glove  # noqa: E402

STEPS = ("load_imdb", "split", "vocab", "encode")


def git_info() -> dict:
    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                                  check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None

    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}


def pipeline(data_dir: Path, cache: Path, workers: int | None) -> tuple[dict, Vocab, dict]:
    """One pass; returns (seconds per step, vocabulary, sizes)."""
    seconds = {}
    start = time.perf_counter()
    imdb = load_imdb(data_directory=data_dir, cache=cache, workers=workers)
    seconds["load_imdb"] = time.perf_counter() - start

    start = time.perf_counter()
    train, valid = stratified_split(imdb["train"], 0.3, seed=1234)
    seconds["split"] = time.perf_counter() - start

    start = time.perf_counter()
    vocab = Vocab.from_counts(train.tokens.counts(), max_size=25_000)
    seconds["vocab"] = time.perf_counter() - start

    start = time.perf_counter()
    tokens = 0
    for dataset in (train, valid, imdb["test"]):
        ids, _ = dataset.tokens.encode(vocab)
        tokens += len(ids)
    seconds["encode"] = time.perf_counter() - start
    seconds["total"] = sum(seconds[step] for step in STEPS)
    sizes = {"train": len(train), "valid": len(valid), "test": len(imdb["test"]), "tokens": tokens,
             "vocab": len(vocab)}
    return seconds, vocab, sizes


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("SENTIMENT_DATA_DIR"),
                        help="real data folder with imdb/ and glove/ (default: env SENTIMENT_DATA_DIR)")
    parser.add_argument("--workers", type=int, default=None, help="tokenizing processes (default: all cores)")
    parser.add_argument("--out", default=str(REPO_ROOT / "results" / "benchmarks" / "data.json"))
    args = parser.parse_args(argv)
    if not args.data_dir:
        parser.error("pass --data-dir or set SENTIMENT_DATA_DIR (the folder holding imdb/aclImdb_v1.tar.gz)")
    data_dir = Path(args.data_dir).resolve()

    with tempfile.TemporaryDirectory(prefix="bench-data-cache-") as cache_name:
        cache = Path(cache_name)
        cold, vocab, sizes = pipeline(data_dir, cache, args.workers)
        warm, warm_vocab, _ = pipeline(data_dir, cache, args.workers)
        assert warm_vocab.itos == vocab.itos, "the cached pipeline gave a different vocabulary"

        start = time.perf_counter()
        glove = load_glove("glove.6B.50d", data_dir, cache=cache)
        glove_cold = time.perf_counter() - start
        start = time.perf_counter()
        glove = load_glove("glove.6B.50d", data_dir, cache=cache)
        glove_warm = time.perf_counter() - start
        exact = coverage(vocab, glove)
        fallback = coverage(vocab, glove, lowercase_fallback=True)

    # deferred: imported here, after the timings, so that the cold load_imdb time includes spaCy's import
    import numpy
    import spacy
    import torch

    result = {
        "benchmark": "data pipeline: load_imdb + stratified_split + Vocab(25k) + encode",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **git_info(),
        "cpu_count": os.cpu_count(),
        "workers": args.workers or os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {"torch": torch.__version__, "numpy": numpy.__version__, "spacy": spacy.__version__},
        "data_dir": str(data_dir),
        "sizes": sizes,
        "seconds": {"cold": cold, "warm": warm},
        "glove": {"name": "glove.6B.50d", "words": len(glove), "dim": glove.dim,
                  "seconds": {"cold": glove_cold, "warm": glove_warm},
                  "coverage": {"exact": exact, "lowercase_fallback": fallback}},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")

    print(f"\nIMDb pipeline, {sizes['train']}/{sizes['valid']}/{sizes['test']} reviews, "
          f"{sizes['tokens']:,} tokens, vocab {sizes['vocab']:,}; {result['cpu_count']} CPUs, "
          f"{result['workers']} workers")
    print(f"{'step':<10}{'cold s':>10}{'warm s':>10}")
    for step in (*STEPS, "total"):
        print(f"{step:<10}{cold[step]:>10.2f}{warm[step]:>10.2f}")
    print(f"{'glove 50d':<10}{glove_cold:>10.2f}{glove_warm:>10.2f}")
    print(f"\nGloVe 50d coverage of the {exact['total']:,}-token vocabulary: "
          f"exact {exact['found']:,} ({exact['share']:.1%}), "
          f"lowercase fallback {fallback['found']:,} ({fallback['share']:.1%})")
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
