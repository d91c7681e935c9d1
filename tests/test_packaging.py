"""The Lambda artifact: `serverless package` (Serverless Framework v3 + serverless-python-requirements,
no Docker), unzipped under the project's 150 MB goal (Lambda's limit is 250 MB), and the handler
working from the unzipped package alone, in a Python that sees nothing else (no torch, no venv)."""
from __future__ import annotations

import json
import os
import subprocess
import zipfile

import pytest

from deploy_support import COMMITTED_MODELS, committed_bundles_present
from deployment.lambda_package import (PACKAGE_ZIP, build_package, folder_bytes, lambda_python, missing_tools,
                                  shared_package_dir)
from helpers.files import atomic_path

LAMBDA_LIMIT_MB = 250
PACKAGE_GOAL_MB = 150


# `make test` runs the notebooks with the same output folder: the package built here is left in it, where
# lesson 7's smoke run finds it instead of building another (read now: each test's fixtures unset the variable)
SHARED_OUTPUT_DIR = os.environ.get("SENTIMENT_RESULTS_DIR") or None


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    """(unzipped package folder, zip path, python3.12, the folder serverless wrote): runs `npx serverless
    package` once, into `shared_package_dir($SENTIMENT_RESULTS_DIR)` when that is set, else a temporary folder."""
    missing = missing_tools()
    if missing:
        pytest.skip(f"cannot run serverless package: {missing} (.ci/run installs what is missing)")
    if not committed_bundles_present():
        pytest.fail(f"{COMMITTED_MODELS} has no sentiment / question-type bundles to package")
    python = lambda_python()
    out = tmp_path_factory.mktemp("sls")
    folder = shared_package_dir(SHARED_OUTPUT_DIR) if SHARED_OUTPUT_DIR else out / "artifact"
    with atomic_path(folder) as building:   # a reader never finds a half-written package
        build_package(python, building)
    artifact = folder / PACKAGE_ZIP
    unzipped = out / "unzipped"
    with zipfile.ZipFile(artifact) as archive:
        archive.extractall(unzipped)
    return unzipped, artifact, python, folder


def test_package_size_under_lambda_limit(package):
    unzipped, artifact, _, _ = package
    size_mb = folder_bytes(unzipped) / 1e6
    print(f"\nLambda package: {artifact.stat().st_size / 1e6:.1f} MB zipped, {size_mb:.1f} MB unzipped "
          f"(limit {LAMBDA_LIMIT_MB} MB, goal {PACKAGE_GOAL_MB} MB)")
    assert size_mb < LAMBDA_LIMIT_MB
    assert size_mb < PACKAGE_GOAL_MB, f"the unzipped package is {size_mb:.1f} MB, the goal {PACKAGE_GOAL_MB} MB"


def test_package_contents(package):
    unzipped, _, _, _ = package
    top = {path.name for path in unzipped.iterdir()}
    assert {"handler.py", "helpers", "models", "onnxruntime", "numpy", "spacy"} <= top
    assert not {"torch", "boto3", "botocore", "node_modules", "website", "tests", "notebooks"} & top
    assert sorted(p.name for p in (unzipped / "helpers").iterdir()) == ["__init__.py", "bundle.py", "encoding.py",
                                                                         "files.py", "text.py"]
    assert sorted(p.name for p in (unzipped / "models").iterdir()) == ["question-type", "sentiment"]
    for name in ("sentiment", "question-type"):
        meta = json.loads((unzipped / "models" / name / "meta.json").read_text())
        assert meta["name"] == name
    # the numpy.libs the requirements plugin's own strip would corrupt are intact, and .pyc are hash-based
    assert any((unzipped / "numpy.libs").iterdir())
    pyc = next((unzipped / "spacy" / "__pycache__").glob("__init__.cpython-312.pyc"))
    assert int.from_bytes(pyc.read_bytes()[4:8], "little") & 0b1, "spaCy's .pyc is not hash-based"
    assert not list(unzipped.glob("*.dist-info"))
    # trimmed by plugins/optimize-requirements.js (serverless.yml: custom.optimizeRequirements.exclude)
    assert not list((unzipped / "onnxruntime" / "capi").glob("libonnxruntime.so*"))
    assert not list((unzipped / "blis").glob("py.*.so")) and (unzipped / "blis" / "py.py").is_file()
    assert sorted(p.name for p in (unzipped / "spacy" / "lang").iterdir() if p.is_dir() and p.name != "__pycache__") \
        == ["en", "ja", "ko", "th", "vi", "xx", "zh"]
    assert not {"google", "tests"} & top and not list(unzipped.glob("*/tests"))
    # .pyc only for what the handler imports: spaCy's English rules yes, numpy.ma (never imported) no
    assert list((unzipped / "spacy" / "lang" / "en" / "__pycache__").glob("tokenizer_exceptions.*.pyc"))
    assert not list((unzipped / "numpy" / "ma").rglob("*.pyc"))


