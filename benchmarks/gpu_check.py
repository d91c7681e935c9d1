"""The course on a CUDA GPU, in one command: every notebook, three ways, and a table of the results.

    python benchmarks/gpu_check.py DATA_DIR [--output-dir DIR] [--jobs N] [--allow-cpu]

Run it from a checkout, in an environment that already has the course's dependencies with a CUDA
build of torch (`make setup` on a GPU machine): it installs nothing and downloads nothing.
DATA_DIR is the local data folder the notebooks read (IMDb, TREC, GloVe; what
`SENTIMENT_DATA_DIR` names). It runs `python -m helpers.run` three times:

1. **smoke**: every notebook in the smoke profile, in the course's own precision (bfloat16 on
   compute capability 8.0 and newer, float16 with a gradient scaler below);
2. **full**: lessons 2, 4 and 5 in the full profile (whole datasets, all epochs);
3. **smoke-fp16**: every notebook in the smoke profile again with `SENTIMENT_PRECISION=fp16`, so the
   float16 path (autocast and gradient scaler) runs on a bfloat16 GPU too (lesson 1's own loop
   stays float32, as it always does; the table says what each notebook trained in).

Each run takes `--jobs N` notebooks at a time (default: a quarter of the cores, 1 to 4), each
kernel with cores // N torch threads. Then it prints one table: per notebook and run the
precision, minutes and test accuracy (or the error), headed by the GPU, its compute capability
and the torch, CUDA and Python versions; `gpu_check.md` and `gpu_check.json` in the output folder
keep it, beside each run's executed notebooks, metrics and summary (default output folder:
`results-gpu-check/` in the checkout, git-ignored). The exit code is 1 when a notebook failed.

Without a CUDA GPU it refuses in one line (exit code 2); `--allow-cpu` runs it on the CPU
anyway, which only makes sense for testing the script (the full runs take hours there).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))   # this checkout's helpers, also when run from elsewhere

from helpers.course import recorded_what  # noqa: E402
from helpers.run import core_count  # noqa: E402

# (name, profile, notebooks (None: all), SENTIMENT_PRECISION (None: the course's rule))
RUNS = (("smoke", "smoke", None, None),
        ("full", "full", "2,4,5", None),
        ("smoke-fp16", "smoke", None, "fp16"))


def default_jobs(cores: int) -> int:
    """Notebooks at once: a quarter of the cores, at least 1 and at most 4 (four kernels with 4+ threads each
    keep a 16-core GPU machine busy without oversubscribing it)."""
    return max(1, min(4, cores // 4))


def environment() -> dict:
    """What the table's heading names: GPU (or None), compute capability, torch, CUDA and Python versions."""
    import torch   # deferred: only the heading needs torch; the runs are separate processes

    info = {"gpu": None, "compute_capability": None, "torch": torch.__version__, "cuda": torch.version.cuda,
            "python": platform.python_version()}
    if torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability(0)
        info.update(gpu=torch.cuda.get_device_name(0), compute_capability=f"{major}.{minor}")
    return info


def heading(info: dict) -> str:
    """'NVIDIA H200, compute capability 9.0 | torch 2.13.0+cu128 (CUDA 12.8) | Python 3.12.3'."""
    gpu = (f"{info['gpu']}, compute capability {info['compute_capability']}" if info["gpu"]
           else "no CUDA GPU (run on the CPU with --allow-cpu)")
    cuda = f" (CUDA {info['cuda']})" if info.get("cuda") else ""
    return f"{gpu} | torch {info['torch']}{cuda} | Python {info['python']}"


def table_rows(run: str, summary: dict) -> list[dict]:
    """One row per notebook of one run, from the runner's summary.json: its precision, minutes and result
    (its test accuracy, said as the runner says it, or its error)."""
    rows = []
    for row in summary.get("notebooks", []):
        result = (f"FAILED: {row['error'].splitlines()[0][:100]}" if "error" in row
                  else recorded_what(row, row.get("test_accuracy")))
        rows.append({"run": run, "notebook": row["notebook"], "precision": row.get("precision") or "-",
                     "minutes": row.get("minutes"), "result": result, "passed": "error" not in row})
    return rows


