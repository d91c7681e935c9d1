"""Shared fixtures for the data-pipeline tests.

Every test gets its own empty cache folder as the library's default cache
(`helpers.files.DEFAULT_CACHE_DIR`, and `SENTIMENT_CACHE_DIR` for the course layer and
subprocesses), so nothing is written to ~/.cache, and `SENTIMENT_DATA_DIR` is unset
inside tests so a lesson without a data folder really takes the download path. The
real data tests read the value it had when pytest started, through `real_data_dir`.
"""
from __future__ import annotations

import io
import os
import sys
import tarfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from helpers import files  # noqa: E402 (needs REPO_ROOT on sys.path)
from helpers.course import FIXTURE_DATA_DIR  # noqa: E402
from helpers.run import absolute_environment_paths  # noqa: E402

# Before anything reads them: the notebook kernels nbval starts run in notebooks/, where a
# relative SENTIMENT_DATA_DIR given at the repository root would name another folder.
absolute_environment_paths()

FIXTURE_DATA = FIXTURE_DATA_DIR   # the small data shipped in the package (helpers/fixtures/data)
FIXTURE_REVIEWS_PER_FOLDER = 100
REAL_DATA_DIR = os.environ.get("SENTIMENT_DATA_DIR") or None  # read before any test unsets it


@pytest.fixture(autouse=True)
def tmp_cache(tmp_path, monkeypatch) -> Path:
    """This test's cache folder (the library's default and `SENTIMENT_CACHE_DIR`); not created until something
    writes."""
    folder = tmp_path / "cache"
    monkeypatch.setattr(files, "DEFAULT_CACHE_DIR", folder)
    monkeypatch.setenv("SENTIMENT_CACHE_DIR", str(folder))
    monkeypatch.delenv("SENTIMENT_DATA_DIR", raising=False)
    # `make test` sets these for the notebooks nbval runs; a unit test sets what it needs itself
    for name in ("SENTIMENT_RESULTS_DIR", "SENTIMENT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name in ("NO_PROXY", "no_proxy"):  # the local test server must not go through a proxy
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    return folder


@pytest.fixture(scope="session")
def fixture_data_dir() -> Path:
    """helpers/fixtures/data (built by tests/make_fixtures.py)."""
    if not (FIXTURE_DATA / "imdb" / "aclImdb").is_dir():
        pytest.fail(f"{FIXTURE_DATA} is missing: run `python tests/make_fixtures.py`")
    return FIXTURE_DATA


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The real data folder from env SENTIMENT_DATA_DIR; skips the test when it is not set."""
    if not REAL_DATA_DIR:
        pytest.skip("set SENTIMENT_DATA_DIR to the real data folder to run the real-data tests")
    path = Path(REAL_DATA_DIR).expanduser().resolve()
    if not (path / "imdb").is_dir():
        pytest.skip(f"SENTIMENT_DATA_DIR={REAL_DATA_DIR} has no imdb/ folder")
    return path


@pytest.fixture(scope="session")
def real_cache(tmp_path_factory) -> Path:
    """One cache folder shared by all real-data tests (a full IMDb tokenize is slow)."""
    return tmp_path_factory.mktemp("real-cache")


@pytest.fixture(scope="session")
def tokenizer():
    from helpers.text import Tokenizer

    return Tokenizer()


@pytest.fixture(scope="session")
def imdb_fixture(fixture_data_dir):
    """read_imdb on the fixtures: {"train", "test"} raw TextDatasets (do not modify)."""
    from helpers.data import read_imdb

    return read_imdb(fixture_data_dir)


@pytest.fixture(scope="session")
def imdb_corpus(imdb_fixture, tokenizer):
    """The fixture IMDb train texts, tokenized (one process)."""
    from helpers.corpus import tokenize_corpus

    return tokenize_corpus(imdb_fixture["train"].texts, tokenizer, workers=1)


def make_imdb_archive(destination: Path, source: Path = FIXTURE_DATA / "imdb" / "aclImdb",
                      per_folder: int | None = None, skip: tuple[str, ...] = ()) -> Path:
    """Write an IMDb-layout tar.gz (`aclImdb/{train,test}/{neg,pos}/*.txt`) from `source`.

    `per_folder` keeps only the first N files of each folder; folders named in
    `skip` (e.g. "test/neg") are left out.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(destination, "w:gz") as archive:
        for split in ("train", "test"):
            for label in ("neg", "pos"):
                if f"{split}/{label}" in skip:
                    continue
                for path in sorted((source / split / label).glob("*.txt"))[:per_folder]:
                    data = path.read_bytes()
                    info = tarfile.TarInfo(f"aclImdb/{split}/{label}/{path.name}")
                    info.size = len(data)
                    archive.addfile(info, io.BytesIO(data))
        readme = b"trimmed copy for tests\n"
        info = tarfile.TarInfo("aclImdb/README")
        info.size = len(readme)
        archive.addfile(info, io.BytesIO(readme))
    return destination


def leftovers(folder: Path) -> list[str]:
    """Paths under `folder` that a failed write must not leave: temporary folders and files."""
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p.name.endswith(".tmp") or p.name.startswith("tmp") or p.name.startswith("."))


def entries(folder: Path) -> list[str]:
    """Names inside `folder` (hidden ones included); [] if it does not exist."""
    return sorted(os.listdir(folder)) if folder.is_dir() else []
