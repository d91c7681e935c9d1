"""Run the course's notebooks headlessly with papermill and summarise their results.

    python -m helpers.run --profile {smoke,full} [--only 1,3,A] [--notebooks DIR] [--data-dir DIR]
                          [--output-dir DIR] [--jobs N] [--inplace] [--readme] [--quiet | --log-output]

The notebooks are found in `--notebooks` (default: the checkout's `notebooks/`, or the
working folder outside a checkout): numbered lessons (`01_simple_rnn.ipynb`) and lettered
appendices (`A_own_dataset.ipynb`), each with its title, the tutorial's published accuracy
and its kind in its own metadata (`"course": {"title": ..., "published_accuracy": ...,
"kind": "lesson" | "baseline" | "appendix"}`; without "kind", numbered notebooks are lessons
and lettered ones appendices), so a new notebook needs no change here. Each runs with papermill parameters (`PROFILE`,
`DATA_DIR`, `RESULTS_DIR` when given); its executed copy goes to
`<output dir>/<stem>/<stem>.ipynb` (or replaces the notebook with `--inplace`, which is how
the committed reference outputs are made), it writes `<output dir>/<stem>/metrics.json`,
and the run ends with `summary.md` / `summary.json` there. Without `--output-dir` the
output folder is the profile's default (see `helpers.course`: the checkout's `results/` for
the full profile, `results-smoke/` for the smoke one). A failing notebook is reported and
the others still run; the exit code is then 1.

`--jobs N` runs N notebooks at once (a many-core machine, a GPU machine). The cores are then
shared out: each kernel gets `SENTIMENT_THREADS` = cores // N (at least 1) torch threads,
unless `SENTIMENT_THREADS` is set already; N kernels with as many threads as cores each would
fight over the cores. Lesson 7 starts only when lesson 3 has finished (it serves what lesson 3
saved). Results and summary are those of a one-at-a-time run.

The console shows one line per notebook (its test accuracy and minutes, or its error) and
the summary table; `--log-output` streams the notebooks' own output too, `--quiet` prints
the summary only. Inside the kernels progress bars stay off (`helpers.progress`: a batch
run has no one watching), so training prints one line per epoch; the kernels talk to the
runner over Unix sockets, not TCP, and are shut down without the interrupt jupyter_client
sends by default (`FinishedKernelManager`), so a notebook that passed leaves no kernel noise
in the console.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import nbformat
from jupyter_client.manager import AsyncKernelManager
from traitlets import Unicode
from traitlets.config import Config

from .course import (PROFILES, absolute_if_path, checkout_root, course_url, default_output_dir, get_profile,
                     recorded_what)
from .files import atomic_path
from .results import git_commit, read_metrics
from .sync import NOTEBOOK_NAME, lesson_notebooks

METADATA_KEY = "course"   # the notebook metadata entry holding its title, published accuracy and kind
KINDS = ("lesson", "baseline", "appendix")   # the summary's order: lessons, baselines, other appendices
# With --jobs, a notebook that reads another one's results starts when that one has finished: lesson 7
# serves the bundle and weights lesson 3 leaves in the results folder.
STARTS_AFTER = {"7": "3"}
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")   # the colours of IPython's tracebacks


@dataclass(frozen=True)
class Lesson:
    """One notebook of the course: `key` is "1" for 01_simple_rnn, "A" for A_own_dataset."""

    key: str
    stem: str
    title: str
    published_accuracy: float | None  # the tutorial's reported test accuracy, %; None where there is none
    path: Path
    kind: str = "lesson"   # one of KINDS

    @property
    def order(self) -> tuple:
        """Lessons by number, then appendices by letter."""
        return (0, int(self.key), "") if self.key.isdigit() else (1, 0, self.key)


def default_notebook_dir() -> Path:
    """The checkout's notebooks/, or the working folder outside a checkout."""
    root = checkout_root()
    return root / "notebooks" if root else Path.cwd()


