"""The Lambda handlers: both API Gateway payload formats, predictions, health, and every kind of bad input."""
from __future__ import annotations

import base64
import json
import shutil
import sys
import types

import numpy as np
import pytest

from deploy_support import bundles_for_tests, http_event

pytest.importorskip("onnxruntime")
FORMATS = ["2.0", "1.0"]
CORS = "Access-Control-Allow-Origin"


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    return bundles_for_tests(tmp_path_factory.mktemp("bundles"))


@pytest.fixture
def handler(models_dir, monkeypatch):
    from deployment import handler

    monkeypatch.setenv("MODELS_DIR", str(models_dir))
    for name in ("MODEL_S3_URI", "SENTIMENT_MODEL", "QUESTION_TYPE_MODEL", "CORS_ALLOW_ORIGIN"):
        monkeypatch.delenv(name, raising=False)
    saved = dict(handler._models)
    handler._models.clear()
    yield handler
    handler._models.clear()
    handler._models.update(saved)


def body_of(result) -> dict:
    assert result["headers"][CORS] == "*", "CORS header missing"
    assert result["isBase64Encoded"] is False
    return json.loads(result["body"])


def assert_client_error(result, status=None, fragment=None):
    assert 400 <= result["statusCode"] < 500, result
    if status:
        assert result["statusCode"] == status, result
    payload = body_of(result)
    assert set(payload) == {"error"} and isinstance(payload["error"], str) and payload["error"]
    assert "Traceback" not in result["body"] and 'File "' not in result["body"]
    if fragment:
        assert fragment in payload["error"], payload["error"]
    return payload["error"]


