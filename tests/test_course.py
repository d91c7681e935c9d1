"""The course layer: profiles, where a run writes (in a checkout, outside one, with an output folder),
the record it leaves, and the notebooks' install line."""
from __future__ import annotations

import json
import os
import re
import tomllib
from pathlib import Path

import nbformat
import pytest
import torch

import helpers
from conftest import REPO_ROOT
from helpers import course, files
from helpers.files import DataError
from helpers.results import RunRecord, git_commit


@pytest.fixture(autouse=True)
def torch_state():
    """start_lesson switches on deterministic algorithms and may set the thread count: put both back."""
    deterministic, threads = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    yield
    torch.use_deterministic_algorithms(deterministic)
    torch.set_num_threads(threads)


@pytest.fixture
def no_course_env(monkeypatch):
    for name in ("SENTIMENT_PROFILE", "SENTIMENT_RESULTS_DIR", "SENTIMENT_TRANSFORMER", "SENTIMENT_PRECISION",
                 "SENTIMENT_THREADS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake_checkout(tmp_path, monkeypatch):
    """A checkout in tmp_path (so a test never writes into the real one)."""
    root = tmp_path / "checkout"
    (root / "notebooks").mkdir(parents=True)
    monkeypatch.setattr(course, "checkout_root", lambda: root)
    return root


def test_profiles_carry_their_decisions(no_course_env):
    full, smoke = course.get_profile("full"), course.get_profile("smoke")
    assert (full.sample, full.epochs, full.fixture_data, full.encoder, full.max_length) == (None, None, False, None,
                                                                                            None)
    assert full.export_to_course and not smoke.export_to_course
    assert (smoke.sample, smoke.epochs, smoke.fixture_data, smoke.max_length) == (300, 1, True, 128)
    assert Path(smoke.encoder) == course.TINY_ENCODER_DIR and (course.TINY_ENCODER_DIR / "config.json").is_file()
    assert (full.results_folder_name, smoke.results_folder_name) == ("results", "results-smoke")
    with pytest.raises(ValueError, match="unknown profile 'fast': choose one of full, smoke"):
        course.get_profile("fast")


def test_environment_chooses_profile_and_encoder(tmp_path, monkeypatch):
    (tmp_path / "model").mkdir()
    monkeypatch.chdir(tmp_path)
    environ = {"SENTIMENT_PROFILE": "smoke", "SENTIMENT_TRANSFORMER": "model"}
    assert course.get_profile(None, environ).encoder == str(tmp_path / "model")   # a relative folder, made absolute
    assert course.get_profile("full", {"SENTIMENT_TRANSFORMER": "bert-base-uncased"}).encoder == "bert-base-uncased"
    assert course.get_profile(None, {}).name == "full"


def test_lesson_data_dir(tmp_path):
    full, smoke = course.PROFILES["full"], course.PROFILES["smoke"]
    assert course.lesson_data_dir(full, tmp_path, {}) == tmp_path
    assert course.lesson_data_dir(full, None, {"SENTIMENT_DATA_DIR": str(tmp_path)}) == tmp_path
    assert course.lesson_data_dir(smoke, None, {}) == course.FIXTURE_DATA_DIR       # offline, from the package
    assert course.lesson_data_dir(full, None, {}) is None                            # download
    with pytest.raises(DataError, match="SENTIMENT_DATA_DIR: data directory .*nowhere does not exist"):
        course.lesson_data_dir(full, None, {"SENTIMENT_DATA_DIR": str(tmp_path / "nowhere")})
    assert (course.FIXTURE_DATA_DIR / "imdb" / "aclImdb").is_dir() and course.FIXTURE_DATA_DIR.is_relative_to(
        Path(helpers.__file__).parent)


def test_offline_encoder_beside_the_data_folder(tmp_path):
    (tmp_path / "data").mkdir()
    full = course.PROFILES["full"]
    assert course.offline_encoder(full, tmp_path / "data").encoder is None
    model = tmp_path / "models" / course.OFFLINE_ENCODER
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    assert course.offline_encoder(full, tmp_path / "data").encoder == str(model)
    assert course.offline_encoder(course.PROFILES["smoke"], tmp_path / "data") == course.PROFILES["smoke"]


def test_full_run_in_a_checkout_keeps_todays_places(fake_checkout, no_course_env):
    run = course.start_lesson("03_x", profile="full", data_dir=None, epochs=3, device="cpu")
    assert run.notebook_dir == fake_checkout / "results" / "03_x" and run.notebook_dir.is_dir()
    assert run.output_dir == fake_checkout / "results"
    assert run.bundle_dir("sentiment") == fake_checkout / "deployment" / "models" / "sentiment"
    assert run.checkpoint("fasttext.pt") == fake_checkout / "results" / "03_x" / "checkpoint" / "fasttext.pt"
    assert (run.epochs, run.seed, run.precision in ("bf16", "fp32"), run.threads >= 1) == (3, 1234, True, True)
    assert "/results/*/checkpoint/" in (REPO_ROOT / ".gitignore").read_text()   # weights are never committed


def test_a_lesson_can_keep_its_full_run_bundles_out_of_the_deployment(fake_checkout, no_course_env):
    run = course.start_lesson("07_x", profile="full", device="cpu", bundles_to_deployment=False)
    assert run.bundle_dir("sentiment-lesson7") == run.notebook_dir / "bundles" / "sentiment-lesson7"
    assert course.start_lesson("03_x", profile="full", device="cpu").bundle_dir("s").parent.name == "models"
    # lesson 3's bundle is still where lesson 3's own full run exports it: the deployment's models/
    assert run.bundle_dir("sentiment", notebook="03_x") == fake_checkout / "deployment" / "models" / "sentiment"


@pytest.mark.parametrize("profile, output", [("full", None), ("smoke", None), ("full", "out"), ("smoke", "out")])
def test_another_lessons_bundle_and_weights_are_where_its_own_run_puts_them(fake_checkout, tmp_path, no_course_env,
                                                                            profile, output):
    """Lesson 7 reads what lesson 3 left: for every profile and output folder, the place lesson 3's run uses."""
    results_dir = tmp_path / output if output else None
    lesson3 = course.start_lesson("03_x", profile=profile, device="cpu", results_dir=results_dir)
    lesson7 = course.start_lesson("07_x", profile=profile, device="cpu", results_dir=results_dir,
                                  bundles_to_deployment=False)
    assert lesson7.bundle_dir("sentiment", notebook="03_x") == lesson3.bundle_dir("sentiment")
    assert lesson7.checkpoint("fasttext.pt", notebook="03_x") == lesson3.checkpoint("fasttext.pt")
    assert lesson7.bundle_dir("sentiment", notebook="07_x") == lesson7.bundle_dir("sentiment")


def test_a_checkpoint_folder_is_made_for_the_own_notebook_only(fake_checkout, no_course_env):
    run = course.start_lesson("07_x", profile="smoke", device="cpu")
    own = run.checkpoint("weights.pt")
    assert own.parent.is_dir() and not own.exists()
    other = run.checkpoint("fasttext.pt", notebook="03_x")
    assert other == fake_checkout / "results-smoke" / "03_x" / "checkpoint" / "fasttext.pt"
    assert not other.parent.exists()   # looked up, not made
    for bad in ("../x.pt", "", ".hidden", "a/b.pt"):
        with pytest.raises(ValueError, match="a checkpoint is one plain file name like 'fasttext.pt'"):
            run.checkpoint(bad)
    for bad in ("03_x.ipynb", "../03_x", "lesson3", "", "x y"):
        with pytest.raises(ValueError, match="notebook= names a lesson by its file name without .ipynb"):
            run.bundle_dir("sentiment", notebook=bad)


def test_smoke_run_in_a_checkout_never_touches_committed_results(fake_checkout, no_course_env):
    run = course.start_lesson("03_x", profile="smoke", device="cpu")
    assert run.notebook_dir == fake_checkout / "results-smoke" / "03_x"
    assert run.bundle_dir("sentiment") == fake_checkout / "results-smoke" / "03_x" / "bundles" / "sentiment"
    assert run.epochs == 1 and run.data_dir == course.FIXTURE_DATA_DIR
    assert "/results-smoke/" in (REPO_ROOT / ".gitignore").read_text()


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_an_output_folder_takes_everything_bundles_included(fake_checkout, tmp_path, monkeypatch, how,
                                                            no_course_env):
    out = tmp_path / "out"
    if how == "environment":
        monkeypatch.setenv("SENTIMENT_RESULTS_DIR", str(out))
    run = course.start_lesson("03_x", profile="full", device="cpu", results_dir=out if how == "argument" else None)
    assert run.notebook_dir == out / "03_x"
    assert run.bundle_dir("sentiment") == out / "03_x" / "bundles" / "sentiment"


def test_outside_a_checkout_everything_goes_under_the_working_folder(tmp_path, monkeypatch, no_course_env):
    monkeypatch.setattr(course, "checkout_root", lambda: None)
    monkeypatch.chdir(tmp_path)
    for profile, folder in (("full", "results"), ("smoke", "results-smoke")):
        run = course.start_lesson("03_x", profile=profile, device="cpu")
        assert run.notebook_dir == tmp_path / folder / "03_x"
        assert run.bundle_dir("sentiment") == tmp_path / folder / "03_x" / "bundles" / "sentiment"


def test_the_runs_cache_folder_comes_from_the_environment_and_the_library_is_left_alone(tmp_path, monkeypatch,
                                                                                        fake_checkout, no_course_env):
    library_default = files.DEFAULT_CACHE_DIR   # the test's own folder (conftest)
    monkeypatch.setenv("SENTIMENT_CACHE_DIR", str(tmp_path / "elsewhere"))
    run = course.start_lesson("03_x", profile="smoke", device="cpu")
    assert run.cache_dir == tmp_path / "elsewhere" and run.cache_dir.is_dir()
    assert files.DEFAULT_CACHE_DIR == library_default and files.cache_dir() == library_default
    assert course.start_lesson("03_x", profile="smoke", device="cpu", cache_dir=tmp_path / "mine").cache_dir == (
        tmp_path / "mine")
    monkeypatch.delenv("SENTIMENT_CACHE_DIR")
    assert course.start_lesson("03_x", profile="smoke", device="cpu").cache_dir == library_default.resolve()


def test_start_lesson_asks_cublas_for_deterministic_workspaces_and_keeps_a_users_setting(fake_checkout,
                                                                                        monkeypatch, no_course_env):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    course.start_lesson("03_x", profile="smoke", device="cpu")
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")
    course.start_lesson("03_x", profile="smoke", device="cpu")
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"


def test_precision_and_threads_from_the_environment(fake_checkout, monkeypatch, no_course_env, capsys):
    monkeypatch.setenv("SENTIMENT_PRECISION", "fp32")
    monkeypatch.setenv("SENTIMENT_THREADS", "1")
    run = course.start_lesson("03_x", profile="smoke", device="cpu")
    assert (run.precision, run.threads, torch.get_num_threads()) == ("fp32", 1, 1)
    monkeypatch.setenv("SENTIMENT_PRECISION", "fp16")   # forced anywhere it can run, the CPU included
    capsys.readouterr()
    assert course.start_lesson("03_x", profile="smoke", device="cpu").precision == "fp16"
    first_line = capsys.readouterr().out.splitlines()[0]
    assert "| training precision fp16 with a gradient scaler |" in first_line
    monkeypatch.setenv("SENTIMENT_PRECISION", "half")
    with pytest.raises(ValueError, match="precision must be one of 'auto', 'bf16', 'fp16', 'fp32'"):
        course.start_lesson("03_x", profile="smoke", device="cpu")


def test_bundle_names_stay_inside_their_folder(fake_checkout, no_course_env):
    run = course.start_lesson("03_x", profile="smoke", device="cpu")
    for bad in ("../sentiment", "", ".hidden", "a/b"):
        with pytest.raises(ValueError, match="one plain folder name"):
            run.bundle_dir(bad)


def test_record_is_written_once_with_the_runs_facts(fake_checkout, no_course_env, capsys):
    run = course.start_lesson("03_x", profile="smoke", device="cpu", seed=7)
    capsys.readouterr()
    model = torch.nn.Linear(3, 1)
    model.bias.requires_grad_(False)                      # frozen weights are not counted as params
    history = [{"epoch": 1, "seconds": 1.5}, {"epoch": 2, "seconds": 2.0}]
    path = run.record(model=model, test={"accuracy": 0.5, "loss": 0.25}, history=history,
                      splits={"train": [0] * 4, "valid": torch.utils.data.DataLoader([0, 1]), "test": [0] * 3},
                      vocab=["<unk>", "<pad>", "good"], dataset="imdb",
                      beyond={"test": {"accuracy": 0.6, "loss": 0.2}, "how": "longer", "splits": {"train": [0] * 6}})
    assert path == run.notebook_dir / "metrics.json"
    record = json.loads(path.read_text())
    assert {key: record[key] for key in ("notebook", "profile", "seed", "epochs", "test_accuracy", "dataset")} == {
        "notebook": "03_x", "profile": "smoke", "seed": 7, "epochs": 1, "test_accuracy": 0.5, "dataset": "imdb"}
    # derived from the objects passed: counts, parameters, training seconds, class name
    assert {key: record[key] for key in ("n_train", "n_valid", "n_test", "vocab_size", "params", "train_seconds",
                                         "model", "test_loss")} == {
        "n_train": 4, "n_valid": 2, "n_test": 3, "vocab_size": 3, "params": 3, "train_seconds": 3.5,
        "model": "Linear", "test_loss": 0.25}
    assert record["beyond"] == {"test_accuracy": 0.6, "test_loss": 0.2, "n_train": 6, "how": "longer"}
    assert record["hardware"]["precision"] == run.precision and record["hardware"]["versions"]["torch"]
    assert record["device"].startswith("cpu ") and f"{record['hardware']['threads']} threads" in record["device"]
    assert record["course_version"] == helpers.__version__ and record["torch_version"] == torch.__version__
    assert record["git_commit"] == git_commit(fake_checkout)   # the course's checkout (here: a folder without git)
    assert set(record) == {f for f in RunRecord.__dataclass_fields__ if f != "lesson"} | {
        "dataset", "history", "beyond", "n_train", "n_valid", "n_test", "vocab_size", "params", "train_seconds",
        "model"}
    # one line, no machine path: the file named from the checkout
    assert capsys.readouterr().out == ("recorded: test accuracy 50.00% (going further 60.00%) in "
                                       "results-smoke/03_x/metrics.json\n")
    with pytest.raises(ValueError, match="epochs: filled in by the run itself"):
        run.record(model=model, test={"accuracy": 0.5, "loss": 0.25}, epochs=3)


@pytest.fixture
def fake_export(monkeypatch):
    """`course.export_bundle` replaced by one that records its call and writes a 2 MB model file."""
    calls = []

    def export(model, encoding, destination, info, *, check_texts=None):
        calls.append((model, encoding, destination, info, check_texts))
        destination.mkdir(parents=True)
        (destination / "model.onnx").write_bytes(b"x" * 2_000_000)
        return destination

    monkeypatch.setattr(course, "export_bundle", export)
    return calls


def test_export_passes_the_lessons_facts_and_the_provenance_as_values(fake_checkout, no_course_env, capsys,
                                                                       fake_export):
    import onnx

    run = course.start_lesson("04_x", profile="smoke", device="cpu")
    capsys.readouterr()
    better = torch.nn.Linear(2, 1)
    bundle = run.export(better, "encoding", name="sentiment-cnn", task="sentiment", labels=["neg", "pos"],
                        test={"accuracy": 0.7, "loss": 0.2}, check_texts=["a"], notes="going-further model: 6 epochs")
    (model, encoding, destination, info, check_texts), = fake_export
    assert model is better and encoding == "encoding" and check_texts == ["a"]
    assert bundle == destination == run.bundle_dir("sentiment-cnn")
    assert (info.name, info.task, info.labels, info.test_accuracy, info.source_notebook, info.profile, info.notes) == (
        "sentiment-cnn", "sentiment", ["neg", "pos"], 0.7, "04_x", "smoke", "going-further model: 6 epochs")
    # the course computes the provenance; export.py writes it as it is given
    assert dict(info.provenance) == {"git_commit": git_commit(fake_checkout), "torch_version": torch.__version__,
                                     "onnx_version": onnx.__version__}
    assert capsys.readouterr().out == (
        "exported bundle sentiment-cnn (Linear, sentiment, 2.0 MB) to results-smoke/04_x/bundles/sentiment-cnn\n")
    run.export(better, "encoding", name="sentiment", task="sentiment", labels=["neg", "pos"])
    assert (fake_export[-1][3].test_accuracy, fake_export[-1][3].notes) == (None, None)
    with pytest.raises(ValueError, match="a bundle name is one plain folder name"):
        run.export(better, "encoding", name="../sentiment", task="sentiment", labels=["neg", "pos"])


def test_provenance_names_the_commit_and_the_versions():
    import onnx

    assert course.provenance() == {"git_commit": git_commit(course.checkout_root()),
                                   "torch_version": torch.__version__, "onnx_version": onnx.__version__}
    assert course.provenance(("torch", "no-such-package")) == {
        "git_commit": git_commit(course.checkout_root()), "torch_version": torch.__version__,
        "no-such-package_version": None}


def test_record_only_records(fake_checkout, no_course_env, fake_export):
    run = course.start_lesson("03_x", profile="smoke", device="cpu")
    test = {"accuracy": 0.5, "loss": 0.3}
    with pytest.raises(ValueError, match=r"record\(\) only records: export with run\.export\(\.\.\.\)"):
        run.record(test=test, export={"name": "sentiment", "task": "sentiment"})
    with pytest.raises(ValueError, match=r"record\(\) only records: export with run\.export"):
        run.record(test=test, beyond={"test": test, "export": {"name": "sentiment-cnn"}})
    assert not fake_export and not (run.notebook_dir / "metrics.json").exists()
    assert not hasattr(run, "export_result") and not hasattr(run, "results_dir")


def test_record_takes_several_results_or_none_and_names_a_bad_call(fake_checkout, no_course_env, capsys):
    run = course.start_lesson("B_x", profile="smoke", device="cpu")
    capsys.readouterr()
    rows = [{"model": "tf-idf + lr", "dataset": "imdb", "test_accuracy": 0.891, "fit_seconds": 12.5},
            {"model": "nb-svm", "dataset": "trec-coarse", "test_accuracy": 0.8}]
    path = run.record(rows=rows, features=1000)
    metrics = json.loads(path.read_text())
    assert metrics["test_accuracy"] is None and metrics["rows"] == rows and metrics["features"] == 1000
    assert capsys.readouterr().out.startswith("recorded: 2 results, test accuracy 80.00% to 89.10% in ")
    path = course.start_lesson("07_x", profile="smoke", device="cpu").record(result="served sentiment, p50 2.0 ms")
    assert json.loads(path.read_text())["result"] == "served sentiment, p50 2.0 ms"
    assert "recorded: no test accuracy (served sentiment, p50 2.0 ms)" in capsys.readouterr().out
    with pytest.raises(ValueError, match="needs test= .*rows= .*result="):
        run.record(model=torch.nn.Linear(2, 1))
    with pytest.raises(ValueError, match="either test= .* or rows="):
        run.record(test={"accuracy": 0.5, "loss": 0.1}, rows=rows)
    with pytest.raises(ValueError, match=r"row 2 lacks dataset"):
        run.record(rows=[rows[0], {"model": "m", "test_accuracy": 0.5}])
    with pytest.raises(ValueError, match=r"row 1 \(m, imdb\): test_accuracy must be a fraction .* got 89.1"):
        run.record(rows=[{"model": "m", "dataset": "imdb", "test_accuracy": 89.1}])
    with pytest.raises(ValueError, match="got no rows"):
        run.record(rows=[])


def test_start_lesson_describes_its_data_without_a_machine_path(fake_checkout, no_course_env, tmp_path, capsys):
    folder = tmp_path / "my-data"
    folder.mkdir()
    course.start_lesson("03_x", profile="smoke", device="cpu", data_dir=folder)
    course.start_lesson("03_x", profile="smoke", device="cpu")
    out = capsys.readouterr().out
    assert "data: local data folder |" in out and "data: sample shipped with the course |" in out
    assert str(tmp_path) not in out and "my-data" not in out


def test_git_commit_inside_and_outside_a_checkout(tmp_path):
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?", git_commit(REPO_ROOT))
    assert git_commit(tmp_path).startswith("not a checkout") and str(tmp_path) in git_commit(tmp_path)
    assert git_commit(None) == f"not a checkout (installed helpers {helpers.__version__})"


def test_the_course_url_is_read_when_asked_from_the_checkout_or_the_installed_metadata(monkeypatch, tmp_path):
    url = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
    assert course.course_url() == url
    course.course_url.cache_clear()
    root = tmp_path / "checkout"
    root.mkdir()
    (root / "pyproject.toml").write_text('[project.urls]\nRepository = "https://example.org/fork"\n')
    monkeypatch.setattr(course, "checkout_root", lambda: root)
    try:
        assert course.course_url() == "https://example.org/fork"
        assert "git+https://example.org/fork@v0.0.1" in course.version_mismatch("0.0.1")
    finally:
        course.course_url.cache_clear()


@pytest.mark.parametrize("line, dirty", [
    (" M helpers/data.py", True), ("?? helpers/new_module.py", True), (" M helpers/fixtures/data/own/reviews.csv", True),
    (" M notebooks/03_x.ipynb", False), ("?? notebooks/results/", False),
    ("?? notebooks/results/benchmarks/seeds.json", False)])
def test_only_code_changes_make_a_run_dirty(line, dirty):
    from helpers.results import changes_code

    assert changes_code(line) is dirty


def test_version_mismatch_is_said_clearly(capsys):
    assert course.check_version(helpers.__version__) and capsys.readouterr().out == ""
    assert not course.check_version("0.0.1")
    out = capsys.readouterr().out
    assert "written for course version 0.0.1" in out and f"helpers are version {helpers.__version__}" in out
    assert "@v0.0.1" in out


def test_every_notebook_installs_the_pinned_version_from_the_one_url():
    """The URL is written once, in pyproject's [project.urls]; the version once, in helpers.__version__."""
    url = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
    notebooks = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks
    for path in notebooks:
        first = next(cell for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code")
        installs = re.findall(r'%pip install -q "sentiment-tutorials @ git\+(\S+)@v\{COURSE_VERSION\}"', first.source)
        assert installs == [url], f"{path.name}: its first cell must install {url}@v{{COURSE_VERSION}}"
        assert re.search(r'^COURSE_VERSION = "([^"]+)"$', first.source, re.M)[1] == helpers.__version__, path.name
        assert "check_version(COURSE_VERSION)" in first.source, path.name


def test_only_tqdms_widget_warning_is_quieted(fake_checkout, no_course_env):
    import warnings

    from tqdm import TqdmWarning

    with warnings.catch_warnings(record=True) as caught:   # the filter goes when the block ends
        warnings.simplefilter("always")
        course.start_lesson("03_x", profile="smoke", device="cpu")
        warnings.warn("IProgress not found. Please update jupyter and ipywidgets.", TqdmWarning)
        warnings.warn("another tqdm warning", TqdmWarning)
    assert [str(warning.message) for warning in caught] == ["another tqdm warning"]


def test_every_notebook_keeps_bookkeeping_collapsed_and_checks_some_output_by_tag():
    """Set-up, start and record cells hidden in Jupyter and shown as a titled form in Colab; the parameters
    cell visible; nbval markers as tags (not comments in the lesson's code), at least one output-checked cell
    with a stored output to compare; a sentence on what each plot shows right after it."""
    notebooks = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
    for path in notebooks:
        cells = [cell for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]

        def collapsed(cell):
            return (cell.metadata.get("jupyter", {}).get("source_hidden") is True
                    and cell.metadata.get("cellView") == "form" and cell.source.startswith("#@title "))

        for needle in ("COURSE_VERSION = ", "start_lesson(", "run.record("):
            holding = [cell for cell in cells if needle in cell.source]
            assert holding and all(collapsed(cell) for cell in holding), f"{path.name}: {needle} not collapsed"
        parameters = [cell for cell in cells if "parameters" in cell.metadata.get("tags", [])]
        assert len(parameters) == 1 and not collapsed(parameters[0]), path.name
        assert not any("NBVAL_" in cell.source for cell in cells), f"{path.name}: nbval marker in the source"
        checked = [cell for cell in cells if "nbval-check-output" in cell.metadata.get("tags", [])]
        assert any(cell.outputs and cell.execution_count is not None for cell in checked), path.name
        for index, cell in enumerate(cells):
            if re.search(r"^\s*plot_(history|confusion_matrix)\(", cell.source, re.M):
                assert index + 1 < len(cells) and "describe_plot(" in cells[index + 1].source, (
                    f"{path.name}: no describe_plot cell after {cell.source.splitlines()[0]!r}")