def read_lesson(path: Path) -> Lesson:
    """The lesson a notebook file is, from its name and its metadata."""
    match = NOTEBOOK_NAME.fullmatch(path.name)
    if match is None:
        raise ValueError(f"{path.name} is not named like a lesson (01_name.ipynb) or an appendix (A_name.ipynb)")
    info = nbformat.read(path, as_version=4).metadata.get(METADATA_KEY, {})
    key = str(int(match["key"])) if match["key"].isdigit() else match["key"]
    kind = info.get("kind") or ("lesson" if key.isdigit() else "appendix")
    if kind not in KINDS:
        raise ValueError(f"{path.name}: metadata course.kind must be one of {', '.join(KINDS)}, not {kind!r}")
    return Lesson(key, path.stem, info.get("title") or path.stem.split("_", 1)[1].replace("_", " "),
                  info.get("published_accuracy"), path, kind)


def discover(folder: Path) -> list[Lesson]:
    """Every lesson and appendix notebook in `folder`, lessons by number, then appendices by letter."""
    paths = lesson_notebooks(folder) if Path(folder).is_dir() else []
    return sorted((read_lesson(path) for path in paths), key=lambda lesson: lesson.order)


def select(only: str | None, folder: Path | None = None) -> list[Lesson]:
    """Lessons by key ("1,3,A"); every one found in `folder` (default `default_notebook_dir()`) when `only` is empty."""
    folder = Path(folder or default_notebook_dir())
    lessons = discover(folder)
    if not lessons:
        raise SystemExit(f"no course notebooks (01_name.ipynb, A_name.ipynb) in {folder}: pass --notebooks DIR, "
                         f"or download the notebooks from {course_url()} (its notebooks/ folder) into this folder")
    if not only:
        return lessons
    wanted = [part.strip().upper().lstrip("0") or "0" for part in only.split(",") if part.strip()]
    if not wanted or not all(part.isdigit() or re.fullmatch(r"[A-Z]", part) for part in wanted):
        raise SystemExit(f"--only takes lesson numbers and appendix letters like 1,3,A; got {only!r}")
    unknown = [part for part in wanted if part not in {lesson.key for lesson in lessons}]
    if unknown:
        raise SystemExit(f"no notebook for lesson(s) {', '.join(unknown)} in {folder}; available: "
                         f"{', '.join(lesson.key for lesson in lessons)}")
    return [lesson for lesson in lessons if lesson.key in wanted]


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
        if name == "SENTIMENT_TRANSFORMER":
            environ[name] = absolute_if_path(value)
        else:
            environ[name] = str(Path(value).expanduser().resolve())


MACHINE_PATH_PARAMETERS = ("DATA_DIR", "RESULTS_DIR")


def strip_injected_parameters(path: Path) -> None:
    """Drop papermill's injected-parameters cell, so a notebook run in place stays as written, and the
    machine's paths papermill records in the notebook's metadata (input/output paths, folder parameters)."""
    notebook = nbformat.read(path, as_version=4)
    notebook.cells = [cell for cell in notebook.cells
                      if "injected-parameters" not in cell.get("metadata", {}).get("tags", [])]
    record = notebook.metadata.get("papermill", {})
    for key in ("input_path", "output_path"):
        record.pop(key, None)
    for name in MACHINE_PATH_PARAMETERS:
        record.get("parameters", {}).pop(name, None)
    nbformat.write(notebook, path)


ROW_KEYS = ("test_accuracy", "test_loss", "device", "hardware", "precision", "epochs", "vectors", "profile", "git_commit",
            "n_train", "n_valid", "n_test", "train_seconds", "beyond", "model", "transformer", "max_length",
            "rows", "result", "dataset")


def notebook_parameters(lesson: Lesson, values: dict) -> dict:
    """`values` restricted to the parameters the notebook's `parameters` cell defines, None values left out
    (the notebook's own default, resolved by the course layer, then applies)."""
    import papermill   # deferred: slow to import; only running a notebook needs it (not --summary-only, conftest)

    known = set(papermill.inspect_notebook(str(lesson.path)))
    return {name: value for name, value in values.items() if name in known and value is not None}


