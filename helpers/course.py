"""The course layer: what a lesson run means, where its files go, and what it records.

Only this module, `results` and `run` know that a course exists around the library:
the run profiles, the environment variables (`SENTIMENT_PROFILE`, `SENTIMENT_DATA_DIR`,
`SENTIMENT_CACHE_DIR`, `SENTIMENT_RESULTS_DIR`, `SENTIMENT_PRECISION`,
`SENTIMENT_TRANSFORMER`, `SENTIMENT_THREADS`), the checkout (when there is one) and the
small data shipped inside the package. The library below takes explicit arguments.

A lesson starts with one call and ends with one, both in collapsed cells (bookkeeping,
not the lesson):

    run = start_lesson("03_faster_sentiment", profile=PROFILE, data_dir=DATA_DIR, ...)
    ...
    run.record(model=model, test=test, history=history, splits=loaders, vocab=vocab,
               dataset="imdb", ..., export=dict(name="sentiment", task="sentiment", ...))

`record` derives the counts, parameters and training time from the objects themselves and
says in one line what it wrote; neither call prints a machine path.

Where a run writes (metrics, plots, exported bundles):

* an output folder given (`results_dir=`, env `SENTIMENT_RESULTS_DIR`, the runner's
  `--output-dir`): everything goes under it, bundles included;
* otherwise, in a checkout: the checkout's `results/` for the full profile, with bundles in
  `deployment/models/` (the committed reference run), and `results-smoke/` (git-ignored) for
  the smoke profile, with its bundles there too: a quick check never touches committed files;
* otherwise (an installed course, a notebook alone in a folder, Colab): `results/` or
  `results-smoke/` in the working folder, bundles included. Nothing is ever written into
  the installed package.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__, files
from .files import DataError

if TYPE_CHECKING:
    import torch

PACKAGE_DIR = Path(__file__).resolve().parent
SHIPPED_DIR = PACKAGE_DIR / "fixtures"             # package data: ships with every install
FIXTURE_DATA_DIR = SHIPPED_DIR / "data"            # a few hundred IMDb reviews, TREC questions, GloVe rows
TINY_ENCODER_DIR = SHIPPED_DIR / "tiny-bert"       # a 2-layer BERT config + vocabulary, random weights
OFFLINE_ENCODER = "all-MiniLM-L6-v2"               # looked for in <data dir>/../models/ by full offline runs


def checkout_root() -> Path | None:
    """The repository checkout these helpers run from, or None for an installed package.

    A checkout is recognised by its layout around the package (pyproject.toml and
    notebooks/ beside helpers/); an installed package sits in site-packages, which has neither.
    """
    root = PACKAGE_DIR.parent
    if (root / "pyproject.toml").is_file() and (root / "notebooks").is_dir():
        return root
    return None


# ---------------------------------------------------------------------------- profiles

@dataclass(frozen=True)
class Profile:
    """Every decision a run profile makes, so that nothing else compares profile names.

    `sample`: examples kept per split (None = all); `epochs`: forced epoch count (None =
    the lesson's); `fixture_data`: with no data folder given, read the small data shipped
    in the package (works offline); `encoder`: the transformer for lesson 6 and the
    appendices (None = the lesson's own default); `max_length`: a cap on the encoder's
    tokens per text (None = no cap); `export_to_course`: a run without an output folder,
    inside a checkout, writes the course's reference results and bundles (else its files go
    to a separate folder).
    """

    name: str
    sample: int | None
    epochs: int | None
    fixture_data: bool
    encoder: str | None
    max_length: int | None
    export_to_course: bool

    @property
    def results_folder_name(self) -> str:
        """"results" for the profile that makes the course's reference runs, else "results-<name>"."""
        return "results" if self.export_to_course else f"results-{self.name}"


PROFILES = {
    "full": Profile("full", sample=None, epochs=None, fixture_data=False, encoder=None, max_length=None,
                    export_to_course=True),
    "smoke": Profile("smoke", sample=300, epochs=1, fixture_data=True, encoder=str(TINY_ENCODER_DIR),
                     max_length=128, export_to_course=False),
}


def absolute_if_path(value: str) -> str:
    """`value` as an absolute path when it names an existing file or folder (relative to here), else as given
    (a Hugging Face model name such as "bert-base-uncased")."""
    path = Path(value).expanduser()
    return str(path.resolve()) if path.exists() else value


def get_profile(name: str | None = None, environ=os.environ) -> Profile:
    """The named profile, else env `SENTIMENT_PROFILE`, else `full`; env `SENTIMENT_TRANSFORMER`,
    when set, is its encoder."""
    name = name or environ.get("SENTIMENT_PROFILE") or "full"
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}: choose one of {', '.join(PROFILES)}")
    profile = PROFILES[name]
    if environ.get("SENTIMENT_TRANSFORMER"):
        profile = replace(profile, encoder=absolute_if_path(environ["SENTIMENT_TRANSFORMER"]))
    return profile


