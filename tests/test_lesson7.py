"""Lesson 7 (notebooks/07_deployment.ipynb): where it writes its bundle, how it finds and checks what lesson 3
left (bundle and weights), what it says without a checkout, and the deployment code it calls:
deployment/events.py, deployment/latency.py and deployment/lambda_package.py."""
from __future__ import annotations

import ast
import base64
import json
import subprocess
import zipfile
from types import SimpleNamespace

import nbformat
import pytest

from conftest import REPO_ROOT
from deploy_support import BUNDLE_NAMES
from deployment import lambda_package
from deployment.events import http_event
from deployment.latency import latency_summary, percentile, time_calls
from helpers import course
from test_course import fake_checkout, no_course_env, torch_state  # noqa: F401 (fixtures: a checkout in tmp_path)
from test_notebook_cells import parse, run_calls

NOTEBOOK = REPO_ROOT / "notebooks" / "07_deployment.ipynb"
LESSON3 = REPO_ROOT / "notebooks" / "03_faster_sentiment.ipynb"


def code_cells(notebook=NOTEBOOK) -> list:
    return [cell for cell in nbformat.read(notebook, as_version=4).cells if cell.cell_type == "code"]


def cell_with(needle: str, notebook=NOTEBOOK):
    """The one code cell whose source holds `needle`."""
    holding = [cell for cell in code_cells(notebook) if needle in cell.source]
    assert len(holding) == 1, f"{len(holding)} cells of {notebook.name} hold {needle!r}"
    return holding[0]


def literal_arguments(call: ast.Call) -> tuple[list, dict]:
    """A call's constant positional and keyword arguments."""
    return ([arg.value for arg in call.args if isinstance(arg, ast.Constant)],
            {kw.arg: kw.value.value for kw in call.keywords if isinstance(kw.value, ast.Constant)})


def notebook_parameters() -> dict:
    """The values the parameters cell assigns (literals only)."""
    cell = next(cell for cell in code_cells() if "parameters" in cell.metadata.get("tags", []))
    return {node.targets[0].id: ast.literal_eval(node.value) for node in ast.parse(cell.source).body
            if isinstance(node, ast.Assign)}


# ------------------------------------------------------------------------------- where the lesson writes

def test_the_lesson_exports_once_under_its_own_name():
    name = notebook_parameters()["BUNDLE_NAME"]
    assert name not in BUNDLE_NAMES   # the names lessons 3-5 export, which deployment/models commits
    exports = [call for cell in code_cells() for call in run_calls(parse(cell.source), "export")]
    assert len(exports) == 1
    assert [ast.unparse(arg) for arg in exports[0].args] == ["model", "encoding"]
    assert ast.unparse(next(kw.value for kw in exports[0].keywords if kw.arg == "name")) == "BUNDLE_NAME"
    assert not any(kw.arg == "export" for cell in code_cells() for call in run_calls(parse(cell.source), "record")
                   for kw in call.keywords)


def test_lesson7_reads_what_lesson3_writes():
    """Lesson 3's export cell names the bundle and the weights file that lesson 7 looks for, by lesson 3's name."""
    lesson3 = cell_with("run.export(", LESSON3).source
    (export,), (checkpoint,) = run_calls(parse(lesson3), "export"), run_calls(parse(lesson3), "checkpoint")
    assert literal_arguments(export)[1]["name"] == "sentiment"
    assert literal_arguments(checkpoint) == (["fasttext.pt"], {})
    assert "torch.save(model.state_dict(), weights)" in lesson3
    lesson7 = cell_with("run.bundle_dir(").source
    (bundle_dir,), (weights,) = run_calls(parse(lesson7), "bundle_dir"), run_calls(parse(lesson7), "checkpoint")
    assert literal_arguments(bundle_dir) == (["sentiment"], {"notebook": "03_faster_sentiment"})
    assert literal_arguments(weights) == (["fasttext.pt"], {"notebook": "03_faster_sentiment"})


