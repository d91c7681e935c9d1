"""Run the lesson notebooks headlessly with papermill and summarise their results.

    python -m helpers.run --profile {smoke,full} [--only 1,3] [--output-dir DIR] [--inplace]

Executed copies go to `<output dir>/<stem>/<stem>.ipynb` (or replace the notebooks
in `notebooks/` with `--inplace`, which is how the committed reference outputs are
made), each notebook writes `<output dir>/<stem>/metrics.json`, and the run ends
with `summary.md` / `summary.json` there. A failing notebook is reported and the
others still run; the exit code is then 1.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from .files import REPO_ROOT, atomic_path
from .results import git_commit

NOTEBOOK_DIR = REPO_ROOT / "notebooks"


@dataclass(frozen=True)
class Lesson:
    number: int
    stem: str
    title: str
    published_accuracy: float  # the tutorial's reported test accuracy, %


LESSONS = [
    Lesson(1, "01_simple_rnn", "Simple RNN", 47.87),
    Lesson(2, "02_upgraded_sentiment", "Upgraded: bi-LSTM, packing, GloVe", 85.28),
    Lesson(3, "03_faster_sentiment", "FastText (bag of bigrams)", 85.42),
    Lesson(4, "04_convolutional_sentiment", "CNN (Kim 2014)", 85.31),
    Lesson(5, "05_multiclass_questions", "Multi-class CNN on TREC", 86.07),
    Lesson(6, "06_transformers_sentiment", "Frozen BERT + GRU", 91.58),
]


def available_lessons() -> list[Lesson]:
    """The lessons whose notebook exists in `notebooks/`."""
    return [lesson for lesson in LESSONS if (NOTEBOOK_DIR / f"{lesson.stem}.ipynb").is_file()]


def select(only: str | None) -> list[Lesson]:
    """Lessons by number ("1,3"), all available ones when `only` is empty."""
    lessons = available_lessons()
    if not only:
        return lessons
    try:
        wanted = {int(part) for part in only.split(",") if part.strip()}
    except ValueError:
        raise SystemExit(f"--only takes lesson numbers like 1,3; got {only!r}") from None
    unknown = wanted - {lesson.number for lesson in lessons}
    if unknown:
        raise SystemExit(f"no notebook for lesson(s) {sorted(unknown)}; available: "
                         f"{', '.join(str(lesson.number) for lesson in lessons)}")
    return [lesson for lesson in lessons if lesson.number in wanted]


def absolute_environment_paths(environ=os.environ) -> None:
    """Rewrite relative folders in `SENTIMENT_DATA_DIR`, `SENTIMENT_CACHE_DIR` and a local
    `SENTIMENT_TRANSFORMER` as absolute paths, read from the current directory.

    The kernels run in `notebooks/`, where `../shared/data` typed at the repository root
    would name another folder. A transformer value that is no existing path is a hub name
    and stays as it is.
    """
    for name in ("SENTIMENT_DATA_DIR", "SENTIMENT_CACHE_DIR", "SENTIMENT_TRANSFORMER"):
        value = environ.get(name)
        if not value:
            continue
        path = Path(value).expanduser()
        if name != "SENTIMENT_TRANSFORMER" or path.exists():
            environ[name] = str(path.resolve())


def strip_injected_parameters(path: Path) -> None:
    """Drop papermill's injected-parameters cell, so a notebook run in place stays as written."""
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    notebook.cells = [cell for cell in notebook.cells
                      if "injected-parameters" not in cell.get("metadata", {}).get("tags", [])]
    nbformat.write(notebook, path)


ROW_KEYS = ("test_accuracy", "test_loss", "device", "precision", "epochs", "vectors", "profile", "git_commit",
            "n_train", "n_valid", "n_test", "train_seconds", "beyond", "model", "transformer", "max_length")


def execute(lesson: Lesson, output_dir: Path, inplace: bool, log_output: bool) -> dict:
    """Run one notebook; return its summary row (with "error" on failure)."""
    import papermill

    source = NOTEBOOK_DIR / f"{lesson.stem}.ipynb"
    folder = output_dir / lesson.stem
    folder.mkdir(parents=True, exist_ok=True)
    executed = folder / f"{lesson.stem}.ipynb"
    row = {"lesson": lesson.number, "notebook": lesson.stem, "title": lesson.title,
           "published_accuracy": lesson.published_accuracy}
    failed_copy = folder / f"{lesson.stem}.failed.ipynb"
    failed_copy.unlink(missing_ok=True)
    start = time.time()
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        partial = Path(scratch) / executed.name
        try:
            papermill.execute_notebook(str(source), str(partial), cwd=str(NOTEBOOK_DIR), kernel_name="python3",
                                       progress_bar=False, log_output=log_output)
            os.replace(partial, executed)
            if inplace:
                with atomic_path(source) as tmp:
                    shutil.copyfile(executed, tmp)
                    strip_injected_parameters(tmp)
        except Exception as err:  # papermill wraps cell errors; report and carry on with the next notebook
            name = getattr(err, "ename", type(err).__name__)
            value = getattr(err, "evalue", str(err))
            row["error"] = f"{name}: {value}".strip()[:2000]
            if partial.is_file():  # keep what ran, with the traceback in its cell, for debugging
                os.replace(partial, failed_copy)
                row["failed_notebook"] = str(failed_copy)
    row["minutes"] = (time.time() - start) / 60
    metrics_path = folder / "metrics.json"
    if "error" not in row:
        if not metrics_path.is_file() or metrics_path.stat().st_mtime < start:
            row["error"] = f"the notebook ran but wrote no fresh {metrics_path}"
        else:
            metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
            row.update({key: metrics.get(key) for key in ROW_KEYS})
    with atomic_path(folder / "run.json") as tmp:
        tmp.write_text(json.dumps(row, indent=2) + "\n", encoding="utf-8")
    return row


