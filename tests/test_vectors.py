"""helpers.vectors: GloVe loading and caching, embedding matrices, coverage."""
from __future__ import annotations

import gzip
import hashlib
import shutil
import sys
import zipfile
from collections import Counter

import numpy as np
import pytest
import torch

import helpers.vectors as vectors_module
from conftest import entries, leftovers
from helpers.files import DataError
from helpers.text import PAD, UNK, Vocab
from helpers.vectors import Vectors, coverage, embedding_matrix, load_glove, parse_glove_text

NAME = "glove.6B.50d"


@pytest.fixture(scope="module")
def glove_lines(fixture_data_dir) -> list[str]:
    with gzip.open(fixture_data_dir / "glove" / f"{NAME}.txt.gz", "rt", encoding="utf-8") as handle:
        return handle.read().splitlines()


@pytest.fixture(scope="module")
def glove(fixture_data_dir, tmp_path_factory) -> Vectors:
    return load_glove(NAME, fixture_data_dir, cache=tmp_path_factory.mktemp("glove-cache"))


def row_of(lines: list[str], word: str) -> np.ndarray:
    line = next(line for line in lines if line.split(" ", 1)[0] == word)
    return np.array(line.split(" ")[1:], dtype=np.float32)


def test_load_glove_fixture(glove, glove_lines):
    assert glove.dim == 50 and glove.name == NAME
    assert len(glove) == len(glove_lines) and glove.itos[0] == "the"
    assert glove.vectors.dtype == torch.float32 and tuple(glove.vectors.shape) == (len(glove_lines), 50)
    assert "the" in glove and "The" not in glove
    assert np.array_equal(glove["the"].numpy(), row_of(glove_lines, "the"))
    assert np.array_equal(glove["movie"].numpy(), row_of(glove_lines, "movie"))


def test_load_glove_caches_as_npy(fixture_data_dir, tmp_cache, monkeypatch):
    first = load_glove(NAME, fixture_data_dir)
    (entry,) = entries(tmp_cache / "vectors")
    assert entry.startswith(NAME)
    assert sorted(entries(tmp_cache / "vectors" / entry)) == ["vectors.npy", "words.json"]

    def refuse(*args):
        raise AssertionError("the text file was parsed again")

    monkeypatch.setattr(vectors_module, "_read_glove", refuse)
    second = load_glove(NAME, fixture_data_dir)
    assert second.itos == first.itos and torch.equal(second.vectors, first.vectors)


def test_load_glove_from_plain_text_and_zip(fixture_data_dir, tmp_path, glove, monkeypatch):
    with gzip.open(fixture_data_dir / "glove" / f"{NAME}.txt.gz", "rb") as handle:
        raw = handle.read()
    plain = tmp_path / "plain" / "glove"
    plain.mkdir(parents=True)
    (plain / f"{NAME}.txt").write_bytes(raw)
    from_text = load_glove(NAME, plain.parent)
    assert from_text.itos == glove.itos and torch.equal(from_text.vectors, glove.vectors)

    zipped = tmp_path / "zipped" / "glove"
    zipped.mkdir(parents=True)
    with zipfile.ZipFile(zipped / "glove.6B.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{NAME}.txt", raw)
    # the real member's sha256 is pinned: the trimmed fixture does not match it
    with pytest.raises(DataError, match="does not match its known sha256") as err:
        load_glove(NAME, zipped.parent)
    assert "glove.6B.zip" in str(err.value)
    monkeypatch.setitem(vectors_module.GLOVE_MEMBER_SHA256, f"{NAME}.txt", hashlib.sha256(raw).hexdigest())
    from_zip = load_glove(NAME, zipped.parent)
    assert from_zip.itos == glove.itos and torch.equal(from_zip.vectors, glove.vectors)
    with pytest.raises(DataError, match="has no member glove.6B.100d.txt"):
        load_glove("glove.6B.100d", zipped.parent)