@pytest.mark.parametrize("profile, output", [("smoke", None), ("full", None), ("smoke", "out"), ("full", "out")])
def test_lesson7_looks_where_lesson3s_run_writes(fake_checkout, no_course_env, tmp_path, profile, output):  # noqa: F811
    """The same places as lesson 3's own run, whatever the profile and output folder (lesson 7 keeps its own
    bundles out of deployment/models, but reads lesson 3's where lesson 3 put it)."""
    results = None if output is None else tmp_path / output
    lesson3 = course.start_lesson("03_faster_sentiment", profile=profile, device="cpu", results_dir=results)
    lesson7 = course.start_lesson("07_deployment", profile=profile, device="cpu", results_dir=results,
                                  bundles_to_deployment=False)
    assert lesson7.bundle_dir("sentiment", notebook="03_faster_sentiment") == lesson3.bundle_dir("sentiment")
    assert lesson7.checkpoint("fasttext.pt", notebook="03_faster_sentiment") == lesson3.checkpoint("fasttext.pt")


@pytest.fixture(scope="module")
def lesson3_leftovers(tmp_path_factory):
    """(bundle folder, weights file, model, encoding): a small FastText exported as lesson 3 exports it, its
    weights saved as lesson 3 saves them."""
    import torch

    from helpers.corpus import tokenize_corpus
    from helpers.encoding import TextEncoding
    from helpers.export import BundleInfo, export_bundle
    from helpers.models import FastText
    from helpers.text import Tokenizer

    root = tmp_path_factory.mktemp("lesson3")
    texts = ["A wonderful, moving film.", "Not good at all.", "The acting was dull and the plot thin."]
    tokenizer = Tokenizer()
    encoding = TextEncoding.build(tokenizer, tokenize_corpus(texts, tokenizer, workers=1), bigrams=True)
    torch.manual_seed(0)
    model = FastText(len(encoding.vocab), 8, 1, encoding.vocab.pad_index).eval()
    bundle = export_bundle(model, encoding, root / "bundles" / "sentiment",
                           BundleInfo(name="sentiment", task="sentiment", labels=["neg", "pos"],
                                      source_notebook="03_faster_sentiment", profile="smoke", test_accuracy=0.5))
    weights = root / "checkpoint" / "fasttext.pt"
    weights.parent.mkdir()
    torch.save(model.state_dict(), weights)
    return bundle, weights, model, encoding


def run_lesson7_loading(bundle, weights, profile="smoke") -> dict:
    """Lesson 7's imports and its loading cell, run with a stand-in for the run; the cell's variables."""
    run = SimpleNamespace(bundle_dir=lambda name, notebook=None: bundle,
                          checkpoint=lambda file_name, notebook=None: weights,
                          profile=SimpleNamespace(name=profile), where=str)
    namespace = {"run": run}
    exec(cell_with("from deployment import handler").source, namespace)
    exec(cell_with("run.bundle_dir(").source, namespace)
    return namespace


def test_lesson7_loads_lesson3s_model_when_bundle_and_weights_belong_together(lesson3_leftovers, capsys):
    import torch

    bundle, weights, model, encoding = lesson3_leftovers
    loaded = run_lesson7_loading(bundle, weights)
    assert loaded["model"] is not None and loaded["why"] is None
    assert all(torch.equal(value, model.state_dict()[key]) for key, value in loaded["model"].state_dict().items())
    assert loaded["encoding"] == encoding and loaded["encoding"].bigrams is True   # read back from the bundle
    assert capsys.readouterr().out.startswith("loaded lesson 3's model: bundle ")


def test_lesson7_trains_and_says_why_when_lesson3s_leftovers_do_not_fit(lesson3_leftovers, tmp_path, capsys):
    import torch

    bundle, weights, model, _ = lesson3_leftovers
    cases = {"no bundle": (tmp_path / "nothing", weights, "smoke"),
             "no weights": (bundle, tmp_path / "none.pt", "smoke"),
             "another profile": (bundle, weights, "full")}
    other = {key: value.clone() for key, value in model.state_dict().items()}
    other["fc.bias"] += 1.0
    torch.save(other, tmp_path / "other_run.pt")
    cases["another run's weights"] = (bundle, tmp_path / "other_run.pt", "smoke")
    bigger = {**other, "embedding.weight": torch.zeros(len(other["embedding.weight"]) + 1, 8)}
    torch.save(bigger, tmp_path / "bigger.pt")
    cases["another vocabulary"] = (bundle, tmp_path / "bigger.pt", "smoke")
    expected = {"no bundle": "lesson 3 has exported no bundle to", "no weights": "it saved no weights to",
                "another profile": "from the smoke profile, this run is full",
                "another run's weights": "weights do not give its bundle's answers",
                "another vocabulary": "come from different runs"}
    for case, (bundle_dir, weights_file, profile) in cases.items():
        loaded = run_lesson7_loading(bundle_dir, weights_file, profile)
        printed = capsys.readouterr().out
        assert loaded["model"] is None, case
        assert expected[case] in loaded["why"] and "training lesson 3's model here instead" in printed, case


