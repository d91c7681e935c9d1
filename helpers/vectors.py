"""Pretrained word vectors (GloVe) and embedding matrices aligned to a `Vocab`.

Replaces torchtext's `Field.build_vocab(..., vectors="glove.6B.100d")`.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .files import DataError, atomic_path, cache_dir, data_dir, fetch
from .progress import progress
from .text import Vocab

GLOVE_6B_URL = "https://nlp.stanford.edu/data/glove.6B.zip"
# Stanford publishes no checksum for glove.6B.zip, so a download is verified by the
# zip's own CRC-32 of each member and, where known, by the member's sha256 below.
GLOVE_6B_SHA256: str | None = None
GLOVE_MEMBER_SHA256 = {
    "glove.6B.50d.txt": "d8f717f8dd4b545cb7f418ef9f3d0c3e6e68a6f48b97d32f8b7aae40cb31f96f",
}
_GLOVE_NAME = re.compile(r"^glove\.6B\.(50|100|200|300)d$")


@dataclass
class Vectors:
    """`itos`: words; `vectors`: float32 [n_words, dim]; `stoi`: word -> row."""

    itos: list[str]
    vectors: torch.Tensor
    name: str = ""

    def __post_init__(self):
        self.stoi = {word: i for i, word in enumerate(self.itos)}

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, word: str) -> bool:
        return word in self.stoi

    def __getitem__(self, word: str) -> torch.Tensor:
        return self.vectors[self.stoi[word]]


# numbers parsed per step: bounds the temporary strings a step makes (about 60 bytes each)
_GLOVE_VALUES_PER_CHUNK = 1 << 18
# the matrix grows by this factor when full: the unused tail it may hold is at most this share, minus one
_GLOVE_GROWTH = 1.25


def parse_glove_text(lines, source: str = "vectors") -> tuple[list[str], np.ndarray]:
    """Parse GloVe's text format (`word v1 ... vD` per line) into (words, float32 [n, D]).

    The numbers go chunk by chunk straight into one float32 matrix that grows as it fills, so
    memory stays near the matrix plus the word list. Raises DataError naming `source` and the line
    for a row with the wrong count of numbers, a value that is not a number, or one that is not
    finite (nan, inf, or beyond float32's range).
    """
    words: list[str] = []
    matrix, filled, dim = np.empty((0, 0), dtype=np.float32), 0, 0
    chunk: list[str] = []  # the numbers part of each line not parsed yet
    chunk_lines: list[int] = []  # their line numbers
    for number, line in enumerate(progress(lines, desc=f"parsing {source}", unit="word"), 1):
        line = line.rstrip("\r\n").rstrip(" ")
        if not line:
            continue
        word, _, rest = line.partition(" ")
        count = rest.count(" ") + 1 if rest else 0
        if not dim:
            dim = count
            matrix = np.empty((max(1, _GLOVE_VALUES_PER_CHUNK // max(dim, 1)), dim), dtype=np.float32)
        if count != dim or not dim:
            raise DataError(f"{source} is malformed: rows do not all have {dim} numbers "
                            f"(line {number}, word {word!r}, has {count})")
        words.append(word)
        chunk.append(rest)
        chunk_lines.append(number)
        if len(chunk) * dim >= _GLOVE_VALUES_PER_CHUNK:
            matrix = _add_glove_rows(matrix, filled, chunk, chunk_lines, words, source)
            filled += len(chunk)
            chunk, chunk_lines = [], []
    if chunk:
        matrix = _add_glove_rows(matrix, filled, chunk, chunk_lines, words, source)
        filled += len(chunk)
    if not filled:
        raise DataError(f"{source} has no vectors")
    matrix.resize((filled, dim), refcheck=False)  # gives the unused tail back
    return words, matrix


def _add_glove_rows(matrix: np.ndarray, filled: int, chunk: list[str], chunk_lines: list[int],
                    words: list[str], source: str) -> np.ndarray:
    """Parse `chunk` (each line's numbers) into rows `filled`... of `matrix`, grown if needed; returns it.

    `words[-len(chunk):]` and `chunk_lines` are the chunk's words and line numbers, for the errors.
    """
    dim = matrix.shape[1]
    try:
        with np.errstate(over="ignore"):  # a value beyond float32 becomes inf, refused below
            rows = np.array(" ".join(chunk).split(" "), dtype=np.float32).reshape(len(chunk), dim)
    except ValueError:
        for index, text in enumerate(chunk):  # find the line to name: only on this rare path
            for value in text.split(" "):
                try:
                    float(value)
                except ValueError:
                    raise DataError(f"{source} is malformed: line {chunk_lines[index]} (word "
                                    f"{words[len(words) - len(chunk) + index]!r}) has {value!r}, "
                                    f"which is not a number") from None
        raise
    finite = np.isfinite(rows).all(axis=1)
    if not finite.all():
        index = int(np.argmin(finite))
        value = next(value for value in chunk[index].split(" ") if not np.isfinite(float(value))
                     or abs(float(value)) > float(np.finfo(np.float32).max))
        raise DataError(f"{source} line {chunk_lines[index]} (word {words[len(words) - len(chunk) + index]!r}) "
                        f"has the value {value!r}, which is not a finite float32 number (nan, inf and "
                        f"values beyond ±3.4e38 are refused)")
    if filled + len(rows) > len(matrix):
        # in place where the allocator can (large blocks are remapped, not copied)
        matrix.resize((max(int(len(matrix) * _GLOVE_GROWTH), filled + len(rows)), dim), refcheck=False)
    matrix[filled:filled + len(rows)] = rows
    return matrix


def _glove_source(name: str, directory: Path | None, cache) -> tuple[Path, str | None]:
    """(file, zip member or None) holding `name`, preferring local copies."""
    if directory is not None:
        folder = directory / "glove"
        for candidate in (folder / f"{name}.txt", folder / f"{name}.txt.gz"):
            if candidate.is_file():
                return candidate, None
        if (folder / "glove.6B.zip").is_file():
            return folder / "glove.6B.zip", f"{name}.txt"
        raise DataError(f"no {name} vectors in {folder}: expected {name}.txt, {name}.txt.gz or glove.6B.zip")
    return fetch(GLOVE_6B_URL, GLOVE_6B_SHA256, "glove.6B.zip", cache), f"{name}.txt"


def _read_glove(path: Path, member: str | None) -> tuple[list[str], np.ndarray]:
    try:
        if member is not None:
            with zipfile.ZipFile(path) as archive:
                if member not in archive.namelist():
                    raise DataError(f"{path} has no member {member} (members: {', '.join(archive.namelist())})")
                # streamed, not read whole: ZipFile checks the CRC-32 at the end (BadZipFile on mismatch)
                with archive.open(member) as stream:
                    hashed = _Sha256Reader(stream)
                    try:
                        parsed = parse_glove_text(io.TextIOWrapper(io.BufferedReader(hashed), encoding="utf-8"),
                                                  f"{path.name}:{member}")
                    finally:  # a file that is not the known one says so, rather than how it fails to parse
                        while hashed.read(1 << 20):
                            pass
                        expected = GLOVE_MEMBER_SHA256.get(member)
                        if expected and hashed.digest.hexdigest() != expected:
                            raise DataError(f"{path}:{member} does not match its known sha256")
                    return parsed
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as handle:
            return parse_glove_text(handle, path.name)
    except (zipfile.BadZipFile, EOFError, OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path} is truncated or corrupt ({type(err).__name__}: {err})") from None


class _Sha256Reader(io.RawIOBase):
    """A readable stream that passes `stream`'s bytes through, adding them to `digest` (sha256)."""

    def __init__(self, stream):
        self.stream, self.digest = stream, hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.stream.read(len(buffer))
        self.digest.update(data)
        buffer[:len(data)] = data
        return len(data)


def load_glove(name: str = "glove.6B.100d", data_directory=None, cache=None) -> Vectors:
    """GloVe vectors by name (`glove.6B.{50,100,200,300}d`).

    Looks in `<data_dir>/glove/` for `<name>.txt`, `<name>.txt.gz` or `glove.6B.zip`,
    else downloads Stanford's `glove.6B.zip`. The parsed vectors are cached as
    .npy (keyed by the source's size and mtime), so later loads take about a second.
    """
    if not _GLOVE_NAME.match(name):
        raise DataError(f"unknown vectors {name!r}: use glove.6B.50d, glove.6B.100d, glove.6B.200d or glove.6B.300d")
    path, member = _glove_source(name, data_dir(data_directory), cache)
    stat = path.stat()
    key = hashlib.sha256(json.dumps([str(path.resolve()), member, stat.st_size, stat.st_mtime_ns]).encode())
    folder = cache_dir(cache) / "vectors" / f"{name}-{key.hexdigest()[:16]}"
    try:
        words = json.loads((folder / "words.json").read_text(encoding="utf-8"))
        matrix = np.load(folder / "vectors.npy")
    except (OSError, ValueError):
        words, matrix = _read_glove(path, member)
        with atomic_path(folder) as tmp:
            tmp.mkdir()
            np.save(tmp / "vectors.npy", matrix)
            (tmp / "words.json").write_text(json.dumps(words, ensure_ascii=False), encoding="utf-8")
    return Vectors(words, torch.from_numpy(matrix), name)


# ---- saved cells: generated by `python -m helpers.sync` from the notebooks' #@save cells; edit those ----

# ---- notebooks/02_upgraded_sentiment.ipynb, cell save-vectors-embedding-matrix ----
def embedding_matrix(vocab: Vocab, vectors: Vectors, unk_init=torch.Tensor.normal_,
                     lowercase_fallback: bool = False, seed: int | None = None) -> torch.Tensor:
    """Rows of `vectors` for each vocabulary token: float32 [len(vocab), dim].

    Tokens without a vector get `unk_init` of a fresh row (the tutorials used
    `torch.Tensor.normal_`, i.e. N(0, 1)); `torch.nn.init.zeros_` gives zeros. torchtext
    matched tokens exactly; `lowercase_fallback=True` also tries the lowercased token
    (GloVe is lowercase). Zero the `<unk>`/`<pad>` rows afterwards as the lesson does.
    """
    generator_state = torch.random.get_rng_state() if seed is not None else None
    if seed is not None:
        torch.manual_seed(seed)
    matrix = torch.empty(len(vocab), vectors.dim)
    for index, token in enumerate(vocab.itos):
        row = vectors.stoi.get(token)
        if row is None and lowercase_fallback:
            row = vectors.stoi.get(token.lower())
        if row is None:
            unk_init(matrix[index])
        else:
            matrix[index] = vectors.vectors[row]
    if generator_state is not None:
        torch.random.set_rng_state(generator_state)
    return matrix

# ---- end of saved cells ----


def coverage(vocab: Vocab, vectors: Vectors, lowercase_fallback: bool = False) -> dict:
    """How much of the vocabulary has a pretrained vector (specials not counted).

    Returns {"found", "total", "share", "missing_examples"}.
    """
    tokens = [token for token in vocab.itos if token not in vocab.specials]
    missing = [t for t in tokens if t not in vectors.stoi and not (lowercase_fallback and t.lower() in vectors.stoi)]
    found = len(tokens) - len(missing)
    return {"found": found, "total": len(tokens), "share": found / len(tokens) if tokens else 0.0,
            "missing_examples": missing[:10]}
