"""Time and peak memory of the heaviest requests within the API's limits, per handler function.

    python benchmarks/bench_hostile.py [--functions sentiment,question_type] [--cases a_comma_64,...]
                                       [--repeat 3] [--seed 0] [--models-dir deployment/models]
                                       [--data-dir ../shared/data] [--code DIR] [--out results/benchmarks/hostile.json]

The requests are tests/deploy_support.py's `heavy_requests` (64 texts of 15,620 one-character tokens, of
distinct new words, of symbol runs and chunks, of chunks of a word and 76 affixes: 0.33 to 1.0 MB each), plus
the 64 longest IMDb test reviews when a data folder is given (--data-dir, default $SENTIMENT_DATA_DIR). Every
(function, case) runs --repeat times, each time in a fresh Python that loads the model and then sends that
case's requests (deploy_support.PROBE), so a run's peak RSS (VmHWM) is the loaded model plus that case alone,
and the first request meets a cold spaCy string table, as a fresh Lambda container does. Repeat r draws its
bodies with seed --seed + r: no two runs send the same text, and no text repeats a chunk. Seconds are each
request's wall time through the handler (JSON parsing, checks, tokenizing, the model, the response).

--code DIR serves the same bodies with the handler of another checkout (e.g. `git worktree add /tmp/old main`),
so that a change is measured before and after with one command and one set of requests.

Goals (issues 11, 19): every request within the limits answers in under 2 s on the course's machine and peaks
under 700 MB RSS, and none gets a 500. Run it on an otherwise idle machine; the results go to --out (JSON) and
are printed.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests")]

from deploy_support import HEAVY_REQUESTS, REAL_REQUESTS, bundles_for_tests, heavy_requests, probe_requests  # noqa: E402

GOALS = {"seconds": 2.0, "peak_rss_mb": 700.0}
FUNCTIONS = ("sentiment", "question_type")


def code_commit(code: Path) -> str | None:
    """The commit checked out in `code` (None when it is not a git checkout)."""
    out = subprocess.run(["git", "-C", str(code), "rev-parse", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else None


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--functions", default=",".join(FUNCTIONS), help="comma-separated: " + ", ".join(FUNCTIONS))
    parser.add_argument("--cases", default=None,
                        help="comma-separated (default: all; imdb_longest_64 needs the data): "
                             + ", ".join(HEAVY_REQUESTS + REAL_REQUESTS))
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes per function and case")
    parser.add_argument("--seed", type=int, default=0, help="repeat r builds its bodies with seed + r")
    parser.add_argument("--models-dir", default=None,
                        help="bundles to serve (default: deployment/models, else bundles trained on the fixtures)")
    parser.add_argument("--data-dir", default=os.environ.get("SENTIMENT_DATA_DIR") or None,
                        help="the real data folder, for imdb_longest_64 (default: $SENTIMENT_DATA_DIR)")
    parser.add_argument("--code", type=Path, default=REPO_ROOT,
                        help="the checkout whose deployment/handler.py serves the requests (default: this one)")
    parser.add_argument("--out", default=None, help="write the results as JSON here (e.g. results/benchmarks/hostile.json)")
    args = parser.parse_args(argv)
    known = HEAVY_REQUESTS + REAL_REQUESTS
    default_cases = HEAVY_REQUESTS + (REAL_REQUESTS if args.data_dir else ())
    functions, chosen = args.functions.split(","), (args.cases.split(",") if args.cases else list(default_cases))
    unknown = sorted(set(functions) - set(FUNCTIONS)) + sorted(set(chosen) - set(known))
    if unknown or args.repeat < 1:
        parser.error(f"unknown function or case: {', '.join(unknown)}" if unknown else "--repeat must be at least 1")
    if set(chosen) & set(REAL_REQUESTS) and not args.data_dir:
        parser.error("imdb_longest_64 needs the real data: --data-dir or $SENTIMENT_DATA_DIR")
    code = args.code.resolve()
    if not (code / "deployment" / "handler.py").is_file():
        parser.error(f"--code {code} has no deployment/handler.py")

    from helpers.results import git_commit

    harness_commit = git_commit(REPO_ROOT)  # now: the code may change while the benchmark runs
    bodies = [heavy_requests(chosen, seed=args.seed + r, data_dir=args.data_dir) for r in range(args.repeat)]
    with tempfile.TemporaryDirectory() as scratch:
        models_dir = Path(args.models_dir) if args.models_dir else bundles_for_tests(Path(scratch))
        results = {}
        for function in functions:
            results[function] = {}
            for case in chosen:
                runs = [probe_requests(function, {case: bodies[r][case]}, models_dir, code_dir=code)
                        for r in range(args.repeat)]
                seconds = [s for run in runs for s in run["cases"][case]["seconds"]]
                statuses = sorted({s for run in runs for s in run["cases"][case]["statuses"]})
                results[function][case] = {
                    "statuses": statuses,
                    "requests": len(seconds),
                    "seconds": {"max": max(seconds), "median": statistics.median(seconds), "all": seconds},
                    "peak_rss_mb": max(run["cases"][case]["peak_rss_mb"] for run in runs),
                    "rss_after_loading_mb": max(run["baseline_rss_mb"] for run in runs),
                }
                row = results[function][case]
                print(f"{function:<14}{case:<20}{row['seconds']['max']:>8.2f} s max{row['seconds']['median']:>8.2f} s "
                      f"median{row['peak_rss_mb']:>8.0f} MB peak ({row['rss_after_loading_mb']:.0f} MB loaded) "
                      f"status {statuses}", flush=True)

    import numpy
    import onnxruntime
    import spacy

    rows = [row for by_case in results.values() for row in by_case.values()]
    worst_seconds = max(row["seconds"]["max"] for row in rows)
    worst_rss = max(row["peak_rss_mb"] for row in rows)
    server_errors = sum(status >= 500 for row in rows for status in row["statuses"])
    report = {
        "benchmark": "heaviest requests within the API limits (1 MB body, 64 texts): seconds and peak RSS",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": harness_commit,
        "code": {"path": str(code), "commit": code_commit(code), "this_checkout": code == REPO_ROOT.resolve()},
        "seed": args.seed,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {"onnxruntime": onnxruntime.__version__, "numpy": numpy.__version__, "spacy": spacy.__version__},
        "models_dir": str(args.models_dir or "deployment/models (or fixture-trained bundles)"),
        "repeat": args.repeat,
        "goals": GOALS,
        "worst": {"seconds": worst_seconds, "peak_rss_mb": worst_rss, "statuses_5xx": server_errors,
                  "within_goals": worst_seconds < GOALS["seconds"] and worst_rss < GOALS["peak_rss_mb"]
                  and server_errors == 0},
        "results": results,
    }
    print(f"worst: {worst_seconds:.2f} s, {worst_rss:.0f} MB peak RSS, {server_errors} answers 5xx "
          f"(goals: < {GOALS['seconds']} s, < {GOALS['peak_rss_mb']:.0f} MB, none)")
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {out}")
    return report


if __name__ == "__main__":
    main()
