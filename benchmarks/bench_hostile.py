"""Time and peak memory of the heaviest requests within the API's limits, per handler function.

    python benchmarks/bench_hostile.py [--functions sentiment,question_type] [--cases a_comma_64,...]
                                       [--repeat 3] [--models-dir deployment/models] [--out results/benchmarks/hostile.json]

The requests are tests/deploy_support.py's `heavy_requests` (64 texts of 15,620 one-character tokens, of
distinct new words, of symbol runs and chunks: 0.93 to 1.0 MB each). Every (function, case) runs --repeat
times, each time in a fresh Python that loads the model and then sends that case's requests
(deploy_support.PROBE), so a run's peak RSS (VmHWM) is the loaded model plus that case alone, and the
first request meets a cold spaCy string table, as a fresh Lambda container does. Seconds are each request's
wall time through the handler (JSON parsing, checks, tokenizing, the model, the response).

Goals (issue 11): every request within the limits answers in under 2 s on the course's machine and peaks
under 700 MB RSS. Run it on an otherwise idle machine; the results go to --out (JSON) and are printed.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests")]

from deploy_support import HEAVY_REQUESTS, bundles_for_tests, probe_requests  # noqa: E402

GOALS = {"seconds": 2.0, "peak_rss_mb": 700.0}
FUNCTIONS = ("sentiment", "question_type")


def main(argv=None) -> dict:
    cases = list(HEAVY_REQUESTS)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--functions", default=",".join(FUNCTIONS), help="comma-separated: " + ", ".join(FUNCTIONS))
    parser.add_argument("--cases", default=",".join(cases), help="comma-separated: " + ", ".join(cases))
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes per function and case")
    parser.add_argument("--models-dir", default=None,
                        help="bundles to serve (default: deployment/models, else bundles trained on the fixtures)")
    parser.add_argument("--out", default=None, help="write the results as JSON here (e.g. results/benchmarks/hostile.json)")
    args = parser.parse_args(argv)
    functions, chosen = args.functions.split(","), args.cases.split(",")
    unknown = sorted(set(functions) - set(FUNCTIONS)) + sorted(set(chosen) - set(cases))
    if unknown or args.repeat < 1:
        parser.error(f"unknown function or case: {', '.join(unknown)}" if unknown else "--repeat must be at least 1")

    with tempfile.TemporaryDirectory() as scratch:
        models_dir = Path(args.models_dir) if args.models_dir else bundles_for_tests(Path(scratch))
        results = {}
        for function in functions:
            results[function] = {}
            for case in chosen:
                runs = [probe_requests(function, [case], models_dir) for _ in range(args.repeat)]
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

    from helpers.results import git_commit

    worst_seconds = max(row["seconds"]["max"] for rows in results.values() for row in rows.values())
    worst_rss = max(row["peak_rss_mb"] for rows in results.values() for row in rows.values())
    report = {
        "benchmark": "heaviest requests within the API limits (1 MB body, 64 texts): seconds and peak RSS",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {"onnxruntime": onnxruntime.__version__, "numpy": numpy.__version__, "spacy": spacy.__version__},
        "models_dir": str(args.models_dir or "deployment/models (or fixture-trained bundles)"),
        "repeat": args.repeat,
        "goals": GOALS,
        "worst": {"seconds": worst_seconds, "peak_rss_mb": worst_rss,
                  "within_goals": worst_seconds < GOALS["seconds"] and worst_rss < GOALS["peak_rss_mb"]},
        "results": results,
    }
    print(f"worst: {worst_seconds:.2f} s, {worst_rss:.0f} MB peak RSS (goals: < {GOALS['seconds']} s, "
          f"< {GOALS['peak_rss_mb']:.0f} MB)")
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {out}")
    return report


if __name__ == "__main__":
    main()