def kernel_config(socket_dir: Path, console_log: Path | None = None):
    """Settings for the kernel that runs a notebook: on Unix, it talks to the runner over Unix sockets in
    `socket_dir` (IPC transport: nothing listens on the network, so ipykernel has no reason to warn that
    TCP is unencrypted); on Windows, which has no IPC transport, the default local TCP. `console_log`: the
    file that takes what the kernel process itself writes to its stdout and stderr (not a cell's output,
    which goes into the notebook); None leaves them on the runner's console."""
    settings = {"FinishedKernelManager": {"console_log": str(console_log) if console_log else ""}}
    if os.name != "nt":
        settings["KernelManager"] = {"transport": "ipc", "ip": str(Path(socket_dir) / "kernel")}
    return Config(settings)


class FinishedKernelManager(AsyncKernelManager):
    """jupyter_client's kernel manager, shutting a kernel down without interrupting it first.

    Its shutdown sends the kernel SIGINT before the shutdown request, to stop a cell that is still
    running. papermill shuts a kernel down only after its last cell has finished (or failed), so
    there is nothing to stop; but a SIGINT that arrives while ipykernel is still inside a message
    handler makes it log "[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel." to the
    runner's console, for a notebook that passed (seen on a busy GPU machine). The shutdown request,
    then SIGTERM and SIGKILL if the kernel does not exit, are unchanged, and so is nbclient's own
    interrupt of a cell that runs past a timeout.

    With `console_log` set, the kernel process writes its own stdout and stderr there instead of the
    runner's console: lines from below Python, such as libzmq's "Assertion failed: pfd.revents & POLLIN"
    as a kernel exits, would otherwise land in the middle of the runner's one line per notebook.
    """

    console_log = Unicode("", help="file for the kernel process's stdout and stderr; empty: the runner's").tag(
        config=True)

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw) -> None:
        if not self.console_log:
            return await super()._async_launch_kernel(kernel_cmd, **kw)
        with open(self.console_log, "ab") as log:   # the kernel keeps its own copy of the descriptor
            await super()._async_launch_kernel(kernel_cmd, **{**kw, "stdout": log, "stderr": log})

    async def _async_interrupt_kernel(self) -> None:
        if self.shutting_down:
            return
        await super()._async_interrupt_kernel()


def execute(lesson: Lesson, output_dir: Path, inplace: bool, log_output: bool = False,
            parameters: dict | None = None) -> dict:
    """Run one notebook with papermill `parameters`; return its summary row (with "error" on failure).

    `log_output`: stream the notebook's printed output to this console as it runs, and a failing cell's
    traceback (for debugging; off by default, so the console shows one line per notebook).
    """
    import papermill   # deferred: slow to import; only running a notebook needs it (not --summary-only, conftest)

    folder = output_dir / lesson.stem
    folder.mkdir(parents=True, exist_ok=True)
    executed = folder / f"{lesson.stem}.ipynb"
    row = {"lesson": lesson.key, "notebook": lesson.stem, "title": lesson.title, "kind": lesson.kind,
           "published_accuracy": lesson.published_accuracy}
    failed_copy = folder / f"{lesson.stem}.failed.ipynb"
    failed_copy.unlink(missing_ok=True)
    (folder / f"{lesson.stem}.kernel.log").unlink(missing_ok=True)
    start = time.time()
    # the sockets in a short folder of their own: a Unix socket's path may not exceed about 100 bytes
    with tempfile.TemporaryDirectory(dir=folder) as scratch, \
            tempfile.TemporaryDirectory(prefix="sentiment-kernel-") as sockets:
        partial = Path(scratch) / executed.name
        try:
            papermill.execute_notebook(str(lesson.path), str(partial), parameters=notebook_parameters(
                lesson, parameters or {}), cwd=str(lesson.path.parent), kernel_name="python3", progress_bar=False,
                # streamed as written, not through papermill's logger (which has no handler here)
                stdout_file=sys.stdout if log_output else None, stderr_file=sys.stderr if log_output else None,
                config=kernel_config(Path(sockets), console_log=None if log_output else Path(sockets) / "kernel.log"),
                kernel_manager_class=FinishedKernelManager)
            os.replace(partial, executed)
            if inplace:
                with atomic_path(lesson.path) as tmp:
                    shutil.copyfile(executed, tmp)
                    strip_injected_parameters(tmp)
        except Exception as err:  # papermill wraps cell errors; report and carry on with the next notebook
            name = getattr(err, "ename", type(err).__name__)
            value = getattr(err, "evalue", str(err))
            row["error"] = f"{name}: {value}".strip()[:2000]
            if log_output and getattr(err, "traceback", None):   # papermill streams no error output itself
                print(ANSI_ESCAPE.sub("", "\n".join(err.traceback)), file=sys.stderr, flush=True)
            if partial.is_file():  # keep what ran, with the traceback in its cell, for debugging
                os.replace(partial, failed_copy)
                row["failed_notebook"] = str(failed_copy)
            kernel_log = Path(sockets) / "kernel.log"
            if kernel_log.is_file() and kernel_log.stat().st_size:   # what the kernel process said, if anything
                shutil.copyfile(kernel_log, folder / f"{lesson.stem}.kernel.log")
                row["kernel_log"] = str(folder / f"{lesson.stem}.kernel.log")
    row["minutes"] = (time.time() - start) / 60
    metrics_path = folder / "metrics.json"
    if "error" not in row:
        if not metrics_path.is_file() or metrics_path.stat().st_mtime < start:
            row["error"] = f"the notebook ran but wrote no fresh {metrics_path}"
        else:
            metrics = read_metrics(folder)
            row.update({key: metrics.get(key) for key in ROW_KEYS})
    with atomic_path(folder / "run.json") as tmp:
        tmp.write_text(json.dumps(row, indent=2) + "\n", encoding="utf-8")
    return row