def test_truncated_glove_file(fixture_data_dir, tmp_path, tmp_cache):
    folder = tmp_path / "data" / "glove"
    folder.mkdir(parents=True)
    content = (fixture_data_dir / "glove" / f"{NAME}.txt.gz").read_bytes()
    (folder / f"{NAME}.txt.gz").write_bytes(content[:len(content) // 2])
    with pytest.raises(DataError, match="truncated or corrupt") as err:
        load_glove(NAME, folder.parent)
    assert f"{NAME}.txt.gz" in str(err.value)
    assert entries(tmp_cache / "vectors") == [] and leftovers(tmp_cache) == []


def test_corrupt_glove_zip(tmp_path):
    folder = tmp_path / "data" / "glove"
    folder.mkdir(parents=True)
    (folder / "glove.6B.zip").write_bytes(b"PK\x03\x04 not really a zip" * 100)
    with pytest.raises(DataError, match="glove.6B.zip is truncated or corrupt"):
        load_glove(NAME, folder.parent)


def test_unknown_vectors_name(fixture_data_dir):
    with pytest.raises(DataError, match="unknown vectors 'glove.42B.50d'"):
        load_glove("glove.42B.50d", fixture_data_dir)
    with pytest.raises(DataError, match="unknown vectors"):
        load_glove("fasttext.en.300d", fixture_data_dir)


def test_missing_vectors_in_data_dir(tmp_path, fixture_data_dir):
    with pytest.raises(DataError, match=r"no glove.6B.100d vectors in .*glove: expected glove.6B.100d.txt"):
        load_glove("glove.6B.100d", fixture_data_dir)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no glove.6B.50d vectors"):
        load_glove(NAME, tmp_path / "empty")


# ---------------------------------------------------------------------------- parsing

def test_parse_glove_text():
    words, matrix = parse_glove_text(["a 1 2 3\n", "\n", "b -0.5 1e-3 4 \n", "ü 0 0 0"])
    assert words == ["a", "b", "ü"]
    assert matrix.dtype == np.float32 and matrix.shape == (3, 3)
    assert matrix[1].tolist() == pytest.approx([-0.5, 1e-3, 4])


@pytest.mark.parametrize("lines, problem", [
    (["a 1 2 3", "b 1 2"], "rows do not all have 3 numbers"),
    (["a 1 2 3", "b 1 2", "c 1 2 3 4"], "rows do not all have 3 numbers"),  # sizes that cancel out
    (["a 1 2 3", "b"], "rows do not all have 3 numbers"),
    (["a 1 2 3", "b 1 x 3"], "malformed"),
    (["a 1 2 3", "b 1  3"], "malformed"),
    ([], "has no vectors"),
    (["\n", ""], "has no vectors"),
])
def test_parse_glove_text_malformed(lines, problem):
    with pytest.raises(DataError, match=problem) as err:
        parse_glove_text(lines, source="bad.txt")
    assert "bad.txt" in str(err.value)


@pytest.mark.parametrize("content, problem", [
    ("the 0.1 0.2\nof 0.3 oops\n", f"{NAME}.txt is malformed"),
    ("the 0.1 0.2\nof nan 0.3\n", f"{NAME}.txt line 2 \\(word 'of'\\) has the value 'nan'"),
])
def test_bad_glove_file_is_a_data_error_and_not_cached(tmp_path, tmp_cache, content, problem):
    folder = tmp_path / "data" / "glove"
    folder.mkdir(parents=True)
    (folder / f"{NAME}.txt").write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=problem):
        load_glove(NAME, folder.parent)
    assert entries(tmp_cache / "vectors") == [] and leftovers(tmp_cache) == []


# ---------------------------------------------------------------------------- embedding matrices

@pytest.fixture(scope="module")
def vocab() -> Vocab:
    counts = Counter({"the": 9, "movie": 8, "The": 7, "Movie": 6, "zzqxv": 5, "qqqzzzw": 4, "good": 3})
    return Vocab.from_counts(counts)


def test_embedding_matrix_rows(vocab, glove):
    matrix = embedding_matrix(vocab, glove, unk_init=torch.nn.init.zeros_)
    assert matrix.dtype == torch.float32 and tuple(matrix.shape) == (len(vocab), 50)
    for word in ("the", "movie", "good"):
        assert torch.equal(matrix[vocab[word]], glove[word])
    for word in (UNK, PAD, "The", "Movie", "zzqxv"):
        assert torch.count_nonzero(matrix[vocab[word]]) == 0


def test_embedding_matrix_lowercase_fallback(vocab, glove):
    matrix = embedding_matrix(vocab, glove, unk_init=torch.nn.init.zeros_, lowercase_fallback=True)
    assert torch.equal(matrix[vocab["The"]], glove["the"])
    assert torch.equal(matrix[vocab["Movie"]], glove["movie"])
    assert torch.count_nonzero(matrix[vocab["zzqxv"]]) == 0


def test_embedding_matrix_unk_rows_are_standard_normal(glove):
    vocab = Vocab.from_counts({f"notaword{i}": 1 for i in range(400)} | {"the": 2})
    matrix = embedding_matrix(vocab, glove, seed=0)  # default unk_init: torch.Tensor.normal_
    unknown = matrix[[vocab[f"notaword{i}"] for i in range(400)]]
    assert abs(unknown.mean().item()) < 0.03 and abs(unknown.std().item() - 1) < 0.03
    assert torch.equal(matrix[vocab["the"]], glove["the"])


def test_embedding_matrix_seed_is_reproducible_and_restores_rng(vocab, glove):
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    first = embedding_matrix(vocab, glove, seed=7)
    assert torch.equal(torch.rand(3), expected_next)  # the global RNG was left as it was
    assert torch.equal(embedding_matrix(vocab, glove, seed=7), first)
    assert not torch.equal(embedding_matrix(vocab, glove, seed=8), first)


def test_coverage(vocab, glove):
    exact = coverage(vocab, glove)
    assert exact == {"found": 3, "total": 7, "share": 3 / 7,
                     "missing_examples": ["The", "Movie", "zzqxv", "qqqzzzw"]}
    fallback = coverage(vocab, glove, lowercase_fallback=True)
    assert fallback["found"] == 5 and fallback["missing_examples"] == ["zzqxv", "qqqzzzw"]
    assert coverage(Vocab.from_counts({}), glove)["share"] == 0.0


def test_fixture_glove_covers_the_fixture_vocabulary(imdb_corpus, glove):
    """make_fixtures.py kept a vector for every fixture token that GloVe knows (lowercased)."""
    vocab = Vocab.from_counts(imdb_corpus.counts())
    result = coverage(vocab, glove, lowercase_fallback=True)
    assert result["share"] > 0.9
    assert "the" in glove and "film" in glove


def test_vectors_cache_is_keyed_by_source_file(fixture_data_dir, tmp_path, tmp_cache):
    """A different source file (another path) gets its own cache entry."""
    copy = tmp_path / "data" / "glove"
    copy.mkdir(parents=True)
    shutil.copy(fixture_data_dir / "glove" / f"{NAME}.txt.gz", copy)
    load_glove(NAME, fixture_data_dir)
    load_glove(NAME, copy.parent)
    assert len(entries(tmp_cache / "vectors")) == 2


# ---------------------------------------------------------------------------- values that are not finite, memory

@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-Infinity", "1e39", "-3.5e38"])
def test_parse_glove_text_refuses_values_that_are_not_finite(value):
    with pytest.raises(DataError, match=f"bad.txt line 3 \\(word 'b'\\) has the value '{value}', which is not "
                                        "a finite float32 number"):
        parse_glove_text(["a 1 2 3", "", f"b 1 {value} 3", "c 1 2 3"], source="bad.txt")


def test_parse_glove_text_names_the_line_of_a_value_that_is_not_a_number():
    with pytest.raises(DataError, match=r"bad.txt is malformed: line 2 \(word 'b'\) has '1,5', which is not a number"):
        parse_glove_text(["a 1 2", "b 1,5 2"], source="bad.txt")


def test_zip_member_that_is_not_the_known_one_says_so_before_how_it_fails_to_parse(tmp_path, monkeypatch):
    folder = tmp_path / "data" / "glove"
    folder.mkdir(parents=True)
    with zipfile.ZipFile(folder / "glove.6B.zip", "w") as archive:
        archive.writestr(f"{NAME}.txt", "the 0.1 0.2\nof oops 0.3\n")
    with pytest.raises(DataError, match="does not match its known sha256"):
        load_glove(NAME, folder.parent)
    monkeypatch.delitem(vectors_module.GLOVE_MEMBER_SHA256, f"{NAME}.txt")
    with pytest.raises(DataError, match=f"glove.6B.zip:{NAME}.txt is malformed: line 2"):
        load_glove(NAME, folder.parent)


def test_parse_glove_text_memory_stays_near_the_matrix(monkeypatch):
    """Peak Python-traced memory while parsing, against the float32 matrix it makes: the numbers are
    parsed a chunk at a time, never held as one string or float object each."""
    import tracemalloc

    monkeypatch.setattr(vectors_module, "_GLOVE_VALUES_PER_CHUNK", 1 << 12)
    rng = np.random.default_rng(0)
    n, dim = 20_000, 50
    lines = [f"w{i} " + " ".join(f"{value:.6f}" for value in row) + "\n" for i, row in enumerate(rng.normal(size=(n, dim)))]
    tracemalloc.start()
    try:
        words, matrix = parse_glove_text(lines, source="synthetic")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert matrix.shape == (n, dim) and words[-1] == f"w{n - 1}"
    assert np.array_equal(matrix[7], np.array(lines[7].split(" ")[1:], dtype=np.float32))
    words_bytes = sum(sys.getsizeof(word) for word in words) + sys.getsizeof(words)
    assert peak < 1.5 * matrix.nbytes + words_bytes + (1 << 20)