def test_cloudformation_template(package):
    _, _, _, folder = package
    template = json.loads((folder / "cloudformation-template-update-stack.json").read_text())
    resources = template["Resources"]
    functions = {r["Properties"]["Handler"]: r["Properties"] for r in resources.values()
                 if r["Type"] == "AWS::Lambda::Function"}
    assert set(functions) == {"handler.sentiment", "handler.question_type"}
    for properties in functions.values():
        assert properties["Runtime"] == "python3.12"
        assert properties["MemorySize"] == 1024 and properties["Timeout"] == 10
    routes = sorted(r["Properties"]["RouteKey"] for r in resources.values() if r["Type"] == "AWS::ApiGatewayV2::Route")
    assert routes == ["GET /question-type", "GET /sentiment", "POST /question-type", "POST /sentiment"]
    api = next(r for r in resources.values() if r["Type"] == "AWS::ApiGatewayV2::Api")
    assert api["Properties"]["CorsConfiguration"]["AllowOrigins"] == ["*"]
    role = next(r for r in resources.values() if r["Type"] == "AWS::IAM::Role")
    statements = [statement for policy in role["Properties"]["Policies"]
                  for statement in policy["PolicyDocument"]["Statement"]]
    s3 = [statement for statement in statements if any(str(action).startswith("s3:")
                                                       for action in statement["Action"])]
    assert len(s3) == 1 and s3[0]["Action"] == ["s3:GetObject"] and s3[0]["Effect"] == "Allow"
    resources_s3 = json.dumps(s3[0]["Resource"])
    assert "/sentiment/*" in resources_s3 and "/question-type/*" in resources_s3 and '"*"' not in resources_s3


# What the access log may record: the request's route, status and timing, never what was sent
ACCESS_LOG_VARIABLES = {"$context.requestId", "$context.identity.sourceIp", "$context.requestTime",
                        "$context.httpMethod", "$context.routeKey", "$context.status", "$context.protocol",
                        "$context.responseLength", "$context.integrationLatency", "$context.integrationStatus",
                        "$context.error.message"}


def test_throttling_and_access_logs(package):
    """serverless.yml's throttling in the template: reserved concurrency on each function (param
    reservedConcurrency), the HTTP API stage's rate and burst (params throttleRate, throttleBurst; a resources
    extension of HttpApiStage), and API Gateway's access log, whose format names only $context variables
    (an access log cannot hold a body; none of these is the request's content)."""
    _, _, _, folder = package
    resources = json.loads((folder / "cloudformation-template-update-stack.json").read_text())["Resources"]
    functions = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::Function"]
    assert len(functions) == 2 and all(f["ReservedConcurrentExecutions"] == 5 for f in functions)
    stage = resources["HttpApiStage"]
    assert stage["Type"] == "AWS::ApiGatewayV2::Stage" and stage["Properties"]["StageName"] == "$default"
    assert stage["Properties"]["DefaultRouteSettings"] == {"DetailedMetricsEnabled": False,
                                                           "ThrottlingRateLimit": 10, "ThrottlingBurstLimit": 20}
    logs = stage["Properties"]["AccessLogSettings"]
    assert logs["DestinationArn"] == {"Fn::GetAtt": ["HttpApiLogGroup", "Arn"]}
    fields = json.loads(logs["Format"])
    assert set(fields.values()) == ACCESS_LOG_VARIABLES and fields["status"] == "$context.status"
    assert "body" not in logs["Format"].lower() and "$input" not in logs["Format"] and "$request" not in logs["Format"]
    group = resources["HttpApiLogGroup"]
    assert group["Type"] == "AWS::Logs::LogGroup" and group["Properties"]["RetentionInDays"] == 14


HANDLER_CHECK = r"""
import json, sys, time
start = time.perf_counter()
import handler
def v2(method, body=None):
    return {"version": "2.0", "requestContext": {"http": {"method": method}}, "body": body, "isBase64Encoded": False}
def v1(method, body=None):
    return {"httpMethod": method, "body": body, "isBase64Encoded": False}
results = {}
for name, function in (("sentiment", handler.sentiment), ("question-type", handler.question_type)):
    for make in (v2, v1):
        ok = function(make("POST", json.dumps({"text": "Awful!" if name == "sentiment" else "Who won?"})), None)
        assert ok["statusCode"] == 200, ok
        assert json.loads(ok["body"])["model"] == name
        bad = function(make("POST", "{oops"), None)
        assert bad["statusCode"] == 400 and "error" in json.loads(bad["body"]), bad
        health = function(make("GET"), None)
        assert health["statusCode"] == 200, health
    results[name] = json.loads(ok["body"])["prediction"]["label"]
    for text in ("This film is great", "Great"):  # a sentence and a one-word input
        answer = function(v2("POST", json.dumps({"text": text})), None)
        assert answer["statusCode"] == 200, answer
        label = json.loads(answer["body"])["prediction"]["label"]
        assert label in json.loads(function(v2("GET"), None)["body"])["model"]["labels"], label
        results[f"{name}: {text}"] = label
forbidden = [m for m in ("torch", "boto3", "pip") if m in sys.modules]
outside = sorted({getattr(m, "__file__", None) or "" for m in list(sys.modules.values())} - {""})
outside = [f for f in outside if not f.startswith(PACKAGE) and not f.startswith(sys.base_prefix)]
print(json.dumps({"labels": results, "forbidden": forbidden, "outside": outside[:5],
                  "seconds": time.perf_counter() - start}))
"""


def test_handler_runs_from_the_unzipped_package_alone(package):
    unzipped, _, python, _ = package
    # -I: isolated (no PYTHONPATH, no user site), -S: no site-packages; sys.path = the package + the stdlib
    code = (f"import sys; PACKAGE = {str(unzipped)!r}; "
            "sys.path[:] = [PACKAGE] + [p for p in sys.path if p and 'site-packages' not in p]\n" + HANDLER_CHECK)
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8"}
    result = subprocess.run([python, "-I", "-S", "-B", "-c", code], cwd=unzipped, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["forbidden"] == [] and report["outside"] == []
    assert report["labels"]["sentiment"] in ("positive", "negative")
    assert report["labels"]["sentiment: This film is great"] in ("positive", "negative")
    assert report["labels"]["sentiment: Great"] in ("positive", "negative")
    assert {"question-type: This film is great", "question-type: Great"} <= set(report["labels"])
    print(f"\nhandler from the unzipped package: {report}")