def collect_rows(output_dir: Path) -> list[dict]:
    """The latest runner row of every available lesson found in `output_dir` (this run's or an earlier one's)."""
    rows = []
    for lesson in available_lessons():
        path = output_dir / lesson.stem / "run.json"
        if path.is_file():
            row = json.loads(path.read_text(encoding="utf-8"))
            metrics_path = path.with_name("metrics.json")
            if "error" not in row and metrics_path.is_file():   # fields a row written by an older runner lacks
                metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
                if metrics.get("git_commit") == row.get("git_commit"):
                    row.update({key: metrics[key] for key in ROW_KEYS if key in metrics and key not in row})
            rows.append(row)
    return rows


def update_readme(table: str, readme: Path = REPO_ROOT / "README.md") -> None:
    """Put `table` between the README's results markers."""
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    text = readme.read_text(encoding="utf-8")
    if start not in text or end not in text:
        raise SystemExit(f"{readme} has no {start} ... {end} markers")
    head, rest = text.split(start, 1)
    with atomic_path(readme) as tmp:
        tmp.write_text(head + start + "\n" + table + end + rest.split(end, 1)[1], encoding="utf-8")


def short_commit(commit: str | None) -> str:
    """`abc123def456`, flagged when the run had uncommitted code changes."""
    if not commit:
        return ""
    return f"`{commit[:12]}`" + (" (uncommitted changes)" if commit.endswith("-dirty") else "")


def summary_table(rows: list[dict]) -> str:
    """The results as a Markdown table, one row per notebook."""
    lines = ["| # | notebook | test accuracy | tutorial | beyond the tutorial | profile | device | epochs "
             "| minutes | commit |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        if "error" in row:
            result = f"**failed**: {row['error'].splitlines()[0][:120]}"
            beyond = ""
        else:
            result = f"{100 * row['test_accuracy']:.2f}%"
            extra = row.get("beyond") or {}
            beyond = f"{100 * extra['test_accuracy']:.2f}% ({extra.get('how', '')})" if extra else ""
        device = row.get("device") or ""
        if device and row.get("precision"):
            device += f", training in {row['precision']}"
        notebook = row["notebook"]
        if row.get("transformer"):
            notebook += f" ({row['transformer']}, max length {row.get('max_length')})"
        lines.append(f"| {row['lesson']} | {notebook} | {result} | {row['published_accuracy']:.2f}% | "
                     f"{beyond} | {row.get('profile') or ''} | {device} | "
                     f"{row.get('epochs') or ''} | {row['minutes']:.1f} | {short_commit(row.get('git_commit'))} |")
    lines += ["", f"Total: {sum(row['minutes'] for row in rows):.1f} minutes (whole notebooks, as run by "
              "`python -m helpers.run`)."]
    if any(row.get("profile") == "smoke" for row in rows):
        lines += ["", "Smoke profile rows: a few hundred examples and one epoch; they only show the code runs."]
    return "\n".join(lines) + "\n"


def summary_markdown(rows: list[dict], commit: str) -> str:
    """The summary page: a header and the table."""
    return (f"# Results\n\nWritten {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `python -m helpers.run` "
            f"(at commit `{commit}`). Test accuracy on the official test sets (IMDb: 25,000 reviews, TREC: 500 "
            "questions); *tutorial* is the original tutorials' published figure; *commit* is the one each "
            "notebook's run recorded.\n\n" + summary_table(rows))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=["smoke", "full"], default=os.environ.get("SENTIMENT_PROFILE", "full"))
    parser.add_argument("--only", help="lesson numbers to run, e.g. 1,3 (default: all)")
    parser.add_argument("--output-dir", type=Path, default=REPO_ROOT / "results")
    parser.add_argument("--inplace", action="store_true", help="write the executed notebooks over notebooks/*.ipynb")
    parser.add_argument("--quiet", action="store_true", help="do not stream the notebooks' output")
    parser.add_argument("--readme", action="store_true", help="also write the results table into README.md")
    args = parser.parse_args(argv)
    lessons = select(args.only)
    output_dir = args.output_dir.resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    # the notebooks read these when their parameters are left at None
    absolute_environment_paths()
    os.environ["SENTIMENT_PROFILE"] = args.profile
    os.environ["SENTIMENT_RESULTS_DIR"] = str(output_dir)
    commit = git_commit()
    rows = []
    for lesson in tqdm(lessons, desc=f"notebooks ({args.profile})", unit="notebook", file=sys.stderr):
        row = execute(lesson, output_dir, args.inplace, log_output=not args.quiet)
        rows.append(row)
        status = f"FAILED: {row['error'].splitlines()[0]}" if "error" in row else f"{row['test_accuracy']:.2%}"
        tqdm.write(f"[{lesson.stem}] {status} in {row['minutes']:.1f} min", file=sys.stderr)
    everything = collect_rows(output_dir)  # this run's rows and those of earlier runs into the same folder
    with atomic_path(output_dir / "summary.json") as tmp:
        tmp.write_text(json.dumps({"git_commit": commit, "notebooks": everything}, indent=2) + "\n",
                       encoding="utf-8")
    with atomic_path(output_dir / "summary.md") as tmp:
        tmp.write_text(summary_markdown(everything, commit), encoding="utf-8")
    if args.readme:
        update_readme(summary_table(everything))
    print(summary_markdown(everything, commit))
    failed = [row["notebook"] for row in rows if "error" in row]
    if failed:
        print(f"{len(failed)} notebook(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