# What a notebook leaves on disk, as its metrics.json records it: lesson 6's features, appendix C's cache
DISK_KEYS = ("feature_bytes", "cache_bytes")


def collect_rows(output_dir: Path, lessons: list[Lesson]) -> list[dict]:
    """The latest runner row of each of `lessons` found in `output_dir` (this run's or an earlier one's)."""
    rows = []
    for lesson in lessons:
        path = output_dir / lesson.stem / "run.json"
        if path.is_file():
            row = {**json.loads(path.read_text(encoding="utf-8")), "kind": lesson.kind}   # the notebook's kind now
            metrics = read_metrics(path.parent) or {}
            if "error" not in row and metrics:   # fields a row written by an older runner lacks
                if metrics.get("git_commit") == row.get("git_commit"):
                    row.update({key: metrics[key] for key in ROW_KEYS if key in metrics and key not in row})
            # what the notebook leaves on disk, from its latest metrics.json (also after a failed re-run)
            row["disk_bytes"] = next((metrics[key] for key in DISK_KEYS if metrics.get(key)), None)
            rows.append(row)
    return sorted(rows, key=lambda row: KINDS.index(row["kind"]))   # stable: each kind keeps the lessons' order


def result_rows(rows: list[dict]) -> list[dict]:
    """One row per (notebook, model, dataset): a notebook that recorded several results (`record(rows=...)`)
    gives one row each, with its "kind" and the notebook's run facts; every other notebook gives its own row."""
    flat = []
    for row in rows:
        if "error" in row or not row.get("rows"):
            flat.append({key: value for key, value in row.items() if key != "rows"})
            continue
        common = {key: row.get(key) for key in ("lesson", "notebook", "title", "kind", "profile", "device",
                                                "precision", "git_commit", "minutes")}
        # "part": the result's place among its notebook's results (1, 2, ...)
        flat += [{**common, **result, "part": number} for number, result in enumerate(row["rows"], 1)]
    return flat


def machine(row: dict) -> tuple[str, str]:
    """(kind, description) of the machine a notebook's run used, precision left out (parts of one reference run
    may train in different precisions on one machine). The kind is "cpu" or "cuda"; the description comes from
    the recorded hardware (device kind, CPU or GPU name, instruction set, threads, torch version), else from
    the device line without the precision (older rows, whose device line starts with the kind)."""
    hardware = row.get("hardware") or {}
    if hardware.get("name"):
        parts = [hardware.get("device"), hardware.get("name"), hardware.get("cpu_capability"),
                 f"{hardware['threads']} threads" if hardware.get("threads") else None,
                 f"torch {(hardware.get('versions') or {}).get('torch')}"]
        return str(hardware.get("device") or "unknown"), ", ".join(str(part) for part in parts if part)
    device = row.get("device") or "unknown"
    precision = row.get("precision")
    description = ", ".join(part for part in device.split(", ") if part != precision) if precision else device
    return description.split(" ", 1)[0].rstrip(","), description


