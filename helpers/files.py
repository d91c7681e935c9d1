"""Where data lives, safe writes, checksums and verified downloads.

Everything that touches the disk goes through here so that a crash or a bad
download never leaves a half-written file behind: writers write to a temporary
name in the same folder and rename it into place only when complete.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES_DIR = REPO_ROOT / "tests" / "fixtures"


class DataError(RuntimeError):
    """A data file is missing, corrupt or shaped wrongly; the message names the file."""


def data_dir(explicit: str | os.PathLike | None = None) -> Path | None:
    """The local data folder: `explicit`, else env `SENTIMENT_DATA_DIR`, else None (download).

    A relative path is taken from the current folder; a folder that does not exist
    is an error rather than a silent fallback to downloading.
    """
    value = explicit if explicit not in (None, "") else os.environ.get("SENTIMENT_DATA_DIR") or None
    if value is None:
        return None
    path = Path(value).expanduser().resolve()
    if not path.is_dir():
        raise DataError(f"data directory {path} does not exist (set SENTIMENT_DATA_DIR or pass data_dir)")
    return path


def cache_dir(explicit: str | os.PathLike | None = None) -> Path:
    """Folder for downloads and prepared caches: `explicit`, env `SENTIMENT_CACHE_DIR`,
    else `~/.cache/sentiment-tutorials`. Created if missing."""
    value = explicit or os.environ.get("SENTIMENT_CACHE_DIR") or Path.home() / ".cache" / "sentiment-tutorials"
    path = Path(value).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike):
    """Yield a temporary path beside `target`; rename it onto `target` only if the block succeeds.

    Works for files and folders. On error the temporary is removed and `target` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)) / target.name
    try:
        yield tmp
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp.parent, ignore_errors=True)


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(url: str, sha256: str | None, filename: str, cache: str | os.PathLike | None = None) -> Path:
    """Download `url` into `<cache>/downloads/<filename>` once and return its path.

    The file is checked against `sha256` (hex) before it is kept; a file already in
    the cache is re-checked, and a mismatch there means a fresh download. Pooch
    writes to a temporary file and moves it into place, so a failed or truncated
    download leaves nothing behind. Raises DataError naming the URL on failure.
    """
    import pooch  # imported here: only the download path needs it

    folder = cache_dir(cache) / "downloads"
    try:
        path = pooch.retrieve(
            url,
            known_hash=f"sha256:{sha256}" if sha256 else None,
            fname=filename,
            path=folder,
            progressbar=True,
        )
    except ValueError as err:  # pooch's hash mismatch
        raise DataError(f"checksum mismatch for {url}: the download is corrupt or incomplete ({err})") from None
    except Exception as err:  # network errors come from requests, whose classes we need not import
        raise DataError(
            f"could not download {url}: {err}. Without internet, put a local copy in a data "
            "directory and set SENTIMENT_DATA_DIR (see README)."
        ) from None
    return Path(path)