def test_a_smoke_run_never_writes_into_deployment_models(fake_checkout, no_course_env, tmp_path):  # noqa: F811
    name = notebook_parameters()["BUNDLE_NAME"]
    models = fake_checkout / "deployment" / "models"
    smoke = course.start_lesson("07_deployment", profile="smoke", device="cpu")
    assert not smoke.bundle_dir(name).is_relative_to(models)
    assert smoke.bundle_dir(name).is_relative_to(fake_checkout / "results-smoke")
    elsewhere = course.start_lesson("07_deployment", profile="full", device="cpu", results_dir=tmp_path / "out")
    assert elsewhere.bundle_dir(name).is_relative_to(tmp_path / "out")
    # a full run in the checkout writes deployment/models/<its own name>, beside the committed bundles
    full = course.start_lesson("07_deployment", profile="full", device="cpu")
    assert full.bundle_dir(name) == models / name


def build_cell_namespace(tmp_path, checkout, build_package_setting=None) -> dict:
    """What lesson 7's package cell reads, with the build tools replaced by ones that fail the test if called."""
    def must_not_run(*args, **kwargs):
        raise AssertionError("the package cell tried to build or look for a package")

    run = SimpleNamespace(profile=SimpleNamespace(sample=200), output_dir=tmp_path, where=str)
    return {"run": run, "BUILD_PACKAGE": build_package_setting, "checkout_root": lambda: checkout,
            "course_url": course.course_url, "missing_tools": must_not_run, "build_package": must_not_run,
            "lambda_python": must_not_run, "shared_package": lambda folder: None, "package_sizes": must_not_run,
            "json": json, "zipfile": zipfile}


def test_without_a_checkout_only_the_package_build_stops_and_says_why(tmp_path, capsys):
    """No cell stops the lesson; only the package cell needs the checkout, and outside one it says how to get
    it and builds nothing (everything else runs from the installed course: tests/test_outside_checkout.py)."""
    assert not any("SystemExit" in cell.source or "sys.exit" in cell.source for cell in code_cells())
    build_cell = cell_with("build_package(")
    assert [cell.get("id") for cell in code_cells() if "checkout_root()" in cell.source] == [build_cell.get("id")]
    namespace = build_cell_namespace(tmp_path, checkout=None, build_package_setting=True)
    exec(build_cell.source, namespace)
    printed = capsys.readouterr().out
    assert namespace["zip_path"] is None and namespace["sizes"] is None
    assert "built from the course's repository checkout" in printed
    assert f"git clone {course.course_url()}" in printed and "make setup && make deploy-deps" in printed
    namespace = build_cell_namespace(tmp_path, checkout=REPO_ROOT, build_package_setting=False)
    exec(build_cell.source, namespace)   # in a checkout, not building: looks for the test suite's package
    assert "no package from the test suite in this output folder" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------ events

def test_events_of_both_payload_formats():
    v2, v1 = http_event("POST", {"text": "Fine"}), http_event("POST", {"text": "Fine"}, version="1.0")
    assert (v2["version"], v2["requestContext"]["http"]["method"], json.loads(v2["body"])) == ("2.0", "POST",
                                                                                                  {"text": "Fine"})
    assert (v1["httpMethod"], json.loads(v1["body"])) == ("POST", {"text": "Fine"}) and "version" not in v1
    encoded = http_event("POST", "caf\u00e9", base64_body=True)
    assert encoded["isBase64Encoded"] is True and base64.b64decode(encoded["body"]).decode("utf-8") == "caf\u00e9"
    assert http_event("GET")["body"] is None
    with pytest.raises(ValueError, match="unknown payload format version '3.0': choose one of 2.0, 1.0"):
        http_event("GET", version="3.0")


# ----------------------------------------------------------------------------------------------- latency

def test_percentile_is_a_value_some_call_took():
    values = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert [percentile(values, q) for q in (0, 50, 100)] == [1.0, 3.0, 5.0]
    assert percentile(list(range(1, 101)), 99) == 99
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile(values, 101)