def mixed_machines(rows: list[dict]) -> dict[str, list[str]]:
    """{machine: its notebooks' numbers} when the successful rows ran on more than one machine of the same kind
    (two CPUs, two GPUs); empty when each kind ran on one machine. A GPU's rows beside a CPU's are not mixed:
    the table names each row's device."""
    kinds: dict[str, dict[str, list[str]]] = {}
    for row in rows:
        if "error" not in row:
            kind, description = machine(row)
            kinds.setdefault(kind, {}).setdefault(description, []).append(row["lesson"])
    return {name: lessons for machines in kinds.values() if len(machines) > 1 for name, lessons in machines.items()}


def machines_listing(mixed: dict[str, list[str]], label: str = "") -> str:
    """`mixed_machines`'s answer as text: "<machine>: <label><notebooks>; ..."."""
    return "; ".join(f"{name}: {label}{', '.join(lessons)}" for name, lessons in mixed.items())


def machines_note(rows: list[dict]) -> str:
    """The sentence under a table whose rows ran on different machines of one kind (`mixed_machines`), naming
    each machine and its notebooks; empty when they did not."""
    mixed = mixed_machines(rows)
    if not mixed:
        return ""
    return ("**These rows ran on different machines**, so their minutes (and digits) are not comparable: "
            + machines_listing(mixed) + ".")


def checkout_readme() -> Path:
    """The checkout's README.md (a SystemExit outside a checkout)."""
    root = checkout_root()
    if root is None:
        raise SystemExit("--readme writes the checkout's README.md; these helpers are installed, not a checkout")
    return root / "README.md"


def update_readme(table: str, readme: Path | None = None, markers: str = "results") -> None:
    """Put `table` between the README's `<!-- {markers}:start -->` and `<!-- {markers}:end -->` (default: the
    checkout's README.md; "results": the reference table, "notebooks": the students' table)."""
    readme = readme or checkout_readme()
    start, end = f"<!-- {markers}:start -->", f"<!-- {markers}:end -->"
    text = readme.read_text(encoding="utf-8")
    if start not in text or end not in text:
        raise SystemExit(f"{readme} has no {start} ... {end} markers")
    head, rest = text.split(start, 1)
    with atomic_path(readme) as tmp:
        tmp.write_text(head + start + "\n" + table + end + rest.split(end, 1)[1], encoding="utf-8")


def short_commit(commit: str | None) -> str:
    """A git commit cut to its first 12 characters (`abc123def456`), flagged when the run had uncommitted code
    changes; anything else ("not a checkout (installed helpers 0.1.0)") in full."""
    if not commit:
        return ""
    match = re.fullmatch(r"(?P<hash>[0-9a-f]{7,64})(?P<dirty>-dirty)?", commit)
    if match is None:
        return commit
    return f"`{match['hash'][:12]}`" + (" (uncommitted changes)" if match["dirty"] else "")


