"""Datasets: IMDb, TREC and your own CSV / TSV / JSON Lines, read, split and cached.

Readers return `TextDataset`s of raw text; the `load_*` functions also tokenize
them and keep the result in a prepared cache, so a second load skips spaCy.
"""
from __future__ import annotations

import array
import codecs
import csv
import decimal
import gzip
import hashlib
import io
import json
import math
import os
import re
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


_TREC_LABEL = re.compile(r"[^\s:]+:[^\s:]+")  # COARSE:fine, e.g. HUM:ind


def _trec_rows(path: Path) -> list[tuple[str, str]]:
    """(fine label, question) for each non-blank line of a TREC file.

    Lines end at line feeds only: str.splitlines would also cut a question at a form feed, a file
    separator, U+0085 or U+2028, making two rows of one. A CRLF file reads like an LF one; a carriage
    return anywhere else (a file with old Mac line endings) is refused rather than guessed at.
    """
    rows = []
    for number, line in enumerate(path.read_bytes().decode("utf-8", errors="replace").split("\n"), 1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        if "\r" in line:
            raise DataError(f"{path} line {number} holds a carriage return (\\r) that ends no line: "
                            f"{line[:60]!r}; TREC files end lines with line feeds")
        label, _, text = line.partition(" ")
        if not _TREC_LABEL.fullmatch(label) or not text.strip():
            raise DataError(f"{path} line {number} is not 'COARSE:fine question': {line[:60]!r}")
        rows.append((label, text.strip()))
    return rows


def read_trec(data_directory: str | os.PathLike | None = None, fine: bool = False,
              cache: str | os.PathLike | None = None) -> dict[str, TextDataset]:
    """TREC question classification: {"train": 5,452, "test": 500}.

    Labels are the 6 coarse classes (`fine=False`, e.g. "HUM") or the 50 fine ones
    ("HUM:ind"), numbered by falling frequency in train like torchtext's LabelField.
    The train file has one byte that is not UTF-8; it is decoded as U+FFFD (errors="replace",
    unlike `read_table`, which refuses such bytes), which the lessons' results depend on.
    A row is a line ending in a line feed (or CRLF); a question keeps any other control or separator
    character it holds (form feed, U+2028, ...), with the spaces around it stripped.
    """
    directory = data_dir(data_directory)
    raw = {}
    for split in ("train", "test"):
        path = _trec_path(split, directory, cache)
        raw[split] = [(label if fine else label.split(":")[0], text) for label, text in _trec_rows(path)]
    counts = Counter(label for label, _ in raw["train"])
    names = sorted(counts, key=lambda name: (-counts[name], name))
    unknown = {label for label, _ in raw["test"]} - set(names)
    if unknown:
        raise DataError(f"TREC test labels missing from train: {sorted(unknown)}")
    index = {name: i for i, name in enumerate(names)}
    return {split: TextDataset([t for _, t in rows], np.array([index[l] for l, _ in rows]), names)
            for split, rows in raw.items()}


# ---------------------------------------------------------------------------- your own data

# Reading a table is bounded: a .gz file may hold at most this much once decompressed (a few kilobytes
# of gzip can hold gigabytes), and one row (a CSV / TSV record or a JSON line) at most this many
# characters, so that a file's size, not its shape, decides what reading it costs.
DEFAULT_MAX_DECOMPRESSED_BYTES = 256 * 2**20
DEFAULT_MAX_ROW_CHARS = 1_000_000
_TABLE_DELIMITERS = {".csv": ",", ".tsv": "\t", ".jsonl": None, ".json": None, ".ndjson": None}
# a label written as a number: "1", "-2.5", "1e3" (then "1" and "1.0" are one class written two ways)
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def read_table(path: str | os.PathLike, text_column: str = "text", label_column: str = "label",
               label_names: list[str] | None = None, encoding: str = "utf-8", errors: str = "strict",
               quotes: bool | None = None, max_decompressed_bytes: int | None = DEFAULT_MAX_DECOMPRESSED_BYTES,
               max_row_chars: int = DEFAULT_MAX_ROW_CHARS) -> TextDataset:
    """Read a .csv, .tsv or .jsonl file (each optionally .gz) with named text and label columns.

    Every text and label is kept exactly as the file has it; anything that reading would have to
    guess at is a DataError naming the file and the line:

    - rows: a CSV / TSV row with more or fewer fields than the header, a header naming a column twice,
      a JSON line naming a key twice or lacking the text or label;
    - labels: an empty one, labels of different types (1, 1.0, true and "1" in JSON Lines), and two
      spellings of one class ("1" and "1.0", or "pos" and "pos "), which would otherwise be two classes.
      Labels are strings, numbers or true/false, named by `str()` ("1", "True"), and numbered in
      sorted order unless `label_names` fixes the order (a label not in it is refused).

    `quotes`: whether double quotes delimit fields. By default CSV files honour them (RFC 4180: a text
    holding a comma or a line break is quoted) and TSV files do not (a `"` is an ordinary character and
    a text cannot hold a tab or a line break, as in the IANA TSV format); pass `quotes=True` for a TSV
    written with CSV quoting (pandas' `to_csv(sep="\t")`). CSV / TSV fields longer than Python's
    `csv.field_size_limit()` (131,072 characters unless raised) are refused by the csv module.

    The file is decoded as `encoding` (UTF-8 by default; a UTF-8 byte order mark, as spreadsheet
    programs write in "CSV UTF-8", is skipped). Bytes that are not valid in that encoding are a
    DataError naming the line, unless `errors="replace"` (U+FFFD for each) or another of Python's codec
    error handlers is asked for.

    Bounds: a .gz file is decompressed as it is read and refused once it yields more than
    `max_decompressed_bytes` (None: no bound); a row longer than `max_row_chars` characters is refused.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist")
    if codecs.lookup(encoding).name == "utf-8":
        encoding = "utf-8-sig"  # reads files without a byte order mark exactly as utf-8 does
    codecs.lookup_error(errors)  # an unknown handler is the caller's mistake: LookupError now, not mid-file
    if max_decompressed_bytes is not None and max_decompressed_bytes < 1:
        raise ValueError(f"max_decompressed_bytes must be positive or None, got {max_decompressed_bytes}")
    if max_row_chars < 1:
        raise ValueError(f"max_row_chars must be positive, got {max_row_chars}")
    names = None if label_names is None else _label_names_argument(label_names)
    suffixes = [s.lower() for s in path.suffixes]
    compressed = suffixes[-1:] == [".gz"]
    kind = suffixes[-2] if compressed and len(suffixes) > 1 else (suffixes[-1] if suffixes else "")
    if kind not in _TABLE_DELIMITERS:
        raise DataError(f"{path}: unsupported file type {kind or '(none)'}; use .csv, .tsv or .jsonl")
    delimiter = _TABLE_DELIMITERS[kind]
    if quotes is not None and delimiter is None:
        raise ValueError(f"quotes= applies to .csv and .tsv files, not {kind}")
    texts, labels = [], _TableLabels(path, label_column)
    try:
        with _open_table_text(path, compressed, encoding, errors, max_decompressed_bytes) as handle:
            lines = _RowLines(handle, path, max_row_chars)
            if delimiter is None:
                rows = _json_rows(lines, path, text_column, label_column)
            else:
                rows = _delimited_rows(lines, path, delimiter, kind == ".csv" if quotes is None else quotes,
                                       text_column, label_column)
            for number, text, label in rows:
                texts.append(text)
                labels.add(label, number)
    except UnicodeDecodeError as err:
        raise DataError(_undecodable(path, compressed, encoding, err, max_decompressed_bytes)) from None
    except (OSError, EOFError, UnicodeError, zlib.error) as err:
        raise DataError(f"{path} could not be read: {err}") from None
    if not texts:
        raise DataError(f"{path} has no rows")
    return TextDataset(texts, *labels.numbered(names))


def _label_names_argument(label_names) -> list[str]:
    """`label_names` as the strings labels are matched by; the same name twice is the caller's mistake."""
    names = [str(name) for name in label_names]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"label_names names {', '.join(map(repr, repeated))} more than once")
    return names


