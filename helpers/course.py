"""The course layer: what a lesson run means, where its files go, and what it records.

Only this module, `results` and `run` know that a course exists around the library:
the run profiles, the environment variables (`SENTIMENT_PROFILE`, `SENTIMENT_DATA_DIR`,
`SENTIMENT_CACHE_DIR`, `SENTIMENT_RESULTS_DIR`, `SENTIMENT_PRECISION`,
`SENTIMENT_TRANSFORMER`, `SENTIMENT_THREADS`), the checkout (when there is one) and the
small data shipped inside the package. The library below takes explicit arguments.

A lesson starts with one call and ends with one, both in collapsed cells (bookkeeping,
not the lesson); exporting a bundle for the deployment is a lesson step of its own:

    run = start_lesson("03_faster_sentiment", profile=PROFILE, data_dir=DATA_DIR, ...)
    ...
    bundle = run.export(model, encoding, name="sentiment", task="sentiment", labels=..., test=test)
    ...
    run.record(model=model, test=test, history=history, splits=loaders, vocab=vocab, dataset="imdb", ...)

`record` derives the counts, parameters and training time from the objects themselves and
says in one line what it wrote; no call prints a machine path. The facts that decide a
result's digits besides the code (hardware, commit, library versions: `provenance`) are
computed here and handed to the library as values.

Where a run writes (metrics, plots, checkpoints, exported bundles):

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

import functools
import os
import tomllib
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import TqdmWarning

from . import __version__, files
from .bundle import is_plain_name
from .export import BundleInfo, export_bundle
from .files import DataError
from .results import RunRecord, git_commit, write_record
from .sync import NOTEBOOK_NAME


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


@functools.cache
def course_url() -> str:
    """The repository URL: pyproject's [project.urls] Repository (the one place it is written), read from
    pyproject.toml in a checkout, else from the installed distribution's metadata (read on first use)."""
    root = checkout_root()
    if root is not None:
        return tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]["urls"]["Repository"]
    try:
        for entry in metadata.metadata("sentiment-tutorials").get_all("Project-URL") or []:
            label, _, url = entry.partition(",")
            if label.strip().lower() == "repository":
                return url.strip()
    except metadata.PackageNotFoundError:
        pass
    return "https://github.com/<owner>/sentiment-tutorials"   # neither a checkout nor installed: what to fill in


def provenance(packages: Sequence[str] = ("torch", "onnx")) -> dict[str, str | None]:
    """What made an artefact, as values the library writes down (a bundle's meta.json, a run's metrics.json):
    {"git_commit": HEAD of the checkout, or "not a checkout ..." (see `results.git_commit`),
    "<package>_version": its installed version, or None, for each of `packages`}."""
    from .hardware import package_versions   # deferred: hardware imports torch; helpers.run imports us without

    versions = package_versions(packages)
    return {"git_commit": git_commit(checkout_root()),
            **{f"{package}_version": versions[package] for package in packages}}


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
    return (f"This notebook was written for course version {notebook_version}, but the installed helpers are "
            f"version {library_version}: its cells may not match them. Install the notebook's version with\n"
            f'    %pip install "sentiment-tutorials @ git+{course_url()}@v{notebook_version}"\n'
            "and restart the kernel, or open the notebook of this version.")


def check_version(notebook_version: str) -> bool:
    """Say clearly (printed, not raised) when notebook and installed helpers differ; True when they agree."""
    message = version_mismatch(notebook_version)
    if message:
        print(f"WARNING: {message}")
    return message is None


# ---------------------------------------------------------------------------- one lesson's run

def plain_name(value: str, rule: str, example: str) -> str:
    """`value` when it is one plain file or folder name (`bundle.is_plain_name`: letters, digits, `_`, `-`, `.`,
    not hidden, no folder part; what a bundle accepts inside it), else a ValueError stating `rule` ("a bundle
    name is one plain folder name") with `example`."""
    if not is_plain_name(value):
        raise ValueError(f"{rule} like {example!r}, not {value!r}")
    return value


