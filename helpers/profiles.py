"""Run profiles: `full` reproduces a lesson; `smoke` runs the same code on a few hundred
examples for one epoch, as a quick check that everything still works."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .files import FIXTURES_DIR, data_dir

FIXTURE_DATA_DIR = FIXTURES_DIR / "data"


@dataclass(frozen=True)
class Profile:
    """`sample`: examples kept per split (None = all); `epochs`: forced epoch count (None = the lesson's)."""

    name: str
    sample: int | None
    epochs: int | None


PROFILES = {"full": Profile("full", None, None), "smoke": Profile("smoke", 300, 1)}


def get_profile(name: str | None = None) -> Profile:
    """The named profile, else env `SENTIMENT_PROFILE`, else `full`."""
    name = name or os.environ.get("SENTIMENT_PROFILE") or "full"
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}: choose one of {', '.join(PROFILES)}")
    return PROFILES[name]


def lesson_data_dir(profile: Profile, explicit=None) -> Path | None:
    """Where the lesson reads data: `explicit` or `SENTIMENT_DATA_DIR`; with neither,
    the committed test fixtures for a smoke run (works offline), else None (download)."""
    directory = data_dir(explicit)
    if directory is None and profile.name == "smoke":
        return FIXTURE_DATA_DIR
    return directory


def default_vectors(directory: Path | None, preferred: str = "glove.6B.100d") -> str:
    """The tutorials' `glove.6B.100d`, unless a local data folder holds only another size
    (offline machines here have 50d), in which case that one is used."""
    if directory is None:
        return preferred
    folder = directory / "glove"

    def present(name):
        return any((folder / f"{name}{suffix}").is_file() for suffix in (".txt", ".txt.gz"))

    if (folder / "glove.6B.zip").is_file() or present(preferred):
        return preferred
    return next((name for name in ("glove.6B.300d", "glove.6B.200d", "glove.6B.50d") if present(name)), preferred)
