"""Per-text token digests: proof that a tokenizer change leaves the course's data alone.

    python tests/token_digests.py --data-dir ../shared/data    # (re)write the digest files

A digest is the first 16 hex digits of the sha256 of a text's tokens joined by U+001F.
`tests/fixtures/token_digests/` holds the digests that the tokenizer of commit 240d091
(before chunks were bounded) gave for the fixture data (`fixtures.json`) and for the full
IMDb and TREC data (`real.json.gz`); `tests/test_text.py` recomputes them with today's
tokenizer and counts the texts whose tokens changed. Rewrite the files only on purpose:
they are the reference.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from helpers.data import read_imdb, read_trec  # noqa: E402
from helpers.text import Tokenizer  # noqa: E402

DIGEST_DIR = Path(__file__).resolve().parent / "fixtures" / "token_digests"
FIXTURE_DATA = REPO_ROOT / "helpers" / "fixtures" / "data"   # the small data shipped in the package


def token_digest(tokens: Sequence[str]) -> str:
    return hashlib.sha256("\x1f".join(tokens).encode("utf-8")).hexdigest()[:16]


def _digest_chunk(texts: list[str]) -> list[str]:
    tokenizer = Tokenizer()
    return [token_digest(tokenizer(text)) for text in texts]


def digests(texts: Sequence[str], workers: int = 1, chunk: int = 1000) -> list[str]:
    """The digest of `Tokenizer()(text)` for each text, in order."""
    pieces = [list(texts[i:i + chunk]) for i in range(0, len(texts), chunk)]
    if workers > 1 and len(pieces) > 1:
        from multiprocessing import Pool

        with Pool(workers) as pool:
            return [d for part in pool.map(_digest_chunk, pieces) for d in part]
    return [d for part in map(_digest_chunk, pieces) for d in part]


def corpus_texts(data_dir: str | os.PathLike) -> dict[str, list[str]]:
    """Every text the lessons tokenize: IMDb train/test and TREC train/test, in loader order."""
    imdb, trec = read_imdb(data_dir), read_trec(data_dir)
    return {"imdb/train": imdb["train"].texts, "imdb/test": imdb["test"].texts,
            "trec/train": trec["train"].texts, "trec/test": trec["test"].texts}


def compute(data_dir: str | os.PathLike, workers: int = 1) -> dict[str, list[str]]:
    return {name: digests(texts, workers) for name, texts in corpus_texts(data_dir).items()}


def read_reference(name: str) -> dict[str, list[str]]:
    """`fixtures` or `real`: {corpus part: [digest per text]}."""
    path = DIGEST_DIR / ("fixtures.json" if name == "fixtures" else "real.json.gz")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return json.load(handle)


def changed(reference: dict[str, list[str]], current: dict[str, list[str]]) -> dict[str, int]:
    """{corpus part: number of texts whose digest differs}; a length mismatch is an error."""
    counts = {}
    for name, expected in reference.items():
        got = current[name]
        if len(got) != len(expected):
            raise ValueError(f"{name}: {len(got)} texts now, {len(expected)} in the reference")
        counts[name] = sum(a != b for a, b in zip(expected, got))
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="the real data folder (IMDb + TREC); omitted: only the fixtures")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    DIGEST_DIR.mkdir(parents=True, exist_ok=True)
    (DIGEST_DIR / "fixtures.json").write_text(json.dumps(compute(FIXTURE_DATA)) + "\n", encoding="utf-8")
    if args.data_dir:
        with gzip.GzipFile(DIGEST_DIR / "real.json.gz", "wb", mtime=0) as handle:
            handle.write(json.dumps(compute(args.data_dir, args.workers)).encode("utf-8"))


if __name__ == "__main__":
    main()