@pytest.mark.parametrize("version", FORMATS)
@pytest.mark.parametrize("base64_body", [False, True])
def test_sentiment_single_text(handler, version, base64_body):
    result = handler.sentiment(http_event("POST", {"text": "This film is great, I loved every minute."},
                                          version, base64_body), None)
    assert result["statusCode"] == 200
    payload = body_of(result)
    assert payload["model"] == "sentiment" and payload["task"] == "sentiment" and payload["version"]
    prediction = payload["prediction"]
    assert payload["predictions"] == [prediction]
    assert prediction["label"] in ("positive", "negative")
    assert set(prediction["probabilities"]) == {"positive", "negative"}
    assert sum(prediction["probabilities"].values()) == pytest.approx(1, abs=1e-5)
    assert prediction["probability"] == max(prediction["probabilities"].values())
    assert result["headers"]["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("version", FORMATS)
def test_question_type_batch(handler, version):
    questions = ["Who invented the telephone?", "How far is it to the Moon?", "What does NASA stand for?"]
    result = handler.question_type(http_event("POST", {"texts": questions}, version, path="/question-type"), None)
    assert result["statusCode"] == 200
    payload = body_of(result)
    assert payload["task"] == "question-type" and "prediction" not in payload
    assert len(payload["predictions"]) == 3
    labels = {"ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"}
    for prediction in payload["predictions"]:
        assert prediction["label"] in labels and set(prediction["probabilities"]) == labels
        assert sum(prediction["probabilities"].values()) == pytest.approx(1, abs=1e-5)


@pytest.mark.parametrize("version", FORMATS)
def test_get_is_health_with_metadata(handler, version):
    for function, name in ((handler.sentiment, "sentiment"), (handler.question_type, "question-type")):
        result = function(http_event("GET", None, version), None)
        assert result["statusCode"] == 200
        payload = body_of(result)
        assert payload["status"] == "ok"
        model = payload["model"]
        assert model["name"] == name and model["version"] and model["labels"] and "test_accuracy" in model
        assert payload["limits"] == {"max_texts": 64, "max_text_chars": 20_000, "max_body_bytes": 1_000_000}


@pytest.mark.parametrize("version", FORMATS)
def test_options_preflight(handler, version):
    result = handler.sentiment(http_event("OPTIONS", None, version), None)
    assert result["statusCode"] == 204 and result["headers"][CORS] == "*"
    assert "POST" in result["headers"]["Access-Control-Allow-Methods"]


@pytest.mark.parametrize("model", ["sentiment", "sentiment-cnn"])
@pytest.mark.parametrize("text", ["Awful!", "ok", "a", "zxqvbnmplk", "Flibbertigibbet snorkelwhacker",
                                  "😀", "<br />", "!!!", "The", "ñandú über straße"])
def test_unknown_and_one_word_inputs_just_work(handler, monkeypatch, model, text):
    monkeypatch.setenv("SENTIMENT_MODEL", model)
    result = handler.sentiment(http_event("POST", {"text": text}), None)
    assert result["statusCode"] == 200, result["body"]
    assert body_of(result)["model"] == model


def test_a_full_batch_of_64_mixed_lengths(handler):
    texts = ["Great."] * 32 + ["A long and winding review that goes on and on. " * 40] * 32
    result = handler.sentiment(http_event("POST", {"texts": texts}), None)
    assert result["statusCode"] == 200 and len(body_of(result)["predictions"]) == 64


def test_batch_and_single_agree(handler):
    texts = ["This film is great", "Terrible acting and a boring plot", "Awful!"]
    batch = body_of(handler.sentiment(http_event("POST", {"texts": texts}), None))["predictions"]
    for text, expected in zip(texts, batch):
        single = body_of(handler.sentiment(http_event("POST", {"text": text}), None))["prediction"]
        assert single["probabilities"]["positive"] == pytest.approx(expected["probabilities"]["positive"], abs=1e-5)


LONG = "x" * 20_001
BAD_BODIES = [
    # (body as sent, expected status, fragment of the message)
    (None, 400, "empty"),
    ("", 400, "empty"),
    ("   \n", 400, "empty"),
    ("{not json", 400, "not valid JSON"),
    ("{\"text\": \"unterminated", 400, "not valid JSON"),
    ("[\"a list\"]", 400, "must be an object"),
    ("\"just a string\"", 400, "must be an object"),
    ("42", 400, "must be an object"),
    ("null", 400, "must be an object"),
    ("{}", 400, "missing \"text\""),
    ("{\"review\": \"typo in the key\"}", 400, "missing \"text\""),
    ("{\"text\": 42}", 400, "\"text\" must be a string"),
    ("{\"text\": null}", 400, "\"text\" must be a string"),
    ("{\"text\": [\"a\"]}", 400, "\"text\" must be a string"),
    ("{\"text\": {\"a\": 1}}", 400, "\"text\" must be a string"),
    ("{\"text\": true}", 400, "\"text\" must be a string"),
    ("{\"text\": \"\"}", 400, "empty or only whitespace"),
    ("{\"text\": \"   \\n\\t \"}", 400, "empty or only whitespace"),
    ("{\"texts\": \"not a list\"}", 400, "\"texts\" must be a list"),
    ("{\"texts\": []}", 400, "empty list"),
    ("{\"texts\": [\"fine\", 3]}", 400, "\"texts[1]\" must be a string"),
    ("{\"texts\": [\"fine\", \" \"]}", 400, "\"texts[1]\" is empty"),
    ("{\"text\": \"a\", \"texts\": [\"b\"]}", 400, "not both"),
    (json.dumps({"texts": ["ok"] * 65}), 413, "limit is 64"),
    (json.dumps({"text": LONG}), 413, "limit is 20,000"),
    (json.dumps({"texts": ["ok", LONG]}), 413, "texts[1]"),
    (json.dumps({"text": "y" * 1_000_001}), 413, "larger than 1,000,000 bytes"),
]


@pytest.mark.parametrize("version", FORMATS)
@pytest.mark.parametrize("base64_body", [False, True])
@pytest.mark.parametrize("body,status,fragment", BAD_BODIES, ids=[f"bad{i}" for i in range(len(BAD_BODIES))])
def test_bad_bodies_get_a_4xx_json_error(handler, version, base64_body, body, status, fragment):
    for function in (handler.sentiment, handler.question_type):
        result = function(http_event("POST", body, version, base64_body), None)
        assert_client_error(result, status, fragment)


@pytest.mark.parametrize("version", FORMATS)
@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "HEAD"])
def test_wrong_method(handler, version, method):
    result = handler.sentiment(http_event(method, {"text": "hello"}, version), None)
    assert_client_error(result, 405, method)
    assert "POST" in result["headers"]["Allow"]


@pytest.mark.parametrize("version", FORMATS)
def test_invalid_base64_and_invalid_utf8(handler, version):
    event = http_event("POST", "{\"text\": \"hi\"}", version)
    event["body"], event["isBase64Encoded"] = "!!!not base64!!!", True
    assert_client_error(handler.sentiment(event, None), 400, "base64")
    event["body"] = base64.b64encode(b"{\"text\": \"\xff\xfe\"}").decode()
    assert_client_error(handler.sentiment(event, None), 400, "UTF-8")


@pytest.mark.parametrize("event", [None, [], "a string", {}, {"text": "direct invocation"},
                                   {"requestContext": "odd", "httpMethod": 5}])
def test_events_that_are_not_from_api_gateway(handler, event):
    assert_client_error(handler.sentiment(event, None), 400, "API Gateway")