def lesson_data_dir(profile: Profile, explicit=None, environ=os.environ) -> Path | None:
    """Where a lesson reads its data: `explicit`, else env `SENTIMENT_DATA_DIR`, else the data
    shipped in the package when the profile uses it (offline), else None (download)."""
    if explicit not in (None, ""):
        return files.data_dir(explicit)
    if environ.get("SENTIMENT_DATA_DIR"):
        try:
            return files.data_dir(environ["SENTIMENT_DATA_DIR"])
        except DataError as err:
            raise DataError(f"SENTIMENT_DATA_DIR: {err}") from None
    return FIXTURE_DATA_DIR if profile.fixture_data else None


def describe_data(directory: Path | None) -> str:
    """Where a lesson's data comes from, in words (no machine path in a notebook's output)."""
    if directory is None:
        return "downloaded once into the cache"
    return "sample shipped with the course" if directory == FIXTURE_DATA_DIR else "local data folder"


def offline_encoder(profile: Profile, data_directory: Path | None) -> Profile:
    """`profile` with its encoder set to `<data dir>/../models/all-MiniLM-L6-v2` when it has none and that
    folder exists (a machine without internet keeps its models beside its data)."""
    if profile.encoder is None and data_directory is not None:
        candidate = Path(data_directory).parent / "models" / OFFLINE_ENCODER
        if (candidate / "config.json").is_file():
            return replace(profile, encoder=str(candidate))
    return profile


def default_vectors(directory: Path | None, preferred: str = "glove.6B.100d") -> str:
    """The tutorials' `glove.6B.100d`, unless a local data folder holds only another size
    (offline machines here have 50d), in which case that one is used."""
    if directory is None:
        return preferred
    folder = Path(directory) / "glove"

    def present(name):
        return any((folder / f"{name}{suffix}").is_file() for suffix in (".txt", ".txt.gz"))

    if (folder / "glove.6B.zip").is_file() or present(preferred):
        return preferred
    return next((name for name in ("glove.6B.300d", "glove.6B.200d", "glove.6B.50d") if present(name)), preferred)


def default_output_dir(profile: Profile, working: Path | None = None) -> Path:
    """Where a run without an output folder writes: `<checkout>/results` (or `results-<profile>`) in a
    checkout, else the same name in the working folder (`working`, default the current one)."""
    base = checkout_root() or Path(working or Path.cwd()).resolve()
    return base / profile.results_folder_name


def course_bundles_dir() -> Path | None:
    """The checkout's `deployment/models`, where the reference run exports; None outside a checkout."""
    root = checkout_root()
    return root / "deployment" / "models" if root else None


# ---------------------------------------------------------------------------- versions

def version_mismatch(notebook_version: str, library_version: str = __version__) -> str | None:
    """A message when the notebook was written for another course version than the installed one, else None."""
    if str(notebook_version) == library_version:
        return None
    from .results import COURSE_URL

    return (f"This notebook was written for course version {notebook_version}, but the installed helpers are "
            f"version {library_version}: its cells may not match them. Install the notebook's version with\n"
            f'    %pip install "sentiment-tutorials @ git+{COURSE_URL}@v{notebook_version}"\n'
            "and restart the kernel, or open the notebook of this version.")


def check_version(notebook_version: str) -> bool:
    """Say clearly (printed, not raised) when notebook and installed helpers differ; True when they agree."""
    message = version_mismatch(notebook_version)
    if message:
        print(f"WARNING: {message}")
    return message is None


# ---------------------------------------------------------------------------- one lesson's run

