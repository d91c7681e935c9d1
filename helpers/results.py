"""What a run leaves behind: `<results dir>/<notebook>/metrics.json`, with its provenance."""
from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
from pathlib import Path

import torch

from .files import REPO_ROOT, atomic_path


def git_commit() -> str:
    """HEAD's commit hash, with `-dirty` when notebooks/ or helpers/ have uncommitted changes; 'unknown' outside git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "helpers", "notebooks"], cwd=REPO_ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    # executed notebooks change only in their outputs; count only code changes
    dirty_code = [line for line in dirty.splitlines() if not line.rstrip().endswith(".ipynb")]
    return commit + ("-dirty" if dirty_code else "")


def device_name(device: torch.device | str) -> str:
    """'cpu (N threads, <processor>)' or the CUDA device's name."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads, {platform.machine()})"


def write_metrics(results_dir: str | os.PathLike, notebook: str, **fields) -> Path:
    """Write `<results_dir>/<notebook>/metrics.json` atomically and return its path.

    Adds `notebook`, `git_commit`, `torch_version` and `created_at` to `fields`.
    """
    folder = Path(results_dir) / notebook
    folder.mkdir(parents=True, exist_ok=True)
    record = {"notebook": notebook, **fields, "git_commit": git_commit(), "torch_version": torch.__version__,
              "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    path = folder / "metrics.json"
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(record, indent=2, default=float) + "\n", encoding="utf-8")
    return path


def results_folder(results_dir: str | os.PathLike, notebook: str) -> Path:
    """`<results_dir>/<notebook>`, created."""
    folder = Path(results_dir) / notebook
    folder.mkdir(parents=True, exist_ok=True)
    return folder