def summary_table(rows: list[dict]) -> str:
    """The results as a Markdown table, one row per (notebook, model, dataset) (see `result_rows`); a notebook's
    minutes are given on its first row and counted once in the total; a note under it when the rows ran on
    different machines of one kind (`mixed_machines`)."""
    lines = ["| kind | # | notebook | test accuracy | tutorial | beyond the tutorial (or how it was chosen) | profile | device | epochs "
             "| minutes | commit |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    previous = None
    for row in result_rows(rows):
        beyond = ""
        if "error" in row:
            result = f"**failed**: {row['error'].splitlines()[0][:120]}"
        elif row.get("test_accuracy") is None:
            result = f"no test accuracy: {row.get('result') or 'none recorded'}"
        else:
            result = f"{100 * row['test_accuracy']:.2f}%"
            extra = row.get("beyond") or {}
            beyond = f"{100 * extra['test_accuracy']:.2f}% ({extra.get('how', '')})" if extra else ""
        device = row.get("device") or ""
        if device and row.get("precision") and row["precision"] not in device:   # records before the hardware line
            device += f", training in {row['precision']}"
        notebook = row["notebook"]
        published = "" if row.get("published_accuracy") is None else f"{row['published_accuracy']:.2f}%"
        if row.get("transformer"):
            notebook += f" ({row['transformer']}, max length {row.get('max_length')})"
        if row.get("part"):   # one of several results of its notebook: what it is, and how it was chosen
            notebook += f": {row['model']} on {row['dataset']}"
            beyond = row.get("how") or ""
        minutes = f"{row['minutes']:.1f}" if row["notebook"] != previous else ""
        previous = row["notebook"]
        lines.append(f"| {row.get('kind', '')} | {row['lesson']} | {notebook} | {result} | {published} | "
                     f"{beyond} | {row.get('profile') or ''} | {device} | "
                     f"{row.get('epochs') or ''} | {minutes} | {short_commit(row.get('git_commit'))} |")
    lines += ["", f"Total: {sum(row['minutes'] for row in rows):.1f} minutes (whole notebooks, as run by "
              "`python -m helpers.run`)."]
    note = machines_note(rows)
    if note:
        lines += ["", note]
    if any(row.get("profile") == "smoke" for row in rows):
        lines += ["", "Smoke profile rows: a few hundred examples and one epoch; they only show the code runs."]
    return "\n".join(lines) + "\n"


def accuracy_words(row: dict) -> str:
    """A notebook's test accuracy for students: with the going-further figure and the tutorial's; per dataset the
    best of several results (appendix B); the recorded result of a notebook without test accuracy (lesson 7)."""
    if "error" in row:
        return "failed in its last run"
    if row.get("rows"):
        best = {}
        for result in row["rows"]:
            if result.get("test_accuracy") is not None and (
                    result["dataset"] not in best or result["test_accuracy"] > best[result["dataset"]]["test_accuracy"]):
                best[result["dataset"]] = result
        return ", ".join(f"{result['dataset']} {100 * result['test_accuracy']:.2f}% ({result['model']})"
                         for result in best.values())
    if row.get("test_accuracy") is None:
        return row.get("result") or ""
    words = f"{100 * row['test_accuracy']:.2f}%"
    beyond = (row.get("beyond") or {}).get("test_accuracy")
    if beyond is not None:
        words += f", going further {100 * beyond:.2f}%"
    if row.get("published_accuracy") is not None:
        words += f" (tutorial {row['published_accuracy']:.2f}%)"
    return words


NOT_MEASURED = "–"
# A notebook's main plot: the first of these its run wrote (appendix B has no curves: its explained review)
MAIN_PLOTS = ("confusion_matrix.png", "learning_curves.png", "latency.png", "why_review.png")


def notebook_table(rows: list[dict], output_dir: Path, readme_folder: Path) -> str:
    """The README's table for students, one line per notebook of `rows` (the runner's rows from `output_dir`):
    the notebook (linked, and opened in Colab), what it teaches (its title), test accuracy, whole-notebook
    minutes on a CPU and on a GPU (by the device its run recorded), its disk cache, and a link to its main
    plot; links are relative to `readme_folder`."""
    colab = course_url().replace("https://github.com/", "https://colab.research.google.com/github/")
    lines = ["| # | notebook | what it teaches | test accuracy | CPU minutes | GPU minutes | disk cache | main plot |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        stem = row["notebook"]
        minutes = f"{row['minutes']:.1f}" if row.get("minutes") is not None else NOT_MEASURED
        on_gpu = (row.get("device") or "").startswith("cuda")
        disk = f"{row['disk_bytes'] / 1e9:.1f} GB" if row.get("disk_bytes") else ""
        plot = next((output_dir / stem / name for name in MAIN_PLOTS if (output_dir / stem / name).is_file()), None)
        plot_link = f"[plot]({Path(os.path.relpath(plot, readme_folder)).as_posix()})" if plot else ""
        lines.append(f"| {row['lesson']} | [{stem}](notebooks/{stem}.ipynb) ([Colab]({colab}/blob/main/notebooks/"
                     f"{stem}.ipynb)) | {row.get('title') or ''} | {accuracy_words(row)} | "
                     f"{NOT_MEASURED if on_gpu else minutes} | {minutes if on_gpu else NOT_MEASURED} | "
                     f"{disk} | {plot_link} |")
    if any(f"| {NOT_MEASURED} |" in line for line in lines[2:]):
        lines += ["", f"{NOT_MEASURED}: not measured yet on that kind of device."]
    note = machines_note(rows)
    if note:
        lines += ["", note]
    return "\n".join(lines) + "\n"


def summary_markdown(rows: list[dict], commit: str) -> str:
    """The summary page: a header and the table."""
    return (f"# Results\n\nWritten {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `python -m helpers.run` "
            f"(at commit `{commit}`). Test accuracy on the official test sets (IMDb: 25,000 reviews, TREC: 500 "
            "questions); *tutorial* is the original tutorials' published figure; *commit* is the one each "
            "notebook's run recorded.\n\n" + summary_table(rows))


def result_line(row: dict) -> str:
    """A notebook's result in a few words: its test accuracy (and the going-further one) or its error, and minutes."""
    if "error" in row:
        return f"FAILED in {row['minutes']:.1f} min: {row['error'].splitlines()[0]}"
    if row.get("test_accuracy") is None:   # several results, or none: said as the record cell says it
        return f"{recorded_what(row, None)} in {row['minutes']:.1f} min"
    beyond = row.get("beyond") or {}
    extra = f", going further {beyond['test_accuracy']:.2%}" if beyond.get("test_accuracy") is not None else ""
    return f"test accuracy {row['test_accuracy']:.2%}{extra} in {row['minutes']:.1f} min"


def core_count() -> int:
    """The cores this process may run on (its CPU affinity where the system says, else all of them)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:   # macOS, Windows
        return os.cpu_count() or 1


@contextlib.contextmanager
def shared_threads(jobs: int, environ=os.environ, cores: int | None = None):
    """While notebooks run `jobs` at a time, each kernel started gets `SENTIMENT_THREADS` = cores // jobs (at
    least 1) in `environ`, which the kernels inherit; a value the user set is kept, and so is everything
    with one job. `cores` defaults to `core_count()`."""
    if jobs <= 1 or environ.get("SENTIMENT_THREADS"):
        yield
        return
    environ["SENTIMENT_THREADS"] = str(max(1, (cores or core_count()) // jobs))
    try:
        yield
    finally:
        del environ["SENTIMENT_THREADS"]


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"needs a whole number of at least 1, not {text!r}")
    return value


def run_notebooks(lessons: list[Lesson], output_dir: Path, args, parameters: dict) -> list[dict]:
    """Execute `lessons`, `args.jobs` at a time, printing a line per notebook unless `args.quiet`; the rows
    in the lessons' order. One at a time, the line starts when the notebook does and ends with its result;
    several at a time, each line is printed whole when its notebook finishes."""
    def run(lesson):
        return execute(lesson, output_dir, args.inplace, log_output=args.log_output, parameters=parameters)

    total = len(lessons)
    if args.jobs == 1:
        rows = []
        for number, lesson in enumerate(lessons, 1):
            if not args.quiet:
                print(f"[{number}/{total}] {lesson.stem} ({args.profile}) ...",
                      end="\n" if args.log_output else " ", file=sys.stderr, flush=True)
            rows.append(run(lesson))
            if not args.quiet:
                print(result_line(rows[-1]), file=sys.stderr, flush=True)
        return rows
    results = {}
    selected = {lesson.key for lesson in lessons}
    waiting = [lesson for lesson in lessons if STARTS_AFTER.get(lesson.key) in selected]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        running = {pool.submit(run, lesson): lesson for lesson in lessons if lesson not in waiting}
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                lesson = running.pop(future)
                results[lesson.stem] = future.result()
                if not args.quiet:
                    print(f"[{len(results)}/{total}] {lesson.stem} ({args.profile}) ... "
                          f"{result_line(results[lesson.stem])}", file=sys.stderr, flush=True)
                for follower in [later for later in waiting if STARTS_AFTER[later.key] == lesson.key]:
                    waiting.remove(follower)
                    running[pool.submit(run, follower)] = follower
    return [results[lesson.stem] for lesson in lessons]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default=os.environ.get("SENTIMENT_PROFILE") or "full")
    parser.add_argument("--only", help="lessons and appendices to run, e.g. 1,3,A (default: all)")
    parser.add_argument("--notebooks", type=Path, help="folder of the notebooks (default: the checkout's "
                        "notebooks/, or the working folder outside a checkout)")
    parser.add_argument("--data-dir", default=os.environ.get("SENTIMENT_DATA_DIR") or None,
                        help="local data folder (default: env SENTIMENT_DATA_DIR; none: the profile's data)")
    parser.add_argument("--output-dir", type=Path, default=os.environ.get("SENTIMENT_RESULTS_DIR") or None,
                        help="where everything goes, bundles included (default: the checkout's results/ for "
                        "the full profile, results-smoke/ for the smoke one; outside a checkout the same names "
                        "in the notebooks' folder)")
    parser.add_argument("--jobs", type=positive_int, default=1,
                        help="notebooks to run at once (default 1); each kernel then gets SENTIMENT_THREADS = "
                             "cores // N torch threads, unless SENTIMENT_THREADS is set")
    parser.add_argument("--inplace", action="store_true", help="write the executed notebooks over the notebooks")
    console = parser.add_mutually_exclusive_group()
    console.add_argument("--quiet", action="store_true", help="print only the summary (no line per notebook)")
    console.add_argument("--log-output", action="store_true", help="stream each notebook's printed output to the "
                        "console as it runs (for debugging; progress bars stay off in batch runs)")
    parser.add_argument("--readme", action="store_true",
                        help="also write the results tables into README.md (the students' and the reference one)")
    parser.add_argument("--summary-only", action="store_true",
                        help="run no notebook: write summary.json and summary.md (and, with --readme, the README's "
                             "table) again from the runs already in the output folder")
    parser.add_argument("--mixed-machines", action="store_true",
                        help="write the summary even when the output folder's runs come from different machines "
                             "of one kind (the table then says which); without it the runner refuses")
    args = parser.parse_args(argv)
    notebook_dir = (args.notebooks or default_notebook_dir()).resolve()
    lessons = select(args.only, notebook_dir)
    output_dir = (args.output_dir or default_output_dir(get_profile(args.profile), working=notebook_dir)).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    absolute_environment_paths()   # what the kernels still read from the environment (cache, transformer)
    parameters = {"PROFILE": args.profile,
                  "DATA_DIR": str(Path(args.data_dir).expanduser().resolve()) if args.data_dir else None,
                  # given: everything goes there; not given: the notebook resolves the same default itself
                  # (and a full run in a checkout exports its bundles to deployment/models)
                  "RESULTS_DIR": str(output_dir) if args.output_dir else None}
    commit = git_commit(checkout_root())
    with shared_threads(args.jobs):
        rows = [] if args.summary_only else run_notebooks(lessons, output_dir, args, parameters)
    # this run's rows and those of earlier runs into the same folder
    everything = collect_rows(output_dir, discover(notebook_dir))
    mixed = mixed_machines(everything)
    if mixed and not args.mixed_machines:
        print(f"error: the runs in {output_dir} come from different machines ("
              + machines_listing(mixed, label="notebooks ")
              + "): run the rest on one machine, or pass --mixed-machines to write a summary that says so",
              file=sys.stderr)
        return 2
    with atomic_path(output_dir / "summary.json") as tmp:
        # "rows": one per (notebook, model, dataset), each with its kind; "notebooks": the runner's rows
        tmp.write_text(json.dumps({"git_commit": commit, "rows": result_rows(everything), "notebooks": everything},
                                  indent=2) + "\n", encoding="utf-8")
    with atomic_path(output_dir / "summary.md") as tmp:
        tmp.write_text(summary_markdown(everything, commit), encoding="utf-8")
    if args.readme:
        readme = checkout_readme()
        update_readme(summary_table(everything), readme)
        update_readme(notebook_table(everything, output_dir, readme.parent), readme, markers="notebooks")
    print(summary_markdown(everything, commit))
    failed = [row["notebook"] for row in rows if "error" in row]
    if failed:
        print(f"{len(failed)} notebook(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