@dataclass(frozen=True)
class LessonRun:
    """What a lesson notebook resolved from its parameters; `record` writes its results.

    `output_dir` is the run's output folder (all notebooks), `notebook_dir` this notebook's
    folder inside it; `bundles_dir` is where `bundle_dir(name)` puts this notebook's bundles,
    `course_bundles` the checkout's `deployment/models` when this run's profile and output
    export there (else None: every notebook's bundles stay in its own folder).
    """

    notebook: str
    profile: Profile
    data_dir: Path | None
    cache_dir: Path              # downloads and prepared caches: lessons pass `cache=run.cache_dir`
    epochs: int
    device: "torch.device"
    seed: int
    precision: str               # what `fit` trains in on this device: "bf16", "fp16" or "fp32"
    threads: int
    output_dir: Path
    bundles_dir: Path
    course_bundles: Path | None = None

    @property
    def notebook_dir(self) -> Path:
        """`<output dir>/<notebook>`: this notebook's metrics, plots, checkpoints and (outside the course's
        bundles) bundles."""
        return self.output_dir / self.notebook

    def _other_notebook(self, notebook: str | None) -> str | None:
        """None for this run's own notebook, else `notebook` checked to be a lesson's name."""
        if notebook is None or notebook == self.notebook:
            return None
        if not isinstance(notebook, str) or not NOTEBOOK_NAME.fullmatch(f"{notebook}.ipynb"):
            raise ValueError(f"notebook= names a lesson by its file name without .ipynb, like "
                             f"'03_faster_sentiment', not {notebook!r}")
        return notebook

    def bundle_dir(self, name: str, notebook: str | None = None) -> Path:
        """Where bundle `name` of `notebook` (default: this one) is exported (the folder itself; the exporter
        creates it). Another notebook's bundle is where that notebook's own run puts it: the course's
        `deployment/models` when this run's profile and output export there, else
        `<output dir>/<notebook>/bundles`."""
        plain_name(name, "a bundle name is one plain folder name", "sentiment")
        other = self._other_notebook(notebook)
        if other is None:
            return self.bundles_dir / name
        return (self.course_bundles or self.output_dir / other / "bundles") / name

    def checkpoint(self, file_name: str, notebook: str | None = None) -> Path:
        """`<output dir>/<notebook>/checkpoint/<file_name>`: weights a notebook saves for itself or a later
        lesson (git-ignored in a checkout). The folder is made for this run's own notebook only; another
        notebook's file is only looked up."""
        plain_name(file_name, "a checkpoint is one plain file name", "fasttext.pt")
        other = self._other_notebook(notebook)
        folder = self.output_dir / (other or self.notebook) / "checkpoint"
        if other is None:
            folder.mkdir(parents=True, exist_ok=True)
        return folder / file_name

    def where(self, path: Path) -> str:
        """`path` as a reader can follow it without this machine's folders: relative to the checkout when inside
        it ("results/03_faster_sentiment/metrics.json"), else from the output folder's name."""
        path = Path(path)
        for base in (checkout_root(), self.output_dir.parent):
            if base is not None and path.is_relative_to(base):
                return path.relative_to(base).as_posix()
        return path.name

    def export(self, model, encoding, *, name: str, task: str, labels: Sequence[str], test: Mapping | None = None,
               check_texts: Sequence[str] | None = None, notes: str | None = None) -> Path:
        """Export `model` with its `encoding` (`helpers.encoding.TextEncoding`) as bundle `name` to
        `bundle_dir(name)`, say where it went in one line, and return the bundle folder.

        `task`, `labels`, `notes`: what the bundle says about itself (see `export.BundleInfo`);
        `test`: `evaluate`'s result for the model, whose accuracy meta.json keeps; `check_texts`:
        texts on which ONNX Runtime must agree with torch before the bundle is kept. The
        provenance (notebook, profile, commit, torch and onnx versions) is filled in here.
        """
        info = BundleInfo(name=name, task=task, labels=labels, source_notebook=self.notebook,
                          profile=self.profile.name, test_accuracy=None if test is None else test["accuracy"],
                          notes=notes, provenance=provenance())
        bundle = export_bundle(model, encoding, self.bundle_dir(name), info, check_texts=check_texts)
        size = sum(file.stat().st_size for file in bundle.iterdir() if file.is_file())
        print(f"exported bundle {name} ({type(model).__name__}, {task}, {size / 1e6:.1f} MB) "
              f"to {self.where(bundle)}")
        return bundle

    def record(self, *, model=None, test: Mapping | None = None, history: list[dict] | None = None,
               splits: Mapping | None = None, vocab=None, beyond: Mapping | None = None,
               rows: Sequence[Mapping] | None = None, result: str | None = None, **lesson) -> Path:
        """Write `<notebook_dir>/metrics.json` (see `results.RunRecord`), say so in one line, and return the
        file's path. It only records: a bundle is exported with `export`, before.

        A lesson passes its objects; the fields are derived here (see `result_fields`):
        `model` (the trained model: "model" its class name, "params" its trainable parameters),
        `test` (`evaluate`'s result on the test set), `history` (`fit`'s: "history" and
        "train_seconds"), `splits` ({"train": ..., "valid": ..., "test": ...}: datasets or
        their loaders, for "n_train", ...), `vocab` ("vocab_size").
        `beyond`: the going-further run as a dict with the same keys (model, test, history,
        splits, vocab) and its own ("how", ...); written as metrics' "beyond".
        `rows`: instead of one `test` result, several (a notebook comparing models or datasets,
        like the baselines appendix): dicts with at least "model" (a readable name), "dataset"
        and "test_accuracy" (a fraction), and whatever else they measured; the results summary
        gives each its own row. `result`: for a notebook without a test accuracy (lesson 7), a
        short sentence of what it produced, shown in the summary instead.
        `lesson`: what only this lesson knows (dataset, vectors, ...); a derived field given
        here wins. The run's own facts (profile, epochs, seed, device, precision, hardware,
        commit, versions) are computed here and passed to `RunRecord` as values.
        """
        # deferred: hardware imports torch; helpers.run imports this module without torch
        from .hardware import describe_hardware, hardware_summary

        if "export" in lesson or (beyond is not None and "export" in beyond):
            raise ValueError("record() only records: export with run.export(...)")
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
        if beyond is not None:
            beyond = dict(beyond)
            parts = {key: beyond.pop(key, None) for key in ("model", "test", "history", "splits", "vocab")}
            fields["beyond"] = {**result_fields(**parts), **beyond}
        test_accuracy, test_loss = fields.pop("test_accuracy", None), fields.pop("test_loss", None)
        hardware = describe_hardware(self.device, self.precision)
        record = RunRecord.create(notebook=self.notebook, profile=self.profile.name, seed=self.seed,
                                  epochs=self.epochs, precision=self.precision, test_accuracy=test_accuracy,
                                  test_loss=test_loss, lesson=fields, device=hardware_summary(hardware),
                                  hardware=hardware, **provenance(("torch",)))
        path = write_record(record, self.notebook_dir)
        print(f"recorded: {recorded_what(fields, test_accuracy)} in {self.where(path)}")
        return path


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
    from .models import count_parameters   # deferred: models imports torch; helpers.run imports us without

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
    The cache folder is `run.cache_dir` (the library's default is left alone: lessons pass
    `cache=run.cache_dir`). `bundles_to_deployment=False` keeps the bundles a full run exports
    in its own results folder instead of the deployment's `models/` (lesson 7 exports a bundle
    the deployment does not serve).
    """
    # deferred: these import torch; helpers.run imports this module without torch
    from .hardware import device_name, get_device
    from .precision import describe_precision, training_precision
    from .reproducibility import make_reproducible

    quiet_widget_warning()
    environ = os.environ
    chosen = get_profile(profile, environ)
    data_directory = lesson_data_dir(chosen, data_dir, environ)
    chosen = offline_encoder(chosen, data_directory)
    cache = files.cache_dir(cache_dir or environ.get("SENTIMENT_CACHE_DIR")).resolve()
    threads = threads or environ.get("SENTIMENT_THREADS") or None
    # cuBLAS reads this when CUDA starts; deterministic algorithms need it (no effect on a CPU)
    environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    reproducible = make_reproducible(seed, int(threads) if threads else None)
    torch_device = get_device(device)
    explicit_output = results_dir or environ.get("SENTIMENT_RESULTS_DIR")
    output_dir = Path(explicit_output).expanduser().resolve() if explicit_output else default_output_dir(chosen)
    # the deployment's models/ only for the course's reference run: that profile, in a checkout, no output folder
    course_bundles = course_bundles_dir() if chosen.export_to_course and not explicit_output else None
    bundles = course_bundles if course_bundles is not None and bundles_to_deployment else output_dir / notebook / "bundles"
    run = LessonRun(
        notebook=notebook, profile=chosen, data_dir=data_directory, cache_dir=cache,
        epochs=chosen.epochs or epochs, device=torch_device, seed=seed,
        precision=training_precision(torch_device, precision or environ.get("SENTIMENT_PRECISION") or "auto"),
        threads=reproducible["threads"], output_dir=output_dir, bundles_dir=bundles, course_bundles=course_bundles)
    run.notebook_dir.mkdir(parents=True, exist_ok=True)
    print(f"profile {chosen.name} | data: {describe_data(data_directory)} | {run.epochs} epoch(s) "
          f"| device {device_name(run.device)} "
          f"| training precision {describe_precision(run.precision)} | seed {seed}")
    if chosen.sample:
        print(f"{chosen.name} profile: {chosen.sample} examples per split, {run.epochs} epoch(s). It checks the "
              "code runs; its numbers mean nothing. Its files go to a separate folder.")
    return run
