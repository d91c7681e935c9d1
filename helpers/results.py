"""What a run leaves behind: one record type, `RunRecord`, written once as `<results>/<notebook>/metrics.json`.

The record holds the lesson's results and what decides their digits: profile, seed,
epochs, device and precision, the hardware (CPU model and instruction set or GPU name,
threads, library versions, from `hardware.describe_hardware`), the code's commit and the
course version. The course layer (`course.LessonRun.record`) computes those facts and
passes them in as values: this module imports no torch and nothing of the course.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from . import __version__
from .files import atomic_path

METRICS_FILE = "metrics.json"
NOT_A_CHECKOUT = "not a checkout"


def git_commit(checkout: str | os.PathLike | None) -> str:
    """HEAD's commit hash in `checkout` (the course layer passes `course.checkout_root()`), with `-dirty` when
    notebooks/ or helpers/ have uncommitted code changes; "not a checkout" for None (an installed package) or a
    folder without git."""
    if checkout is None:
        return f"{NOT_A_CHECKOUT} (installed helpers {__version__})"
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=checkout, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--", "helpers", "notebooks"],
                               cwd=checkout, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"{NOT_A_CHECKOUT} ({checkout} has no git history)"
    return commit + ("-dirty" if any(map(changes_code, dirty.splitlines())) else "")


def changes_code(status_line: str) -> bool:
    """Whether a `git status --porcelain` line changes what a run computes: a tracked file changed (notebooks
    aside: a run rewrites their outputs), or a new Python file; a new data file (a benchmark's JSON) does not."""
    path = status_line[3:].strip().strip('"')
    if status_line.startswith("??"):
        return path.endswith(".py")
    return not path.endswith(".ipynb")


@dataclass(frozen=True)
class RunRecord:
    """What `metrics.json` holds. The common fields are the run's; `lesson` holds what only the lesson
    knows (dataset, sizes, history, "beyond", ...), written at the top level beside them.

    `device` is the one-line hardware summary (`hardware.hardware_summary`), `hardware` the
    full description; `git_commit` says "not a checkout" for an installed course.
    """

    notebook: str
    profile: str
    seed: int
    epochs: int
    test_accuracy: float | None   # None for a notebook without one test result (several `rows`, or none)
    test_loss: float | None
    device: str
    precision: str
    hardware: dict
    git_commit: str
    course_version: str
    torch_version: str
    created_at: str
    lesson: dict = field(default_factory=dict)

    @classmethod
    def create(cls, *, notebook: str, profile: str, seed: int, epochs: int, precision: str,
               test_accuracy: float | None, test_loss: float | None, lesson: dict, device: str, hardware: dict,
               git_commit: str, torch_version: str) -> "RunRecord":
        """A record for a run that just finished; the course layer passes the run's facts as values (hardware,
        commit, versions), only the time is taken here. A lesson field that clashes with a common one is a
        ValueError."""
        common = {f.name for f in fields(cls)} - {"lesson"}
        clash = sorted(common & set(lesson))
        if clash:
            raise ValueError(f"{', '.join(clash)}: filled in by the run itself; do not pass them to record()")
        return cls(notebook=notebook, profile=profile, seed=int(seed), epochs=int(epochs),
                   test_accuracy=None if test_accuracy is None else float(test_accuracy),
                   test_loss=None if test_loss is None else float(test_loss), device=device,
                   precision=precision, hardware=dict(hardware), git_commit=git_commit, course_version=__version__,
                   torch_version=torch_version,
                   created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), lesson=dict(lesson))

    def to_json(self) -> dict:
        """The flat dictionary written to metrics.json (the lesson's fields after the common ones)."""
        record = asdict(self)
        return {**{key: value for key, value in record.items() if key != "lesson"}, **record["lesson"]}


def write_record(record: RunRecord, folder: str | os.PathLike) -> Path:
    """Write `<folder>/metrics.json` atomically (whole or not at all) and return its path."""
    path = Path(folder) / METRICS_FILE
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(record.to_json(), indent=2, default=float) + "\n", encoding="utf-8")
    return path


def read_metrics(folder: str | os.PathLike) -> dict | None:
    """`<folder>/metrics.json` as a dictionary (records of older runs included), or None when absent."""
    path = Path(folder) / METRICS_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