@dataclass(frozen=True)
class LessonRun:
    """What a lesson notebook resolved from its parameters; `record` writes its results.

    `output_dir` is the run's output folder (all notebooks), `results_dir` this notebook's
    folder inside it; `bundles_dir` is where `bundle_dir(name)` puts exported bundles.
    """

    notebook: str
    profile: Profile
    data_dir: Path | None
    cache_dir: Path
    epochs: int
    device: "torch.device"
    seed: int
    precision: str               # what `fit` trains in on this device: "bf16", "fp16" or "fp32"
    threads: int
    output_dir: Path
    bundles_dir: Path

    @property
    def results_dir(self) -> Path:
        """`<output dir>/<notebook>`: this notebook's metrics, plots and (outside the course's bundles) bundles."""
        return self.output_dir / self.notebook

    def bundle_dir(self, name: str) -> Path:
        """Where this run exports bundle `name` (the folder itself; the exporter creates it)."""
        if not name or Path(name).name != name or name.startswith("."):
            raise ValueError(f"a bundle name is one plain folder name like 'sentiment', not {name!r}")
        return self.bundles_dir / name

    def where(self, path: Path) -> str:
        """`path` as a reader can follow it without this machine's folders: relative to the checkout when inside
        it ("results/03_faster_sentiment/metrics.json"), else from the output folder's name."""
        path = Path(path)
        for base in (checkout_root(), self.output_dir.parent):
            if base is not None and path.is_relative_to(base):
                return path.relative_to(base).as_posix()
        return path.name

    def record(self, *, model=None, test: Mapping | None = None, history: list[dict] | None = None,
               splits: Mapping | None = None, vocab=None, beyond: Mapping | None = None, export: Mapping | None = None,
               rows: Sequence[Mapping] | None = None, result: str | None = None, **lesson) -> Path:
        """Write `<results_dir>/metrics.json` (see `results.RunRecord`), export a bundle when asked, say both
        in a line each, and return the metrics file's path.

        A lesson passes its objects; the fields are derived here (see `result_fields`):
        `model` (the trained model: "model" its class name, "params" its trainable parameters),
        `test` (`evaluate`'s result on the test set), `history` (`fit`'s: "history" and
        "train_seconds"), `splits` ({"train": ..., "valid": ..., "test": ...}: datasets or
        their loaders, for "n_train", ...), `vocab` ("vocab_size").
        `beyond`: the going-further run as a dict with the same keys (model, test, history,
        splits, vocab) and its own ("how", ...); written as metrics' "beyond".
        `export`: a bundle for the deployment (see `export_result`), of the main result, or
        under `beyond["export"]` of the going-further one.
        `rows`: instead of one `test` result, several (a notebook comparing models or datasets,
        like the baselines appendix): dicts with at least "model" (a readable name), "dataset"
        and "test_accuracy" (a fraction), and whatever else they measured; the results summary
        gives each its own row. `result`: for a notebook without a test accuracy (lesson 7), a
        short sentence of what it produced, shown in the summary instead.
        `lesson`: what only this lesson knows (dataset, vectors, ...); a derived field given
        here wins. The run's own facts (profile, epochs, seed, device, precision, hardware,
        commit, versions) are filled in by `RunRecord`.
        """
        from .results import RunRecord, write_record

        if rows is not None:
            if test is not None:
                raise ValueError("record() takes either test= (one result) or rows= (several), not both")
            lesson["rows"] = checked_rows(rows)
        elif test is None and not result:
            raise ValueError("record() needs test= (the test set's result), rows= (several results) or result= "
                             "(a sentence saying what a notebook without a test accuracy produced)")
        if result:
            lesson["result"] = str(result)
        fields = {**result_fields(model=model, test=test, history=history, splits=splits, vocab=vocab), **lesson}
        exports = []
        if export is not None:
            exports.append((export, {"model": model, "vocab": vocab, "test": test}))
        if beyond is not None:
            beyond = dict(beyond)
            beyond_export = beyond.pop("export", None)
            parts = {key: beyond.pop(key, None) for key in ("model", "test", "history", "splits", "vocab")}
            fields["beyond"] = {**result_fields(**parts), **beyond}
            if beyond_export is not None:
                how = beyond.get("how")
                exports.append((beyond_export, {"model": parts["model"], "vocab": parts["vocab"] or vocab,
                                                "test": parts["test"],
                                                "notes": f"going-further model: {how}" if how else None}))
        test_accuracy, test_loss = fields.pop("test_accuracy", None), fields.pop("test_loss", None)
        record = RunRecord.create(notebook=self.notebook, profile=self.profile.name, seed=self.seed,
                                  epochs=self.epochs, device=self.device, precision=self.precision,
                                  test_accuracy=test_accuracy, test_loss=test_loss, lesson=fields)
        path = write_record(record, self.results_dir)
        print(f"recorded: {recorded_what(fields, test_accuracy)} in {self.where(path)}")
        for request, defaults in exports:
            self.export_result(request, **defaults)
        return path

    def export_result(self, request: Mapping, *, model=None, vocab=None, test: Mapping | None = None,
                      notes: str | None = None) -> Path:
        """Export a bundle to `bundle_dir(request["name"])` and say where it went, in one line.

        `request`: `export.BundleInfo`'s fields that only the lesson knows ("name", "task",
        "labels", "bigrams", "min_length", "notes") plus "tokenizer" and optionally
        "check_texts" (checked for ONNX parity before the bundle is kept), "model",
        "vocab" and "test" (defaults: the keyword arguments, i.e. the recorded result).
        The provenance (notebook, profile, test accuracy) is filled in here.
        """
        from .export import BundleInfo, export_bundle

        request = dict(request)
        model = request.pop("model", model)
        vocab = request.pop("vocab", vocab)
        test = request.pop("test", test)
        tokenizer = request.pop("tokenizer", None)
        check_texts = request.pop("check_texts", None)
        missing = [name for name, value in (("model", model), ("vocab", vocab), ("tokenizer", tokenizer))
                   if value is None]
        if missing:
            raise ValueError(f"export needs {', '.join(missing)}: pass them in the export request")
        request.setdefault("notes", notes)
        info = BundleInfo(**request, source_notebook=self.notebook, profile=self.profile.name,
                          test_accuracy=None if test is None else test["accuracy"])
        bundle = export_bundle(model, vocab, tokenizer, self.bundle_dir(info.name), info, check_texts=check_texts)
        size = sum(file.stat().st_size for file in bundle.iterdir() if file.is_file())
        print(f"exported bundle {info.name} ({type(model).__name__}, {info.task}, {size / 1e6:.1f} MB) "
              f"to {self.where(bundle)}")
        return bundle


