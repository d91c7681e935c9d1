"""Datasets: IMDb, TREC and your own CSV / TSV / JSON Lines, read, split and cached.

Readers return `TextDataset`s of raw text; the `load_*` functions also tokenize
them and keep the result in a prepared cache, so a second load skips spaCy.
"""
from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import json
import os
import tarfile
import zlib
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .corpus import TokenizedCorpus, tokenize_corpus
from .files import DataError, atomic_path, cache_dir, data_dir, fetch
from .progress import progress
from .text import Tokenizer

IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
IMDB_SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"
IMDB_REVIEWS_PER_FOLDER = 12_500
TREC_FILES = {
    "train": ("train_5500.label", "https://cogcomp.seas.upenn.edu/Data/QA/QC/train_5500.label",
              "9e4c8bdcaffb96ed61041bd64b564183d52793a8e91d84fc3a8646885f466ec3"),
    "test": ("TREC_10.label", "https://cogcomp.seas.upenn.edu/Data/QA/QC/TREC_10.label",
             "033f22c028c2bbba9ca682f68ffe204dc1aa6e1cf35dd6207f2d4ca67f0d0e8e"),
}
CACHE_FORMAT = 1


@dataclass
class TextDataset:
    """Texts with integer labels. `labels`: int64 [n]; `label_names[i]` names label i;
    `tokens`: the tokenized texts once prepared (None before)."""

    texts: list[str]
    labels: np.ndarray
    label_names: list[str]
    tokens: TokenizedCorpus | None = field(default=None, repr=False)

    def __post_init__(self):
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if len(self.texts) != len(self.labels):
            raise ValueError(f"{len(self.texts)} texts but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.texts)

    def __repr__(self) -> str:
        counts = np.bincount(self.labels, minlength=len(self.label_names))
        return f"TextDataset({len(self)} examples, {dict(zip(self.label_names, counts.tolist()))})"

    def subset(self, indices) -> "TextDataset":
        """The examples at `indices` (texts, labels and tokens alike)."""
        indices = np.asarray(indices, dtype=np.int64)
        return replace(self, texts=[self.texts[i] for i in indices], labels=self.labels[indices],
                       tokens=None if self.tokens is None else self.tokens.subset(indices))

    def head(self, n: int) -> "TextDataset":
        return self.subset(np.arange(min(n, len(self))))


def stratified_split(dataset: TextDataset, valid_fraction: float = 0.3, seed: int = 1234
                     ) -> tuple[TextDataset, TextDataset]:
    """Split into (train, valid) keeping each label's share; same seed, same split.

    The tutorials' `train_data.split(random_state=...)` made a plain random 70/30 split
    (torchtext's `stratified=False` default); this one keeps the label shares exact.
    """
    if not 0 < valid_fraction < 1:
        raise ValueError(f"valid_fraction must be between 0 and 1, got {valid_fraction}")
    rng = np.random.default_rng(seed)
    train_idx, valid_idx = [], []
    for label in np.unique(dataset.labels):
        members = rng.permutation(np.flatnonzero(dataset.labels == label))
        n_valid = int(round(len(members) * valid_fraction))
        valid_idx.append(members[:n_valid])
        train_idx.append(members[n_valid:])
    # shuffled so batches and `head(n)` mix the labels
    return (dataset.subset(rng.permutation(np.concatenate(train_idx))),
            dataset.subset(rng.permutation(np.concatenate(valid_idx))))


def sample_per_label(dataset: TextDataset, n: int, seed: int = 0) -> TextDataset:
    """At most `n` examples, balanced across labels as far as possible (for smoke runs).

    Labels take turns (round-robin), so a rare class keeps its few examples.
    """
    if n >= len(dataset):
        return dataset
    order = np.random.default_rng(seed).permutation(len(dataset))
    groups = [list(order[dataset.labels[order] == label]) for label in range(len(dataset.label_names))]
    picked = []
    while len(picked) < n:
        for group in groups:
            if group and len(picked) < n:
                picked.append(group.pop(0))
    return dataset.subset(np.sort(picked))


# ---------------------------------------------------------------------------- IMDb

def _imdb_source(data_directory: Path | None, cache: Path | None) -> Path:
    """The extracted `aclImdb` folder or the archive to read, local copy first."""
    if data_directory is not None:
        for candidate in (data_directory / "imdb" / "aclImdb", data_directory / "imdb" / "aclImdb_v1.tar.gz"):
            if candidate.exists():
                return candidate
        raise DataError(f"no IMDb data in {data_directory}: expected imdb/aclImdb/ or imdb/aclImdb_v1.tar.gz")
    return fetch(IMDB_URL, IMDB_SHA256, "aclImdb_v1.tar.gz", cache)


def _imdb_member(name: str) -> tuple[str, str] | None:
    """('train'|'test', 'neg'|'pos') for a review file's path inside aclImdb, else None."""
    parts = name.split("/")
    if len(parts) == 4 and parts[0] == "aclImdb" and parts[1] in ("train", "test") \
            and parts[2] in ("neg", "pos") and parts[3].endswith(".txt"):
        return parts[1], parts[2]
    return None


def read_imdb(data_directory: str | os.PathLike | None = None, cache: str | os.PathLike | None = None
              ) -> dict[str, TextDataset]:
    """IMDb's official split: {"train": 25,000, "test": 25,000}, labels 0 = neg, 1 = pos.

    Reads `<data_dir>/imdb/aclImdb/` or `<data_dir>/imdb/aclImdb_v1.tar.gz`, or downloads
    the official archive (sha256-checked). A local copy is checked by content:
    exactly 12,500 reviews in each of train/test x neg/pos. Reviews are decoded as UTF-8
    with errors="replace" (a byte that is not UTF-8 becomes U+FFFD), unlike `read_table`,
    which refuses such bytes; kept so that tokens, caches and results stay as they were.
    """
    return _read_imdb_source(_imdb_source(data_dir(data_directory), cache))


def _expected_per_folder(source: Path) -> int:
    """12,500, unless a trimmed copy (like the test fixtures) declares its size in
    `expected_counts.json` beside it: {"reviews_per_folder": N}."""
    declared = source.parent / "expected_counts.json"
    if declared.is_file():
        return int(json.loads(declared.read_text(encoding="utf-8"))["reviews_per_folder"])
    return IMDB_REVIEWS_PER_FOLDER


def _read_imdb_source(source: Path) -> dict[str, TextDataset]:
    expected = _expected_per_folder(source)
    found: dict[tuple[str, str], list[tuple[str, str]]] = {}
    if source.is_dir():
        for split in ("train", "test"):
            for label in ("neg", "pos"):
                folder = source / split / label
                files = sorted(folder.glob("*.txt")) if folder.is_dir() else []
                found[(split, label)] = [(f.name, f.read_text(encoding="utf-8", errors="replace")) for f in files]
    else:
        try:
            with tarfile.open(source, "r|gz") as archive:
                for member in progress(archive, desc=f"reading {source.name}", unit="file"):
                    key = _imdb_member(member.name) if member.isfile() else None
                    if key:
                        text = archive.extractfile(member).read().decode("utf-8", errors="replace")
                        found.setdefault(key, []).append((member.name.rsplit("/", 1)[1], text))
        except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
            raise DataError(f"{source} is truncated or corrupt ({type(err).__name__}: {err})") from None
    datasets = {}
    for split in ("train", "test"):
        texts, labels = [], []
        for label_index, label in enumerate(("neg", "pos")):
            reviews = sorted(found.get((split, label), []))
            if len(reviews) != expected:
                raise DataError(f"{source} has the wrong layout: expected {expected} reviews in "
                                f"aclImdb/{split}/{label}/, found {len(reviews)}")
            texts += [text for _, text in reviews]
            labels += [label_index] * len(reviews)
        datasets[split] = TextDataset(texts, np.array(labels), ["neg", "pos"])
    return datasets


# ---------------------------------------------------------------------------- TREC

def _trec_path(split: str, data_directory: Path | None, cache) -> Path:
    filename, url, sha256 = TREC_FILES[split]
    if data_directory is None:
        return fetch(url, sha256, filename, cache)
    path = data_directory / "trec" / filename
    if not path.is_file():
        raise DataError(f"no TREC file {path}: expected trec/{filename} in the data directory")
    return path


def read_trec(data_directory: str | os.PathLike | None = None, fine: bool = False,
              cache: str | os.PathLike | None = None) -> dict[str, TextDataset]:
    """TREC question classification: {"train": 5,452, "test": 500}.

    Labels are the 6 coarse classes (`fine=False`, e.g. "HUM") or the 50 fine ones
    ("HUM:ind"), numbered by falling frequency in train like torchtext's LabelField.
    The train file has one byte that is not UTF-8; it is decoded as U+FFFD (errors="replace",
    unlike `read_table`, which refuses such bytes), which the lessons' results depend on.
    """
    directory = data_dir(data_directory)
    raw = {}
    for split in ("train", "test"):
        path = _trec_path(split, directory, cache)
        rows = []
        for number, line in enumerate(path.read_bytes().decode("utf-8", errors="replace").splitlines(), 1):
            if not line.strip():
                continue
            label, _, text = line.partition(" ")
            if ":" not in label or not text.strip():
                raise DataError(f"{path} line {number} is not 'COARSE:fine question': {line[:60]!r}")
            rows.append((label if fine else label.split(":")[0], text.strip()))
        raw[split] = rows
    counts = Counter(label for label, _ in raw["train"])
    names = sorted(counts, key=lambda name: (-counts[name], name))
    unknown = {label for label, _ in raw["test"]} - set(names)
    if unknown:
        raise DataError(f"TREC test labels missing from train: {sorted(unknown)}")
    index = {name: i for i, name in enumerate(names)}
    return {split: TextDataset([t for _, t in rows], np.array([index[l] for l, _ in rows]), names)
            for split, rows in raw.items()}


# ---------------------------------------------------------------------------- your own data

def read_table(path: str | os.PathLike, text_column: str = "text", label_column: str = "label",
               label_names: list[str] | None = None, encoding: str = "utf-8", errors: str = "strict"
               ) -> TextDataset:
    """Read a .csv, .tsv or .jsonl(.gz) file with named text and label columns.

    Labels may be strings or numbers; they are numbered in sorted order unless
    `label_names` fixes the order. Raises DataError naming the file and the problem.

    The file is decoded as `encoding` (UTF-8 by default; a UTF-8 byte order mark, as
    spreadsheet programs write in "CSV UTF-8", is skipped). Bytes that are not valid in that
    encoding are a DataError naming the line, unless `errors="replace"` (U+FFFD for each)
    or another of Python's codec error handlers is asked for.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist")
    if codecs.lookup(encoding).name == "utf-8":
        encoding = "utf-8-sig"  # reads files without a byte order mark exactly as utf-8 does
    codecs.lookup_error(errors)  # an unknown handler is the caller's mistake: LookupError now, not mid-file
    suffixes = [s.lower() for s in path.suffixes]
    opener = gzip.open if suffixes[-1:] == [".gz"] else open
    kind = suffixes[-2] if suffixes[-1:] == [".gz"] and len(suffixes) > 1 else (suffixes[-1] if suffixes else "")
    try:
        with opener(path, "rt", encoding=encoding, errors=errors, newline="") as handle:
            if kind in (".csv", ".tsv"):
                reader = csv.DictReader(handle, delimiter="," if kind == ".csv" else "\t")
                columns = reader.fieldnames or []
                rows = list(reader)
            elif kind in (".jsonl", ".json", ".ndjson"):
                rows = []
                for number, line in enumerate(handle, 1):
                    if line.strip():
                        rows.append(_json_object(line, path, number))
                columns = sorted({key for row in rows for key in row})
            else:
                raise DataError(f"{path}: unsupported file type {kind or '(none)'}; use .csv, .tsv or .jsonl")
    except UnicodeDecodeError as err:
        raise DataError(_undecodable(path, opener, encoding, err)) from None
    except (OSError, EOFError, UnicodeError, csv.Error) as err:
        raise DataError(f"{path} could not be read: {err}") from None
    for column in (text_column, label_column):
        if column not in columns:
            raise DataError(f"{path} has no column {column!r} (columns: {', '.join(map(str, columns)) or 'none'})")
    texts, raw_labels = [], []
    for number, row in enumerate(rows, 1):
        text, label = row.get(text_column), row.get(label_column)
        if not isinstance(text, str) or label is None or label == "":
            raise DataError(f"{path} row {number}: missing {text_column!r} text or {label_column!r} label")
        texts.append(text)
        raw_labels.append(str(label))
    if not texts:
        raise DataError(f"{path} has no rows")
    names = [str(n) for n in label_names] if label_names else sorted(set(raw_labels))
    index = {name: i for i, name in enumerate(names)}
    unknown = sorted(set(raw_labels) - set(index))
    if unknown:
        raise DataError(f"{path} has labels not in label_names: {unknown[:5]}")
    return TextDataset(texts, np.array([index[label] for label in raw_labels]), names)


def _json_object(line: str, path: Path, number: int) -> dict:
    """Line `number` of the JSON Lines file `path` as a dict, or DataError naming the file and line."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as err:
        raise DataError(f"{path} line {number} is not valid JSON: {err.msg}") from None
    except ValueError as err:  # an integer beyond Python's int-digit limit
        raise DataError(f"{path} line {number} is not valid JSON: {err}") from None
    except RecursionError:
        raise DataError(f"{path} line {number} is not valid JSON: nested too deeply") from None
    if not isinstance(row, dict):
        raise DataError(f"{path} line {number} is not a JSON object")
    for key, value in row.items():
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:  # "\ud800" escapes decode to lone surrogates, which no file can hold
                raise DataError(f"{path} line {number}: {key!r} is not valid Unicode "
                                f"(a lone surrogate such as \\ud800)") from None
    return row


def _undecodable(path: Path, opener, encoding: str, err: UnicodeDecodeError) -> str:
    """The message for a file that is not valid `encoding`: which line holds the first bad bytes.

    The text reader does not know line numbers, so the file is read again as bytes, line by line,
    up to the first line that does not decode.
    """
    decoder = codecs.getincrementaldecoder(encoding)()
    where, bad = "", err.object[err.start:err.end]
    with opener(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            try:
                decoder.decode(raw)
            except UnicodeDecodeError as line_err:
                where, bad = f" line {number}", line_err.object[line_err.start:line_err.end]
                break
    name = encoding.removesuffix("-sig")
    return (f"{path}{where} is not valid {name} text ({err.reason}: byte(s) {bad!r}); pass the file's "
            f"encoding (e.g. encoding=\"latin-1\"), or errors=\"replace\" to read such bytes as U+FFFD")


# ---------------------------------------------------------------------------- prepared cache

def _fingerprint(path: Path) -> dict:
    """Cheap identity of a file or folder (size and mtime), enough to notice a changed source."""
    if path.is_dir():
        stats = [(str(p.relative_to(path)), p.stat().st_mtime_ns) for p in sorted(path.rglob("*")) if p.is_dir()]
        return {"path": str(path.resolve()), "dirs": stats,
                "files": sum(len(os.listdir(path / d)) for d, _ in stats) if stats else 0}
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _cached(key: dict, build, cache: str | os.PathLike | None) -> dict[str, TextDataset]:
    """Return `build()` (a dict of tokenized TextDatasets), stored under a hash of `key`.

    The entry is written to a temporary folder and renamed, so an interrupted run
    leaves no half-written cache; an unreadable entry is rebuilt.
    """
    digest = hashlib.sha256(json.dumps({**key, "format": CACHE_FORMAT}, sort_keys=True).encode()).hexdigest()[:20]
    folder = cache_dir(cache) / "prepared" / f"{key['dataset']}-{digest}"
    if (folder / "meta.json").is_file():
        try:
            meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
            result = {}
            for split in meta["splits"]:
                texts = json.loads((folder / split / "texts.json").read_text(encoding="utf-8"))
                result[split] = TextDataset(texts, np.load(folder / split / "labels.npy"), meta["label_names"],
                                            TokenizedCorpus.load(folder / split))
            return result
        except (OSError, ValueError, KeyError):
            pass  # damaged entry: rebuild below
    result = build()
    with atomic_path(folder) as tmp:
        tmp.mkdir()
        for split, dataset in result.items():
            dataset.tokens.save(tmp / split)
            np.save(tmp / split / "labels.npy", dataset.labels)
            (tmp / split / "texts.json").write_text(json.dumps(dataset.texts, ensure_ascii=False), encoding="utf-8")
        meta = {"key": key, "splits": list(result), "label_names": next(iter(result.values())).label_names}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return result


def tokenize_dataset(dataset: TextDataset, tokenizer: Tokenizer, workers: int | None = None,
                     desc: str = "tokenizing") -> TextDataset:
    """The same dataset with `tokens` filled in."""
    return replace(dataset, tokens=tokenize_corpus(dataset.texts, tokenizer, workers=workers, desc=desc))


def _load(name: str, source: dict, read, tokenizer: Tokenizer | None, cache, use_cache: bool, workers,
          sample: int | None = None, seed: int = 0):
    tokenizer = tokenizer or Tokenizer()
    if sample is not None:
        # a small run: sample the raw texts first and tokenize only those, with no cache
        splits = {split: sample_per_label(dataset, sample, seed) for split, dataset in read().items()}
        return {split: tokenize_dataset(dataset, tokenizer, workers=1, desc=f"tokenizing {name} {split}")
                for split, dataset in splits.items()}

    def build():
        # one pass over all splits: a single worker pool, and one shared word list
        splits = read()
        texts = [text for dataset in splits.values() for text in dataset.texts]
        corpus = tokenize_corpus(texts, tokenizer, workers=workers, desc=f"tokenizing {name}")
        bounds = np.cumsum([0, *(len(dataset) for dataset in splits.values())])
        return {split: replace(dataset, tokens=corpus.subset(np.arange(start, stop)))
                for (split, dataset), start, stop in zip(splits.items(), bounds[:-1], bounds[1:])}

    if not use_cache:
        return build()
    return _cached({"dataset": name, "source": source, "tokenizer": tokenizer.config}, build, cache)


def load_imdb(tokenizer: Tokenizer | None = None, data_directory=None, cache=None, use_cache: bool = True,
              workers: int | None = None, sample: int | None = None) -> dict[str, TextDataset]:
    """`read_imdb` plus tokenizing, through the prepared cache: {"train", "test"} with `tokens`.

    `sample=N` keeps at most N label-balanced examples per split (smoke runs) and skips the cache.
    """
    source = _imdb_source(data_dir(data_directory), cache)
    return _load("imdb", _fingerprint(source), lambda: _read_imdb_source(source), tokenizer, cache,
                 use_cache, workers, sample)


def load_trec(tokenizer: Tokenizer | None = None, data_directory=None, fine: bool = False, cache=None,
              use_cache: bool = True, workers: int | None = None, sample: int | None = None
              ) -> dict[str, TextDataset]:
    """`read_trec` plus tokenizing, through the prepared cache: {"train", "test"} with `tokens`.

    `sample=N` keeps at most N label-balanced examples per split and skips the cache.
    """
    directory = data_dir(data_directory)
    source = {split: _fingerprint(_trec_path(split, directory, cache)) for split in TREC_FILES}
    return _load(f"trec-{'fine' if fine else 'coarse'}", source,
                 lambda: read_trec(directory, fine=fine, cache=cache), tokenizer, cache, use_cache, workers, sample)


def load_table(path, text_column: str = "text", label_column: str = "label", label_names=None,
               tokenizer: Tokenizer | None = None, cache=None, use_cache: bool = True,
               workers: int | None = None, encoding: str = "utf-8", errors: str = "strict") -> TextDataset:
    """`read_table` (same `encoding` and `errors`) plus tokenizing, through the prepared cache."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist")
    source = {**_fingerprint(path), "columns": [text_column, label_column], "labels": label_names,
              "encoding": encoding, "errors": errors}
    return _load("table", source,
                 lambda: {"all": read_table(path, text_column, label_column, label_names, encoding, errors)},
                 tokenizer, cache, use_cache, workers)["all"]