def markdown_table(rows: list[dict], info: dict, wall_minutes: dict[str, float]) -> str:
    """The check's report: the heading, one line per notebook and run, each run's wall time."""
    lines = [f"GPU check: {heading(info)}", "",
             "| run | notebook | precision | minutes | result |", "|---|---|---|---|---|"]
    for row in rows:
        minutes = "-" if row["minutes"] is None else f"{row['minutes']:.1f}"
        lines.append(f"| {row['run']} | {row['notebook']} | {row['precision']} | {minutes} | {row['result']} |")
    failed = sum(not row["passed"] for row in rows)
    walls = ", ".join(f"{run} {minutes:.1f}" for run, minutes in wall_minutes.items())
    lines += ["", f"{len(rows) - failed} of {len(rows)} notebook runs passed; wall minutes per run: {walls} "
              f"(total {sum(wall_minutes.values()):.1f})."]
    return "\n".join(lines) + "\n"


def run_command(profile: str, only: str | None, data_dir: Path, output_dir: Path, jobs: int) -> list[str]:
    """The runner's command line for one run."""
    command = [sys.executable, "-m", "helpers.run", "--profile", profile, "--data-dir", str(data_dir),
               "--output-dir", str(output_dir), "--jobs", str(jobs)]
    return command + (["--only", only] if only else [])


def refusal(info: dict, allow_cpu: bool) -> str | None:
    """The one line that refuses to run without a CUDA GPU (None: go ahead)."""
    if info["gpu"] or allow_cpu:
        return None
    return (f"gpu_check: no CUDA GPU here (torch {info['torch']} sees none): run it on a machine with an NVIDIA GPU "
            "and a CUDA build of torch, or pass --allow-cpu to run it on the CPU anyway (for testing; hours)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/gpu_check.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", type=Path, help="the local data folder (IMDb, TREC, GloVe)")
    parser.add_argument("--output-dir", type=Path, default=ROOT / "results-gpu-check",
                        help="where the runs and the table go (default: results-gpu-check/ in the checkout)")
    parser.add_argument("--jobs", type=int, default=None, help="notebooks at once (default: a quarter of the "
                        "cores, 1 to 4)")
    parser.add_argument("--allow-cpu", action="store_true", help="run without a CUDA GPU (to test this script)")
    args = parser.parse_args(argv)
    info = environment()
    message = refusal(info, args.allow_cpu)
    if message:
        print(message, file=sys.stderr)
        return 2
    if not args.data_dir.is_dir():
        print(f"gpu_check: no data folder at {args.data_dir}: pass the folder holding imdb/, trec/ and glove/",
              file=sys.stderr)
        return 2
    jobs = args.jobs or default_jobs(core_count())
    data_dir, output_dir = args.data_dir.resolve(), args.output_dir.resolve()
    print(f"GPU check: {heading(info)}; {jobs} notebook(s) at a time; output in {output_dir}", file=sys.stderr)
    rows, wall_minutes, failed = [], {}, False
    for run, profile, only, precision in RUNS:
        environ = {key: value for key, value in os.environ.items() if key != "SENTIMENT_PRECISION"}
        if precision:
            environ["SENTIMENT_PRECISION"] = precision
        folder = output_dir / run
        folder.mkdir(parents=True, exist_ok=True)
        print(f"== {run}: profile {profile}, notebooks {only or 'all'}, precision {precision or 'the course rule'}",
              file=sys.stderr, flush=True)
        start = time.perf_counter()
        with open(folder / "runner.log", "w", encoding="utf-8") as log:   # the runner's summary; lines go to stderr
            code = subprocess.run(run_command(profile, only, data_dir, folder, jobs), cwd=ROOT, env=environ,
                                  stdout=log).returncode
        wall_minutes[run] = (time.perf_counter() - start) / 60
        failed |= code != 0
        summary = folder / "summary.json"
        if summary.is_file():
            rows += table_rows(run, json.loads(summary.read_text(encoding="utf-8")))
        else:
            rows.append({"run": run, "notebook": "(the runner)", "precision": "-", "minutes": None, "passed": False,
                         "result": f"FAILED: exit code {code}, no summary (see {folder / 'runner.log'})"})
    table = markdown_table(rows, info, wall_minutes)
    (output_dir / "gpu_check.md").write_text(table, encoding="utf-8")
    (output_dir / "gpu_check.json").write_text(json.dumps({"environment": info, "jobs": jobs, "rows": rows,
                                                           "wall_minutes": wall_minutes}, indent=2) + "\n",
                                               encoding="utf-8")
    print(table, end="")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
