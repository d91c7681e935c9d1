"""How much a lesson's test accuracy moves with the random seed: its notebook's code, once per seed.

    python benchmarks/seed_study.py --lesson 5 [--seeds 1234,1,2,3,4,5,6,7,8,9] [--data-dir ../shared/data]
                                    [--out results/benchmarks/seeds_05_multiclass_questions.json]

For each seed the notebook's code cells run in order in a fresh namespace, inside
`notebooks/` as papermill runs them, with the full profile and `SEED` set after the
parameters cell (where papermill would inject it). Metrics and plots go to a temporary
folder, and so do the bundles the record cell exports (a results folder given to
`start_lesson` takes them, so the committed bundles stay untouched). The Colab set-up
cell is skipped. It records the
lesson's test accuracy and, for a notebook with a "going further" section, that
section's test accuracy, with their mean, standard deviation and range.

This is a measurement, not a test. A tutorial's published figure is one seed's draw
from such a spread, so it says how far a single run may land from it. The data folder
comes from --data-dir or env SENTIMENT_DATA_DIR.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import matplotlib

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from helpers.files import atomic_path  # noqa: E402
from helpers.results import git_commit  # noqa: E402
from helpers import run as runner  # noqa: E402

DEFAULT_SEEDS = "1234,1,2,3,4,5,6,7,8,9"
SKIPPED = ("google.colab",)


def code_cells(notebook: Path) -> tuple[str, list[str]]:
    """(the parameters cell, the other code cells to run after it) of a notebook."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    code = [cell for cell in cells if cell["cell_type"] == "code"]
    parameters = [cell for cell in code if "parameters" in cell.get("metadata", {}).get("tags", [])]
    if len(parameters) != 1:
        raise SystemExit(f"{notebook.name}: expected one cell tagged 'parameters', found {len(parameters)}")
    start = code.index(parameters[0])
    later = ["".join(cell["source"]) for cell in code[start + 1:]]
    return "".join(parameters[0]["source"]), [source for source in later
                                              if not any(marker in source for marker in SKIPPED)]


def run_seed(parameters: str, cells: list[str], stem: str, seed: int, data_dir: Path) -> dict:
    """Run the cells with `SEED = seed`; returns the metrics.json the notebook wrote."""
    with tempfile.TemporaryDirectory(prefix="seed-study-") as results, open(os.devnull, "w") as quiet:
        namespace = {"__name__": "__main__"}
        exec(parameters, namespace)
        namespace.update(PROFILE="full", DATA_DIR=str(data_dir), SEED=seed, RESULTS_DIR=results)
        with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            for source in cells:
                exec(compile(source, f"<{stem} cell>", "exec"), namespace)
        return json.loads((Path(results) / stem / "metrics.json").read_text(encoding="utf-8"))


def spread(values: list[float]) -> dict:
    """Mean, sample standard deviation, min and max, in percent."""
    return {"mean": 100 * statistics.mean(values), "sd": 100 * statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": 100 * min(values), "max": 100 * max(values), "n": len(values)}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lesson", type=int, required=True, help="lesson number, 1-6")
    parser.add_argument("--seeds", default=DEFAULT_SEEDS, help=f"comma-separated (default {DEFAULT_SEEDS})")
    parser.add_argument("--data-dir", default=os.environ.get("SENTIMENT_DATA_DIR"),
                        help="real data folder (default: env SENTIMENT_DATA_DIR)")
    parser.add_argument("--out", help="JSON file (default results/benchmarks/seeds_<notebook>.json)")
    args = parser.parse_args(argv)
    if not args.data_dir:
        parser.error("pass --data-dir or set SENTIMENT_DATA_DIR (the real data: a seed study on fixtures means nothing)")
    try:
        seeds = [int(seed) for seed in args.seeds.split(",") if seed.strip()]
    except ValueError:
        parser.error(f"--seeds takes integers like 1234,1,2; got {args.seeds!r}")
    lesson, = runner.select(str(args.lesson))   # the runner's check: a lesson whose notebook exists
    data_dir = Path(args.data_dir).resolve()
    # resolved before the cells run in the notebooks' folder: a relative --out is the caller's
    out = Path(args.out).resolve() if args.out else REPO_ROOT / "results" / "benchmarks" / f"seeds_{lesson.stem}.json"

    matplotlib.use("Agg")   # the cells' plots go to files, never to a window
    parameters, cells = code_cells(lesson.path)
    caller_dir = Path.cwd()
    os.chdir(lesson.path.parent)
    runs = []
    try:
        for seed in seeds:
            start = time.perf_counter()
            metrics = run_seed(parameters, cells, lesson.stem, seed, data_dir)
            beyond = (metrics.get("beyond") or {}).get("test_accuracy")
            runs.append({"seed": seed, "test_accuracy": metrics["test_accuracy"], "beyond_test_accuracy": beyond,
                         "seconds": time.perf_counter() - start})
            print(f"seed {seed:5d}: test accuracy {metrics['test_accuracy']:.2%}"
                  + (f" | going further {beyond:.2%}" if beyond is not None else ""), flush=True)
    finally:
        os.chdir(caller_dir)

    summary = {"lesson": spread([run["test_accuracy"] for run in runs])}
    if all(run["beyond_test_accuracy"] is not None for run in runs):
        summary["beyond"] = spread([run["beyond_test_accuracy"] for run in runs])
    result = {
        "benchmark": f"seed study: {lesson.stem}, full profile, one run of the notebook's code per seed",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": git_commit(REPO_ROOT), "platform": platform.platform(), "data_dir": str(data_dir),
        "published_accuracy": lesson.published_accuracy, "seeds": seeds, "runs": runs, "summary": summary,
        "at_or_above_published": sum(100 * run["test_accuracy"] >= lesson.published_accuracy for run in runs),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for name, numbers in summary.items():
        print(f"{name:7}: mean {numbers['mean']:.2f}% | sd {numbers['sd']:.2f} | "
              f"{numbers['min']:.2f}% to {numbers['max']:.2f}% over {numbers['n']} seeds")
    print(f"tutorial's published figure {lesson.published_accuracy:.2f}%: reached by "
          f"{result['at_or_above_published']} of {len(runs)} seeds\nwrote {out}")
    return result


if __name__ == "__main__":
    main()
