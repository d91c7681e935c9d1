"""Build the small committed fixtures in helpers/fixtures/data/ (shipped in the package) from the real data.

    python tests/make_fixtures.py [DATA_DIR]

DATA_DIR defaults to ../shared/data relative to the repository root and must hold
imdb/aclImdb_v1.tar.gz, trec/train_5500.label, trec/TREC_10.label and
glove/glove.6B.50d.txt.gz. The output is reproducible (fixed seed, fixed gzip
header time) and small (about 2 MB):

- imdb/aclImdb/{train,test}/{neg,pos}/: 100 randomly sampled reviews per folder
  (original file names), skipping reviews longer than 2,500 characters, plus
  imdb/expected_counts.json declaring the trimmed size;
- trec/train_5500.label: 600 raw lines (bytes) including line 66 with its invalid
  UTF-8 byte; trec/TREC_10.label: 150 raw lines whose fine labels occur in the
  train sample (so `read_trec(fine=True)` works on the fixtures);
- glove/glove.6B.50d.txt.gz: the GloVe lines of every fixture token (exact or
  lowercased) plus the 2,000 most frequent GloVe words, in GloVe's order;
- own/reviews.csv (appendix A's "your own CSV"): the 400 IMDb reviews above, each cut to
  its last one or two sentences (see `short_review`), with string labels, in shuffled order.
  `--own-only` rebuilds just this file from the shipped IMDb sample (no real data needed).
"""
from __future__ import annotations

import argparse
import csv
import gzip
import json
import random
import re
import shutil
import sys
import tarfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from helpers.text import Tokenizer  # noqa: E402

SEED = 20240501
REVIEWS_PER_FOLDER = 100
MAX_REVIEW_CHARS = 2_500
TREC_TRAIN_LINES = 600
TREC_TEST_LINES = 150
TREC_BAD_LINE = 66  # 1-based: "sister\xf0city", the one byte that is not UTF-8
GLOVE_TOP_WORDS = 2_000
OUT = REPO_ROOT / "helpers" / "fixtures" / "data"   # package data: the smoke profile reads it offline
OWN_SEED = 20261125
OWN_MAX_SENTENCES = 2
OWN_MAX_CHARS = 300
# a sentence ends at . ! or ? (closing quotes/brackets kept) followed by space and a capital, quote or bracket
SENTENCE_END = re.compile(r"(?<=[.!?])[\"')]*\s+(?=[A-Z\"'(])")


def make_imdb(source: Path, out: Path, rng: random.Random) -> list[str]:
    """Sample reviews into out/imdb/aclImdb/; returns the sampled texts."""
    candidates: dict[tuple[str, str], list[tuple[str, str]]] = {}
    with tarfile.open(source, "r|gz") as archive:
        for member in archive:
            parts = member.name.split("/")
            if not (member.isfile() and len(parts) == 4 and parts[0] == "aclImdb"
                    and parts[1] in ("train", "test") and parts[2] in ("neg", "pos") and parts[3].endswith(".txt")):
                continue
            text = archive.extractfile(member).read().decode("utf-8")
            if len(text) <= MAX_REVIEW_CHARS:
                candidates.setdefault((parts[1], parts[2]), []).append((parts[3], text))
    root = out / "imdb" / "aclImdb"
    texts = []
    for split in ("train", "test"):
        for label in ("neg", "pos"):
            pool = sorted(candidates[(split, label)])  # archive order must not matter
            folder = root / split / label
            folder.mkdir(parents=True)
            for name, text in rng.sample(pool, REVIEWS_PER_FOLDER):
                (folder / name).write_bytes(text.encode("utf-8"))
                texts.append(text)
    (out / "imdb" / "expected_counts.json").write_text(
        json.dumps({"reviews_per_folder": REVIEWS_PER_FOLDER}) + "\n", encoding="utf-8")
    return texts


def _fine(line: bytes) -> bytes:
    return line.split(b" ", 1)[0]


