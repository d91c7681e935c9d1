"""What a run leaves behind: one record type, `RunRecord`, written once as `<results>/<notebook>/metrics.json`.

The record holds the lesson's results and what decides their digits: profile, seed,
epochs, device and precision, the hardware (CPU model and instruction set or GPU name,
threads, library versions, from `training.describe_hardware`), the code's commit and the
course version.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from . import __version__
from .files import atomic_path

METRICS_FILE = "metrics.json"
NOT_A_CHECKOUT = "not a checkout"


def _course_url() -> str:
    """The repository URL: pyproject's [project.urls] Repository (the one place it is written), read from
    pyproject.toml in a checkout, else from the installed distribution's metadata."""
    from importlib import metadata

    from .course import checkout_root

    root = checkout_root()
    if root is not None:
        try:
            import tomllib   # Python 3.11+
        except ImportError:
            tomllib = None
        if tomllib is not None:
            return tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]["urls"]["Repository"]
    try:
        for entry in metadata.metadata("sentiment-tutorials").get_all("Project-URL") or []:
            label, _, url = entry.partition(",")
            if label.strip().lower() == "repository":
                return url.strip()
    except metadata.PackageNotFoundError:
        pass
    return "https://github.com/<owner>/sentiment-tutorials"   # neither a checkout nor installed: what to fill in


COURSE_URL = _course_url()


def git_commit(checkout: str | os.PathLike | None = None) -> str:
    """HEAD's commit hash in `checkout` (default: the checkout these helpers run from), with `-dirty` when
    notebooks/ or helpers/ have uncommitted code changes; "not a checkout" for an installed package or a
    folder without git."""
    if checkout is None:
        from .course import checkout_root

        checkout = checkout_root()
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


def device_name(device) -> str:
    """'cpu (N threads, <processor>)' or the CUDA device's name."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads, {platform.machine()})"


@dataclass(frozen=True)
class RunRecord:
    """What `metrics.json` holds. The common fields are the run's; `lesson` holds what only the lesson
    knows (dataset, sizes, history, "beyond", ...), written at the top level beside them.

    `device` is the one-line hardware summary (`training.hardware_summary`), `hardware` the
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
    def create(cls, *, notebook: str, profile: str, seed: int, epochs: int, device, precision: str,
               test_accuracy: float | None, test_loss: float | None, lesson: dict) -> "RunRecord":
        """A record for a run that just finished: hardware, commit, versions and time filled in."""
        import torch

        from .training import describe_hardware, hardware_summary

        common = {f.name for f in fields(cls)} - {"lesson"}
        clash = sorted(common & set(lesson))
        if clash:
            raise ValueError(f"{', '.join(clash)}: filled in by the run itself; do not pass them to record()")
        hardware = describe_hardware(device, precision)
        return cls(notebook=notebook, profile=profile, seed=int(seed), epochs=int(epochs),
                   test_accuracy=None if test_accuracy is None else float(test_accuracy),
                   test_loss=None if test_loss is None else float(test_loss), device=hardware_summary(hardware),
                   precision=precision, hardware=hardware, git_commit=git_commit(), course_version=__version__,
                   torch_version=torch.__version__,
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