class _TableLabels:
    """A table's labels as read, one name per row; refuses a label set that would split or hide a class."""

    def __init__(self, path: Path, column: str):
        self.path, self.column = path, column
        self.rows = array.array("i")  # each row's label, as its place in `first_line` (4 bytes a row)
        self.ids: dict[tuple[type, object], int] = {}  # (type, value) -> place: 1, 1.0 and True differ
        self.first_line: dict[str, int] = {}  # label name -> line it first occurs on, in that order
        self.spellings: dict[object, tuple[object, int]] = {}  # the class a spelling stands for -> first
        self.first_kind: tuple[str, object, int] | None = None

    def add(self, value, line: int) -> None:
        if isinstance(value, (list, dict)):
            self._new(value, line)  # refused there (and not hashable)
        key = (type(value), value)
        place = self.ids.get(key)
        if place is None:  # a label not seen before: checked once
            self._new(value, line)
            place = self.ids[key] = len(self.ids)
        self.rows.append(place)

    def _new(self, value, line: int) -> None:
        where = f"{self.path} line {line}"
        if value is None or (isinstance(value, str) and not value.strip()):
            raise DataError(f"{where}: empty {self.column!r} label")
        if isinstance(value, bool):
            kind, spelling = "true/false", value
        elif isinstance(value, (int, float)):
            if isinstance(value, float) and not math.isfinite(value):
                raise DataError(f"{where}: label {value} is not a finite number")
            kind, spelling = "number", decimal.Decimal(value)
        elif isinstance(value, str):
            stripped = value.strip()
            kind, spelling = "string", decimal.Decimal(stripped) if _NUMBER.fullmatch(stripped) else stripped
        else:
            raise DataError(f"{where}: {self.column!r} is a JSON {'array' if isinstance(value, list) else 'object'};"
                            f" a label is a string, a number or true/false")
        shown = json.dumps(value) if not isinstance(value, str) else repr(value)
        if self.first_kind is None:
            self.first_kind = (kind, shown, line)
        elif self.first_kind[0] != kind:
            first_kind, first_shown, first_line = self.first_kind
            raise DataError(f"{self.path} has labels of different types: {first_shown} ({first_kind}) on line "
                            f"{first_line} and {shown} ({kind}) on line {line}, which would be different "
                            f"classes; write every label the same way (for example all as strings)")
        if spelling in self.spellings:
            other, other_line = self.spellings[spelling]
            how = "the same number written two ways" if isinstance(spelling, decimal.Decimal) else \
                "the same label but for spaces"
            raise DataError(f"{self.path}: labels {other} (line {other_line}) and {shown} (line {line}) are {how},"
                            f" which would be two classes; write each class one way")
        if str(value) in self.first_line:  # cannot happen after the checks above; the ids rely on it
            raise DataError(f"{where}: label {shown} has the name of another label ({str(value)!r})")
        self.spellings[spelling] = (shown, line)
        self.first_line[str(value)] = line

    def numbered(self, label_names: list[str] | None) -> tuple[np.ndarray, list[str]]:
        """(label index per row, int64 [n rows]; the names in index order)."""
        names = label_names if label_names is not None else sorted(self.first_line)
        index = {name: i for i, name in enumerate(names)}
        unknown = sorted(set(self.first_line) - set(index), key=self.first_line.get)
        if unknown:
            raise DataError(f"{self.path} has labels not in label_names: {unknown[:5]} "
                            f"(first on line {self.first_line[unknown[0]]})")
        table = np.array([index[name] for name in self.first_line], dtype=np.int64)
        return table[np.frombuffer(self.rows, dtype=np.int32)], names