def make_trec(source: Path, out: Path, rng: random.Random) -> list[str]:
    """Sample raw TREC lines; returns the sampled question texts."""
    train = (source / "train_5500.label").read_bytes().splitlines(keepends=True)
    test = (source / "TREC_10.label").read_bytes().splitlines(keepends=True)
    assert b"sister\xf0city" in train[TREC_BAD_LINE - 1], "line 66 of train_5500.label is not the expected one"
    others = [i for i in range(len(train)) if i != TREC_BAD_LINE - 1]
    train_idx = sorted([TREC_BAD_LINE - 1, *rng.sample(others, TREC_TRAIN_LINES - 1)])
    train_lines = [train[i] for i in train_idx]
    known = {_fine(line) for line in train_lines}
    eligible = [i for i, line in enumerate(test) if _fine(line) in known]
    test_lines = [test[i] for i in sorted(rng.sample(eligible, TREC_TEST_LINES))]
    for name, lines in (("train", train_lines), ("test", test_lines)):
        coarse = {line.split(b":", 1)[0] for line in lines}
        assert len(coarse) == 6, f"TREC {name} sample lacks a coarse class: {sorted(coarse)}"
    folder = out / "trec"
    folder.mkdir(parents=True)
    (folder / "train_5500.label").write_bytes(b"".join(train_lines))
    (folder / "TREC_10.label").write_bytes(b"".join(test_lines))
    return [line.decode("utf-8", errors="replace").split(" ", 1)[1] for line in train_lines + test_lines]


def make_glove(source: Path, out: Path, texts: list[str]) -> int:
    tokenizer = Tokenizer()
    wanted: set[str] = set()
    for text in texts:
        for token in tokenizer(text):
            wanted.update((token, token.lower()))
    kept = []
    with gzip.open(source, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle):
            if number < GLOVE_TOP_WORDS or line.split(" ", 1)[0] in wanted:
                kept.append(line)
    folder = out / "glove"
    folder.mkdir(parents=True)
    with open(folder / "glove.6B.50d.txt.gz", "wb") as raw:
        # mtime=0 and no file name in the header: the same input gives the same bytes
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as handle:
            handle.write("".join(kept).encode("utf-8"))
    return len(kept)


def short_review(text: str, max_sentences: int = OWN_MAX_SENTENCES, max_chars: int = OWN_MAX_CHARS) -> str:
    """The closing of a review, where its verdict usually is: its last sentences, at most
    `max_sentences` and `max_chars` characters (a review's opening is often plot or context,
    such as "A friend and I went to see this movie.").

    HTML line breaks and runs of white space become single spaces. A last sentence longer than
    `max_chars` keeps its end, cut at the first space within the limit, after "...".
    """
    text = " ".join(text.replace("<br />", " ").split())
    kept = ""
    for sentence in reversed(SENTENCE_END.split(text)[-max_sentences:]):
        candidate = f"{sentence} {kept}".strip()
        if len(candidate) > max_chars:
            break
        kept = candidate
    if not kept:
        kept = "..." + text[-max_chars:].split(" ", 1)[-1]
    return kept


def make_own_reviews(out: Path, imdb: Path | None = None, seed: int = OWN_SEED) -> int:
    """Write out/own/reviews.csv from the IMDb sample in `imdb` (default out/imdb): columns review,
    sentiment ("positive" / "negative") and source (the review's file in aclImdb); returns the row count."""
    root = (imdb or out / "imdb") / "aclImdb"
    rows = [{"review": short_review(path.read_text(encoding="utf-8")),
             "sentiment": "positive" if path.parent.name == "pos" else "negative",
             "source": path.relative_to(root.parent).as_posix()}
            for path in sorted(root.glob("*/*/*.txt"))]
    random.Random(seed).shuffle(rows)   # labels mixed, as in a file someone collected
    folder = out / "own"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "reviews.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["review", "sentiment", "source"])
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", nargs="?", default=str(REPO_ROOT.parent / "shared" / "data"),
                        help="real data folder (default: ../shared/data from the repository root)")
    parser.add_argument("--out", default=str(OUT), help="output folder (replaced)")
    parser.add_argument("--own-only", action="store_true",
                        help="only rebuild own/reviews.csv from the IMDb sample already in the output folder")
    args = parser.parse_args(argv)
    source, out = Path(args.data_dir), Path(args.out)
    if args.own_only:
        print(f"wrote {out / 'own' / 'reviews.csv'}: {make_own_reviews(out)} short reviews")
        return
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    rng = random.Random(SEED)
    texts = make_imdb(source / "imdb" / "aclImdb_v1.tar.gz", out, rng)
    texts += make_trec(source / "trec", out, rng)
    n_vectors = make_glove(source / "glove" / "glove.6B.50d.txt.gz", out, texts)
    n_own = make_own_reviews(out)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {out}: {2 * REVIEWS_PER_FOLDER} IMDb reviews per split, "
          f"{TREC_TRAIN_LINES}/{TREC_TEST_LINES} TREC lines, {n_vectors} GloVe vectors, {n_own} short reviews in own/reviews.csv; "
          f"{size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