def checked_rows(rows: Sequence[Mapping]) -> list[dict]:
    """`record(rows=...)`'s results as plain dicts, each checked to name its model and dataset and to carry a
    test accuracy between 0 and 1 (a fraction, like `evaluate`'s "accuracy"); a ValueError names a bad row."""
    checked = []
    for number, row in enumerate(rows, 1):
        row = dict(row)
        missing = [key for key in ("model", "dataset", "test_accuracy") if row.get(key) is None]
        if missing:
            raise ValueError(f"record(rows=...): row {number} lacks {', '.join(missing)}: each row names its "
                             "model and dataset and carries its test_accuracy")
        accuracy = row["test_accuracy"]
        if isinstance(accuracy, bool) or not isinstance(accuracy, (int, float)) or not 0 <= accuracy <= 1:
            raise ValueError(f"record(rows=...): row {number} ({row['model']}, {row['dataset']}): test_accuracy "
                             f"must be a fraction between 0 and 1, got {accuracy!r}")
        checked.append(row)
    if not checked:
        raise ValueError("record(rows=...) got no rows")
    return checked


def recorded_what(fields: Mapping, test_accuracy: float | None) -> str:
    """The record's result in a few words, for the line `record` prints and the runner's line per notebook."""
    if test_accuracy is not None:
        extra = (fields.get("beyond") or {}).get("test_accuracy")
        return f"test accuracy {test_accuracy:.2%}" + (f" (going further {extra:.2%})" if extra is not None else "")
    if fields.get("rows"):
        accuracies = [row["test_accuracy"] for row in fields["rows"]]
        return (f"{len(accuracies)} results, test accuracy {min(accuracies):.2%} to {max(accuracies):.2%}"
                if len(accuracies) > 1 else f"1 result, test accuracy {accuracies[0]:.2%}")
    return f"no test accuracy ({fields.get('result') or 'none recorded'})"   # .get: records of older runs


def _count(split) -> int:
    """Examples in a split given as a dataset or as its DataLoader."""
    return len(split.dataset) if hasattr(split, "dataset") else len(split)


