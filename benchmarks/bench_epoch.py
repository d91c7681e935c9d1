"""One training epoch of a lesson, as the notebook of each given commit trains it, back to back.

    python benchmarks/bench_epoch.py --lesson 2 --revs 240d091,2b804dd --data-dir ../shared/data
                                     [--profile full] [--out results/benchmarks/epoch_02_upgraded_sentiment.json]

For each commit, in the order given: a detached git worktree of that commit in a temporary
folder, then, in a fresh process with only that commit's code importable, the lesson
notebook's code cells in order (the parameters cell, then `EPOCHS = 1`, the full profile,
the data folder and a temporary results folder, as papermill would inject them; the Colab
set-up cell skipped), up to and including the first cell that calls `fit(`: the lesson's
training. That cell's wall time (one training epoch, one validation pass and the loop's
bookkeeping) is the figure; the cells before it (data, vocabulary, vectors, lesson 6's
feature cache) are not timed. The worktrees are removed afterwards.

A commit's notebook and library are compared as a whole: this answers "is the new code
slower?", not why. Lesson 6 reads its encoder features from the feature cache (the
course's cache folder); run the lesson once first so no commit pays for encoding.
Timings need an otherwise idle machine; compare figures from one invocation only.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))

from helpers import run as runner  # noqa: E402
from helpers.files import atomic_path  # noqa: E402
from seed_study import code_cells  # noqa: E402

TRAINING_MARKER = "fit("

# Runs in the worker process, which imports nothing from this checkout: the commit's own code only.
WORKER = r"""
import json, sys, time
spec = json.load(open(sys.argv[1], encoding="utf-8"))
namespace = {"__name__": "__main__"}
exec(spec["parameters"], namespace)
namespace.update(spec["overrides"])
for source in spec["cells"]:
    start = time.perf_counter()
    exec(compile(source, "<notebook cell>", "exec"), namespace)
    if spec["marker"] in source:
        seconds = time.perf_counter() - start
        history = namespace.get("history") or []
        with open(sys.argv[2], "w", encoding="utf-8") as out:
            json.dump({"seconds": seconds, "epochs": len(history),
                       "valid_accuracy": history[-1].get("valid_acc", history[-1].get("valid_accuracy"))
                       if history else None}, out)
        break
else:
    raise SystemExit("no cell calls " + spec["marker"])
"""


def worktree(rev: str, parent: Path) -> Path:
    """A detached worktree of `rev` under `parent`."""
    folder = parent / rev.replace("/", "_")
    subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(folder), rev], cwd=REPO_ROOT, check=True)
    return folder


def time_epoch(checkout: Path, stem: str, profile: str, data_dir: Path | None, scratch: Path) -> dict:
    """Run `checkout`'s notebook `stem` up to its training cell with one epoch; its timing."""
    parameters, cells = code_cells(checkout / "notebooks" / f"{stem}.ipynb")
    overrides = {"PROFILE": profile, "EPOCHS": 1, "RESULTS_DIR": str(scratch / "results"),
                 "DATA_DIR": str(data_dir) if data_dir else None}
    spec, result = scratch / "spec.json", scratch / "result.json"
    spec.write_text(json.dumps({"parameters": parameters, "overrides": overrides, "cells": cells,
                                "marker": TRAINING_MARKER}), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(checkout), "MPLBACKEND": "Agg"}
    with open(os.devnull, "w") as quiet:
        subprocess.run([sys.executable, "-c", WORKER, str(spec), str(result)], cwd=checkout / "notebooks", env=env,
                       check=True, stdout=quiet)
    return json.loads(result.read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lesson", required=True, help="the lesson's number, e.g. 2")
    parser.add_argument("--revs", required=True, help="commits to compare, in order, e.g. 240d091,HEAD")
    parser.add_argument("--data-dir", type=Path, default=os.environ.get("SENTIMENT_DATA_DIR") or None)
    parser.add_argument("--profile", default="full", choices=("full", "smoke"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.profile == "full" and args.data_dir is None:
        raise SystemExit("pass --data-dir (or set SENTIMENT_DATA_DIR): the full profile reads the real data")
    lesson, = runner.select(args.lesson)
    revs = [rev.strip() for rev in args.revs.split(",") if rev.strip()]
    data_dir = args.data_dir.expanduser().resolve() if args.data_dir else None
    runs, checkouts = [], []
    with tempfile.TemporaryDirectory(prefix="bench-epoch-") as tmp:
        try:
            for rev in revs:
                commit = subprocess.run(["git", "rev-parse", rev], cwd=REPO_ROOT, check=True, capture_output=True,
                                        text=True).stdout.strip()
                checkout = worktree(commit, Path(tmp))
                checkouts.append(checkout)
                scratch = Path(tmp) / f"scratch-{commit[:12]}"
                scratch.mkdir()
                timing = time_epoch(checkout, lesson.stem, args.profile, data_dir, scratch)
                runs.append({"rev": rev, "commit": commit, **timing})
                print(f"{lesson.stem} at {commit[:7]}: one epoch (training + validation) {timing['seconds']:.1f} s",
                      flush=True)
        finally:
            for checkout in checkouts:
                subprocess.run(["git", "worktree", "remove", "--force", str(checkout)], cwd=REPO_ROOT, check=False)
    result = {"benchmark": f"one training epoch of {lesson.stem} ({args.profile} profile), each commit's notebook "
                           "and library, back to back in one invocation",
              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
              "runs": runs}
    if len(runs) >= 2:
        result["ratio_last_to_first"] = runs[-1]["seconds"] / runs[0]["seconds"]
        print(f"last / first: {result['ratio_last_to_first']:.2f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(args.out) as tmp_out:
            tmp_out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