class _RowLines:
    """The lines of a text file for a row reader, refusing a row longer than `max_row_chars` characters
    before it is in memory. `start_row()` marks where the next row begins; `first` is its line number."""

    def __init__(self, handle, path: Path, max_row_chars: int):
        self.handle, self.path, self.max_row_chars = handle, path, max_row_chars
        self.line = 0  # lines read so far
        self.first, self.chars = 1, 0

    def start_row(self) -> None:
        self.first, self.chars = self.line + 1, 0

    def __iter__(self):
        return self

    def __next__(self) -> str:
        text = self.handle.readline(self.max_row_chars - self.chars + 1)
        if not text:
            raise StopIteration
        self.line += 1
        self.chars += len(text)
        if self.chars > self.max_row_chars:
            raise DataError(f"{self.path} line {self.first}: a row longer than {self.max_row_chars:,} characters "
                            f"(max_row_chars)")
        return text


def _delimited_rows(lines: _RowLines, path: Path, delimiter: str, quotes: bool, text_column: str,
                    label_column: str):
    """(line number, text, label) for each data row of a CSV or TSV file, read a row at a time."""
    reader = csv.reader(lines, delimiter=delimiter, strict=True, quoting=csv.QUOTE_MINIMAL if quotes else csv.QUOTE_NONE)

    def next_row():
        lines.start_row()
        try:
            return next(reader, None)
        except csv.Error as err:
            hint = " (csv.field_size_limit() raises the limit)" if "field limit" in str(err) else ""
            raise DataError(f"{path} line {lines.line}: {err}{hint}") from None

    header = next_row() or []
    repeated = [name for i, name in enumerate(header) if name in header[:i]]
    if repeated:
        raise DataError(f"{path} line {lines.first}: the header names column {repeated[0]!r} twice "
                        f"(columns: {', '.join(header)})")
    for column in (text_column, label_column):
        if column not in header:
            raise DataError(f"{path} has no column {column!r} (columns: {', '.join(header) or 'none'})")
    text_at, label_at = header.index(text_column), header.index(label_column)
    while (row := next_row()) is not None:
        if not row:
            continue  # a blank line
        if len(row) != len(header):
            if not quotes and any('"' in field for field in row):
                hint = "; if the file quotes texts as CSV does (pandas' to_csv(sep=\"\\t\")), pass quotes=True"
            elif delimiter == "," and len(row) > len(header):
                hint = "; a text that holds a comma must be in double quotes"
            else:
                hint = ""
            raise DataError(f"{path} line {lines.first} has {len(row)} field{'s' * (len(row) != 1)} but the "
                            f"header has {len(header)}{hint}")
        yield lines.first, row[text_at], row[label_at]


