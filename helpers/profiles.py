"""Run profiles: `full` reproduces a lesson; `smoke` runs the same code on a few hundred
examples for one epoch, as a quick check that everything still works."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .files import FIXTURES_DIR, data_dir

if TYPE_CHECKING:
    import torch

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


@dataclass
class LessonRun:
    """Everything a lesson notebook resolves from its parameters; `save_metrics` writes its results."""

    notebook: str
    profile: Profile
    data_dir: Path | None
    epochs: int
    device: "torch.device"
    seed: int
    results_dir: Path
    precision: str = "fp32"   # what `fit` trains in on this device: "bf16" or "fp32"

    def save_metrics(self, **fields) -> Path:
        """`<results>/<notebook>/metrics.json` with the profile and device filled in."""
        from .results import device_name, write_metrics

        return write_metrics(self.results_dir.parent, self.notebook, profile=self.profile.name,
                             device=device_name(self.device), precision=self.precision, **fields)


def start_lesson(notebook: str, profile: str | None = None, data_dir=None, epochs: int = 5,
                 device: str = "auto", seed: int = 1234, results_dir=None) -> LessonRun:
    """Resolve a notebook's parameters, seed everything, and say what this run will do.

    `results_dir` defaults to env `SENTIMENT_RESULTS_DIR`, else the repository's `results/`;
    this run's files go to `<results_dir>/<notebook>/`.
    """
    from .files import REPO_ROOT
    from .results import device_name, results_folder
    from .training import get_device, set_seed, training_precision

    chosen = get_profile(profile)
    set_seed(seed)
    run = LessonRun(
        notebook=notebook, profile=chosen, data_dir=lesson_data_dir(chosen, data_dir),
        epochs=chosen.epochs or epochs, device=get_device(device), seed=seed, precision=training_precision(
            get_device(device)),
        results_dir=results_folder(results_dir or os.environ.get("SENTIMENT_RESULTS_DIR") or REPO_ROOT / "results",
                                   notebook))
    source = run.data_dir or "download cache"
    print(f"profile {chosen.name} | data {source} | {run.epochs} epoch(s) | device {device_name(run.device)} "
          f"| training precision {run.precision} | seed {seed}")
    if chosen.name == "smoke":
        print("smoke profile: a few hundred examples, 1 epoch. It checks the code runs; its numbers mean nothing.")
    return run