def result_fields(*, model=None, test: Mapping | None = None, history: list[dict] | None = None,
                  splits: Mapping | None = None, vocab=None) -> dict:
    """The metrics.json fields a result's objects give: "test_accuracy"/"test_loss" from `test`,
    "history" and "train_seconds" (its epochs' seconds summed) from `history`, "n_<split>" from
    `splits`, "vocab_size" from `vocab`, "model" (class name) and "params" (trainable) from `model`.
    Objects left at None give no fields."""
    from .models import count_parameters

    fields = {}
    if test is not None:
        fields.update(test_accuracy=float(test["accuracy"]), test_loss=float(test["loss"]))
    if history is not None:
        fields.update(history=list(history), train_seconds=sum(row["seconds"] for row in history))
    for name, split in (splits or {}).items():
        fields[f"n_{name}"] = _count(split)
    if vocab is not None:
        fields["vocab_size"] = len(vocab)
    if model is not None:
        fields.update(model=type(model).__name__, params=count_parameters(model))
    return fields


def quiet_widget_warning() -> None:
    """Ignore tqdm's "IProgress not found" warning, which `tqdm.auto` (imported by huggingface_hub, so by
    lesson 6's encoder) gives in a Jupyter kernel without ipywidgets. The course never draws widget bars
    (`helpers.progress` uses text bars, in interactive use only), so the warning asks a student to install
    something nothing needs. Only that one message is filtered."""
    import warnings

    from tqdm import TqdmWarning

    warnings.filterwarnings("ignore", message="IProgress not found", category=TqdmWarning)


def start_lesson(notebook: str, *, profile: str | None = None, data_dir=None, epochs: int = 5,
                 device: str = "auto", seed: int = 1234, results_dir=None, cache_dir=None,
                 precision: str | None = None, threads: int | None = None,
                 bundles_to_deployment: bool = True) -> LessonRun:
    """Resolve a notebook's parameters, make the run reproducible, and say what it will do.

    Every argument left at None falls back to its environment variable (`SENTIMENT_PROFILE`,
    `SENTIMENT_DATA_DIR`, `SENTIMENT_RESULTS_DIR`, `SENTIMENT_CACHE_DIR`,
    `SENTIMENT_PRECISION`, `SENTIMENT_THREADS`), then to the profile's default. `results_dir`
    is the run's output folder: this notebook's files go to `<results_dir>/<notebook>/`.
    The cache folder becomes the library's default for this process. `bundles_to_deployment=False`
    keeps the bundles a full run exports in its own results folder instead of the deployment's
    `models/` (lesson 7 exports a bundle the deployment does not serve).
    """
    from .results import device_name
    from .training import describe_precision, get_device, make_reproducible, training_precision

    quiet_widget_warning()
    environ = os.environ
    chosen = get_profile(profile, environ)
    data_directory = lesson_data_dir(chosen, data_dir, environ)
    chosen = offline_encoder(chosen, data_directory)
    cache = cache_dir or environ.get("SENTIMENT_CACHE_DIR")
    if cache:
        files.DEFAULT_CACHE_DIR = Path(cache).expanduser().resolve()
    threads = threads or environ.get("SENTIMENT_THREADS") or None
    reproducible = make_reproducible(seed, int(threads) if threads else None)
    torch_device = get_device(device)
    explicit_output = results_dir or environ.get("SENTIMENT_RESULTS_DIR")
    output_dir = Path(explicit_output).expanduser().resolve() if explicit_output else default_output_dir(chosen)
    course_bundles = course_bundles_dir()
    if chosen.export_to_course and bundles_to_deployment and not explicit_output and course_bundles is not None:
        bundles = course_bundles
    else:
        bundles = output_dir / notebook / "bundles"
    run = LessonRun(
        notebook=notebook, profile=chosen, data_dir=data_directory, cache_dir=files.cache_dir(),
        epochs=chosen.epochs or epochs, device=torch_device, seed=seed,
        precision=training_precision(torch_device, precision or environ.get("SENTIMENT_PRECISION") or "auto"),
        threads=reproducible["threads"], output_dir=output_dir, bundles_dir=bundles)
    run.results_dir.mkdir(parents=True, exist_ok=True)
    print(f"profile {chosen.name} | data: {describe_data(data_directory)} | {run.epochs} epoch(s) "
          f"| device {device_name(run.device)} "
          f"| training precision {describe_precision(run.precision)} | seed {seed}")
    if chosen.sample:
        print(f"{chosen.name} profile: {chosen.sample} examples per split, {run.epochs} epoch(s). It checks the "
              "code runs; its numbers mean nothing. Its files go to a separate folder.")
    return run