def _json_rows(lines: _RowLines, path: Path, text_column: str, label_column: str):
    """(line number, text, label) for each object of a JSON Lines file; blank lines are skipped."""
    while True:
        lines.start_row()
        line = next(lines, None)
        if line is None:
            return
        if not line.strip():
            continue
        row = _json_object(line, path, lines.first)
        for column in (text_column, label_column):
            if column not in row:
                raise DataError(f"{path} line {lines.first} has no {column!r} (keys: {', '.join(row) or 'none'})")
        text = row[text_column]
        if not isinstance(text, str):
            raise DataError(f"{path} line {lines.first}: {text_column!r} is {json.dumps(text)[:40]}, not a string")
        yield lines.first, text, row[label_column]


class _RepeatedKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """A JSON object's dict, refusing a key named twice (json.loads would keep the last silently)."""
    row = dict(pairs)
    if len(row) != len(pairs):
        raise _RepeatedKey(next(key for i, (key, _) in enumerate(pairs) if key in dict(pairs[:i])))
    return row


def _json_object(line: str, path: Path, number: int) -> dict:
    """Line `number` of the JSON Lines file `path` as a dict, or DataError naming the file and line."""
    try:
        row = json.loads(line, object_pairs_hook=_unique_keys)
    except _RepeatedKey as err:
        raise DataError(f"{path} line {number} names the key {err.args[0]!r} twice") from None
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


class _CappedStream(io.RawIOBase):
    """The decompressed bytes of a .gz file, read as they are needed; DataError past `limit` bytes."""

    def __init__(self, path: Path, limit: int | None):
        self.path, self.limit, self.total = path, limit, 0
        self.inner = gzip.open(path, "rb")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = self.inner.readinto(buffer)
        self.total += count
        if self.limit is not None and self.total > self.limit:
            raise DataError(f"{self.path} holds more than {self.limit:,} bytes once decompressed "
                            f"(max_decompressed_bytes); pass a larger max_decompressed_bytes if it is meant to")
        return count

    def close(self) -> None:
        self.inner.close()
        super().close()


def _open_table_bytes(path: Path, compressed: bool, max_decompressed_bytes: int | None):
    """A binary reader of the table's content: the file, or its decompressed bytes up to the limit."""
    if not compressed:
        return open(path, "rb")
    return io.BufferedReader(_CappedStream(path, max_decompressed_bytes), buffer_size=1 << 16)


def _open_table_text(path: Path, compressed: bool, encoding: str, errors: str, max_decompressed_bytes: int | None):
    # newline="": line endings reach the csv module untranslated, as it needs
    return io.TextIOWrapper(_open_table_bytes(path, compressed, max_decompressed_bytes), encoding=encoding,
                            errors=errors, newline="")


def _undecodable(path: Path, compressed: bool, encoding: str, err: UnicodeDecodeError,
                 max_decompressed_bytes: int | None) -> str:
    """The message for a file that is not valid `encoding`: which line holds the first bad bytes.

    The text reader does not know line numbers, so the file is read again as bytes, a block at a time,
    counting line feeds up to the first bytes that do not decode.
    """
    decoder = codecs.getincrementaldecoder(encoding)()
    where, bad, lines_before = "", err.object[err.start:err.end], 0
    with _open_table_bytes(path, compressed, max_decompressed_bytes) as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as block_err:  # its object: bytes held back from the last block + this one
                line = lines_before + block_err.object[:block_err.start].count(b"\n") + 1
                where, bad = f" line {line}", block_err.object[block_err.start:block_err.end]
                break
            lines_before += block.count(b"\n")
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
               workers: int | None = None, encoding: str = "utf-8", errors: str = "strict",
               quotes: bool | None = None, max_decompressed_bytes: int | None = DEFAULT_MAX_DECOMPRESSED_BYTES,
               max_row_chars: int = DEFAULT_MAX_ROW_CHARS) -> TextDataset:
    """`read_table` (same arguments) plus tokenizing, through the prepared cache."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist")
    # "reader": 2 since TSV files are read without quote processing (entries of the older reader differ)
    source = {**_fingerprint(path), "columns": [text_column, label_column], "labels": label_names,
              "encoding": encoding, "errors": errors, "quotes": quotes, "reader": 2}
    return _load("table", source,
                 lambda: {"all": read_table(path, text_column, label_column, label_names, encoding, errors, quotes,
                                            max_decompressed_bytes, max_row_chars)},
                 tokenizer, cache, use_cache, workers)["all"]