def test_time_calls_warms_up_then_times_each_call():
    calls = []
    times = time_calls(lambda: calls.append(1), n=7, warmup=3)
    assert len(calls) == 10 and len(times) == 7 and all(t >= 0 for t in times)
    summary = latency_summary([1.0, 2.0, 3.0, 10.0])
    assert summary == {"n": 4, "mean_ms": 4.0, "p50_ms": 3.0, "p90_ms": 10.0, "p99_ms": 10.0}
    with pytest.raises(ValueError, match="at least one call"):
        time_calls(lambda: None, n=0)
    with pytest.raises(ZeroDivisionError):   # a failing call ends the timing: no figure from broken calls
        time_calls(lambda: 1 / 0, n=3)


# --------------------------------------------------------------------------------------------- packaging

def test_package_sizes_count_unzipped_bytes_per_top_level_entry(tmp_path):
    path = tmp_path / "package.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("numpy/", "")
        archive.writestr("numpy/core.so", b"x" * 300)
        archive.writestr("numpy/linalg/la.so", b"y" * 200)
        archive.writestr("handler.py", b"z" * 100)
        archive.writestr("spacy/__init__.py", b"w" * 400)
    sizes = lambda_package.package_sizes(path, largest=2)
    assert sizes["zipped"] == path.stat().st_size and sizes["unzipped"] == 1000
    assert sizes["parts"] == [("numpy", 500), ("spacy", 400)]


def test_the_test_suites_package_is_found_only_where_it_leaves_it(tmp_path):
    assert lambda_package.shared_package(tmp_path) is None
    folder = lambda_package.shared_package_dir(tmp_path)
    folder.mkdir()
    (folder / lambda_package.PACKAGE_ZIP).write_bytes(b"PK")
    assert lambda_package.shared_package(tmp_path) == folder / lambda_package.PACKAGE_ZIP


def test_missing_tools_are_named(tmp_path, monkeypatch):
    monkeypatch.setattr(lambda_package.shutil, "which", lambda name: None)
    assert "Node.js (node and npx) is not installed" in lambda_package.missing_tools()
    monkeypatch.setattr(lambda_package.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(lambda_package, "DEPLOYMENT", tmp_path)
    assert "deployment/node_modules is missing: run `make deploy-deps`" in lambda_package.missing_tools()
    (tmp_path / "node_modules" / "serverless").mkdir(parents=True)
    (tmp_path / "node_modules" / "serverless" / "package.json").write_text("{}")
    monkeypatch.setattr(lambda_package, "lambda_python", lambda: None)
    assert "no python3.12 found" in lambda_package.missing_tools()
    monkeypatch.setattr(lambda_package, "lambda_python", lambda: "/usr/bin/python3.12")
    assert lambda_package.missing_tools() is None


def test_build_package_runs_the_pinned_serverless_and_reports_failures(tmp_path, monkeypatch):
    seen = {}

    def fake_run(command, cwd, env, **kwargs):
        seen.update(command=command, cwd=cwd, python=env["SLS_PYTHON_BIN"])
        if seen.get("fail"):
            return subprocess.CompletedProcess(command, 1, "Serverless Error: no credentials", "")
        if seen.get("write"):
            (tmp_path / lambda_package.PACKAGE_ZIP).write_bytes(b"PK")
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(lambda_package.subprocess, "run", fake_run)
    seen["write"] = True
    assert lambda_package.build_package("/usr/bin/python3.12", tmp_path) == tmp_path / lambda_package.PACKAGE_ZIP
    assert seen["command"] == ["npx", "--no-install", "serverless", "package", "--package", str(tmp_path)]
    assert (seen["cwd"], seen["python"]) == (lambda_package.DEPLOYMENT, "/usr/bin/python3.12")
    (tmp_path / lambda_package.PACKAGE_ZIP).unlink()
    seen["write"] = False
    with pytest.raises(RuntimeError, match="wrote no sentiment-tutorials-api.zip"):
        lambda_package.build_package("/usr/bin/python3.12", tmp_path)
    seen["fail"] = True
    with pytest.raises(RuntimeError, match="serverless package failed:\nServerless Error: no credentials"):
        lambda_package.build_package("/usr/bin/python3.12", tmp_path)