def test_deeply_nested_json(handler):
    assert_client_error(handler.sentiment(http_event("POST", "[" * 100_000 + "]" * 100_000), None), 400)


def test_unexpected_error_is_a_json_500_without_trace(handler, monkeypatch):
    model = handler.get_model("sentiment")
    monkeypatch.setattr(model, "predict", lambda texts: 1 / 0)
    result = handler.sentiment(http_event("POST", {"text": "fine"}), None)
    assert result["statusCode"] == 500 and result["headers"][CORS] == "*"
    assert "ZeroDivisionError" not in result["body"] and "Traceback" not in result["body"]


def test_bundle_is_loaded_once(handler):
    first = handler.get_model("sentiment")
    handler.sentiment(http_event("POST", {"text": "hello"}), None)
    assert handler.get_model("sentiment") is first


def test_tampered_bundle_is_refused(handler, models_dir, tmp_path, monkeypatch):
    copy = tmp_path / "models"
    shutil.copytree(models_dir / "sentiment", copy / "sentiment")
    with open(copy / "sentiment" / "model.onnx", "ab") as handle:
        handle.write(b"\0")
    monkeypatch.setenv("MODELS_DIR", str(copy))
    result = handler.sentiment(http_event("POST", {"text": "hello"}), None)
    assert result["statusCode"] == 503 and "not available" in body_of(result)["error"]
    assert "sha256" not in result["body"]  # details go to the log, not to the client
    # bad input is still reported as such, even when the model is broken
    assert_client_error(handler.sentiment(http_event("POST", {"text": ""}), None), 400)


def test_missing_bundle_is_a_503(handler, tmp_path, monkeypatch):
    monkeypatch.setenv("MODELS_DIR", str(tmp_path / "nothing"))
    result = handler.question_type(http_event("GET"), None)
    assert result["statusCode"] == 503 and body_of(result)["error"]


def test_bundle_from_s3(handler, models_dir, tmp_path, monkeypatch):
    """MODEL_S3_URI: the bundle is copied from S3 into the cache folder, checked, and used."""
    calls = []

    class FakeS3:
        def download_file(self, bucket, key, filename):
            calls.append((bucket, key))
            assert bucket == "my-bucket" and key.startswith("models/sentiment/")
            shutil.copyfile(models_dir / "sentiment" / key.rsplit("/", 1)[1], filename)

    monkeypatch.setitem(sys.modules, "boto3", types.SimpleNamespace(client=lambda service: FakeS3()))
    monkeypatch.setenv("MODEL_S3_URI", "s3://my-bucket/models/sentiment/")
    monkeypatch.setenv("MODEL_CACHE_DIR", str(tmp_path / "cache"))
    result = handler.sentiment(http_event("POST", {"text": "A fine film"}), None)
    assert result["statusCode"] == 200
    assert calls[0] == ("my-bucket", "models/sentiment/meta.json") and len(calls) == 4
    assert (tmp_path / "cache" / "sentiment" / "model.onnx").is_file()


def test_s3_uri_without_bucket_means_the_packaged_bundle(handler, monkeypatch):
    monkeypatch.setenv("MODEL_S3_URI", "s3:///models/sentiment")  # serverless.yml with modelBucket unset
    assert handler.sentiment(http_event("POST", {"text": "A fine film"}), None)["statusCode"] == 200


def test_handler_encoding_matches_training(handler):
    """The handler's NumPy encoding is helpers.training.encode_texts: same ids, same lengths."""
    from helpers.training import encode_texts

    texts = ["This film is great", "Awful!", "An unknownword-ish review <br /> with a break", "a"]
    for name in ("sentiment", "sentiment-cnn", "question-type"):
        model = handler.get_model(name)
        ids, lengths = model.encode(texts)
        expected_ids, expected_lengths = encode_texts(texts, model.tokenizer, model.vocab, bigrams=model.bigrams,
                                                      min_length=model.min_length)
        np.testing.assert_array_equal(ids, expected_ids.numpy())
        np.testing.assert_array_equal(lengths, expected_lengths.numpy())


def test_handler_imports_no_torch():
    import subprocess

    from deploy_support import REPO_ROOT

    code = ("import sys, json; sys.modules['torch'] = None\n"  # importing torch would now fail
            "from deployment import handler\n"
            "r = handler.sentiment({'httpMethod': 'POST', 'body': json.dumps({'text': 'Great film'})}, None)\n"
            "assert r['statusCode'] in (200, 503), r\n"
            "print(r['statusCode'])")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
