"""Lesson 7 (notebooks/07_deployment.ipynb): where it writes its bundle, what it says without a checkout, and the
deployment code it calls: deployment/events.py, deployment/latency.py and deployment/lambda_package.py."""
from __future__ import annotations

import ast
import base64
import json
import subprocess
import zipfile

import nbformat
import pytest

from conftest import REPO_ROOT
from deploy_support import BUNDLE_NAMES
from deployment import lambda_package
from deployment.events import http_event
from deployment.latency import latency_summary, percentile, time_calls
from helpers import course
from helpers.results import COURSE_URL
from test_course import fake_checkout, no_course_env, torch_state  # noqa: F401 (fixtures: a checkout in tmp_path)

NOTEBOOK = REPO_ROOT / "notebooks" / "07_deployment.ipynb"


def code_cells() -> list:
    return [cell for cell in nbformat.read(NOTEBOOK, as_version=4).cells if cell.cell_type == "code"]


def notebook_parameters() -> dict:
    """The values the parameters cell assigns (literals only)."""
    cell = next(cell for cell in code_cells() if "parameters" in cell.metadata.get("tags", []))
    return {node.targets[0].id: ast.literal_eval(node.value) for node in ast.parse(cell.source).body
            if isinstance(node, ast.Assign)}


# ------------------------------------------------------------------------------- where the lesson writes

def test_the_lesson_exports_once_under_its_own_name():
    name = notebook_parameters()["BUNDLE_NAME"]
    assert name not in BUNDLE_NAMES   # the names lessons 3-5 export, which deployment/models commits
    exports = [cell.source for cell in code_cells() if "export_result(" in cell.source]
    assert len(exports) == 1 and "run.export_result(dict(name=BUNDLE_NAME," in exports[0]
    assert not any("export=" in cell.source for cell in code_cells() if "run.record(" in cell.source)


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


def test_opened_without_a_checkout_the_lesson_says_how_to_get_one(monkeypatch):
    cell = next(cell for cell in code_cells() if "checkout_root()" in cell.source)
    monkeypatch.setattr(course, "checkout_root", lambda: None)
    with pytest.raises(SystemExit) as stopped:
        exec(cell.source, {})
    message = str(stopped.value)
    assert "needs the course's repository checkout" in message and f"git clone {COURSE_URL}" in message
    monkeypatch.setattr(course, "checkout_root", lambda: REPO_ROOT)
    exec(cell.source, {})   # in the checkout: no exception


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
