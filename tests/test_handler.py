"""The Lambda handlers: both API Gateway payload formats, predictions, health, and every kind of bad input."""
from __future__ import annotations

import base64
import json
import re
import shutil
import sys
import types
from pathlib import Path

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
        assert payload["limits"] == {"max_texts": 64, "max_text_chars": 20_000, "max_body_bytes": 1_000_000,
                                     "max_tokens_per_text": 3000, "longer_texts": "truncated"}


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


HUGE_INT = "1" * 5000  # Python refuses to turn more than 4,300 digits into an int: json.loads raises ValueError
HOSTILE_BODIES = [
    # (body as sent, expected status, fragment of the message): what an adversarial client tried
    ('{"text": "fine", "n": ' + HUGE_INT + "}", 400, "too many digits"),
    ('{"text": ' + HUGE_INT + "}", 400, "too many digits"),
    ('{"texts": [[[-' + HUGE_INT + "]]]}", 400, "too many digits"),
    ('{"text": "a \\ud800 b"}', 400, "unpaired surrogate"),
    ('{"texts": ["fine", "\\udfff"]}', 400, "texts[1]"),
    ('{"text": "\\ude00\\ud83d reversed pair"}', 400, "unpaired surrogate"),
    ('{"text": "fine", "x": NaN}', 400, "NaN is not a JSON number"),
    ('{"text": "fine", "x": [-Infinity]}', 400, "-Infinity"),
    ('{"text": Infinity}', 400, "Infinity"),
    ('{"text": "a", "text": "b"}', 400, 'key "text" twice'),
    ('{"texts": ["a"], "extra": {"k": 1, "k": 2}}', 400, 'key "k" twice'),
    ('{"a":' * 100_000 + "1" + "}" * 100_000, 400, "nested too deeply"),
    ('{"text": "fine", "deep": ' + "[" * 100_000 + "]" * 100_000 + "}", 400, "nested too deeply"),
    ('\ufeff{"text": "a byte order mark first"}', 400, "not valid JSON"),
    ('{"text": "fine"} trailing', 400, "not valid JSON"),
    ('{"text": "fine"}{"text": "again"}', 400, "not valid JSON"),
    ('{"text": "fine",}', 400, "not valid JSON"),
    ("{'text': 'single quotes'}", 400, "not valid JSON"),
    ('{"texts": ' + json.dumps(["ok"] * 10_000) + "}", 413, "limit is 64"),
    ('{"texts": [' + '"x", ' * 64 + "null]}", 413, "limit is 64"),
    ('{"texts": {"0": "a dict"}}', 400, '"texts" must be a list'),
    ('{"text": 1e999}', 400, '"text" must be a string'),
    (json.dumps({"text": "é" * 600_000}, ensure_ascii=False), 413, "larger than 1,000,000 bytes"),  # 1.2 MB, 0.6 M chars
    (json.dumps({"text": "fine", "padding": " " * 1_000_000}), 413, "larger than 1,000,000 bytes"),
    (json.dumps({"texts": ["ok"] * 63 + ["😀" * 20_001]}, ensure_ascii=False), 413, "texts[63]"),
]


@pytest.mark.parametrize("version", FORMATS)
@pytest.mark.parametrize("body,status,fragment", HOSTILE_BODIES, ids=[f"hostile{i}" for i in range(len(HOSTILE_BODIES))])
def test_hostile_bodies_get_a_4xx_json_error(handler, version, body, status, fragment):
    """Every client error, however odd, is a 4xx with the handler's JSON error and CORS headers, from both handlers."""
    for function in (handler.sentiment, handler.question_type):
        for base64_body in (False, True):
            assert_client_error(function(http_event("POST", body, version, base64_body), None), status, fragment)


@pytest.mark.parametrize("body,fragment", [
    ('{"text": "a lone surrogate \ud800 in the raw body"}', "UTF-8"),   # not JSON-escaped: not valid UTF-8
    (b'{"text": "bytes"}', "must be a string"),
    ({"text": "a dict"}, "must be a string"),
    (12, "must be a string"),
])
def test_bodies_that_are_not_text(handler, body, fragment):
    for function in (handler.sentiment, handler.question_type):
        event = http_event("POST", None)
        event["body"] = body
        assert_client_error(function(event, None), 400, fragment)


def test_base64_flag_that_is_not_a_boolean(handler):
    event = http_event("POST", {"text": "fine"})
    event["isBase64Encoded"] = "yes"  # truthy: the body is then read as base64, which it is not
    assert_client_error(handler.sentiment(event, None), 400, "base64")


ODD_BUT_VALID_TEXTS = ["\u0000", "a\u0000b", "\u200b", "\ufeffA byte order mark", "\u202eevil reversed",
                       "e\u0301" * 5000, "👩‍👩‍👧‍👦" * 1500, "!" * 20_000, "😀" * 20_000, "$" * 20_000, "a," * 10_000,
                       " a" * 10_000, "<br />" * 3000, "http://" + "a" * 19_990, "1" * 20_000, "a" * 20_000,
                       "\ud83d\ude00 a proper pair", "\t\n\r word \x0b\x0c", "\U0010ffff" * 100, "中文" * 5000]


@pytest.mark.parametrize("text", ODD_BUT_VALID_TEXTS, ids=[f"odd{i}" for i in range(len(ODD_BUT_VALID_TEXTS))])
def test_odd_but_valid_texts_are_answered(handler, text):
    """Any valid Unicode text within the limits gets a prediction, from both handlers."""
    for function in (handler.sentiment, handler.question_type):
        result = function(http_event("POST", {"text": text}), None)
        assert result["statusCode"] == 200, result["body"][:300]
        assert len(body_of(result)["predictions"]) == 1


def test_texts_over_the_token_cap_are_truncated(handler):
    """A text gives at most `max_tokens_per_text` tokens (GET says so): a longer text is predicted from its
    first tokens, exactly as that shorter text is."""
    cap = body_of(handler.sentiment(http_event("GET"), None))["limits"]["max_tokens_per_text"]
    head, tail = "good . " * (cap // 2), "awful . " * 1000  # 3,000 tokens, then 2,000 more: 18,500 characters
    for function in (handler.sentiment, handler.question_type):
        long, short = (body_of(function(http_event("POST", {"text": head + tail}), None))["prediction"],
                       body_of(function(http_event("POST", {"text": head}), None))["prediction"])
        assert long == short
    model = handler.get_model("sentiment")
    tokenizer = model.encoding.tokenizer
    assert tokenizer.max_tokens == cap and len(tokenizer(head + tail)) == cap


def test_sub_batches_cover_every_row_once_within_the_budget():
    from deployment.handler import sub_batches

    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 3000, size=64)
    lengths[:3] = [5000, 1, 2]
    for max_ids, min_length in ((16_384, 1), (4000, 4), (1, 1)):
        groups = sub_batches(lengths, min_length, max_ids)
        assert sorted(np.concatenate(groups).tolist()) == list(range(64))
        for rows in groups:
            assert len(rows) == 1 or len(rows) * max(lengths[rows].max(), min_length) <= max_ids
    assert len(sub_batches(np.array([3, 1, 2]), 1, 100)) == 1


@pytest.mark.parametrize("name", ["sentiment", "sentiment-cnn", "question-type"])
def test_split_batch_equals_the_unsplit_run(handler, monkeypatch, name):
    """Sub-batching bounds memory without changing an answer: the logits equal one run over the whole batch, to
    float32 rounding (ONNX Runtime sums in an order that depends on the shape: up to 1e-5 relative for FastText's
    average, 1e-6 for the CNNs, as for a text sent alone or in any batch)."""
    texts = ["Great.", "a", "Terrible acting and a boring plot. " * 60, "What is the capital of France?",
             "An ok film, " * 400, "!" * 500] * 10
    model = handler.get_model(name)
    ids, lengths = model.encoding.encode(texts)
    whole = model.session.run(["logits"], {"ids": ids, "lengths": lengths})[0]
    session, runs = model.session, []

    class CountingSession:
        def run(self, outputs, inputs):
            runs.append(inputs["ids"].shape)
            return session.run(outputs, inputs)

    monkeypatch.setattr(handler, "MAX_IDS_PER_RUN", 2000)
    monkeypatch.setattr(model, "session", CountingSession())
    np.testing.assert_allclose(model.logits(texts), whole, rtol=1e-5, atol=1e-6)
    assert len(runs) > 5 and all(rows == 1 or rows * width <= 2000 for rows, width in runs)


def test_spacy_string_table_is_bounded(handler, monkeypatch):
    """spaCy remembers every new word; past MAX_TOKENIZER_STRINGS the tokenizer starts afresh, same answers."""
    model = handler.get_model("sentiment")
    monkeypatch.setattr(handler, "MAX_TOKENIZER_STRINGS", 5000)
    texts = [" ".join(f"w{i}x{j}" for j in range(2000)) for i in range(2)] + ["A fine film"]  # 4,000 new words
    before = model.encoding.tokenizer._tokenizer()
    first = body_of(handler.sentiment(http_event("POST", {"texts": texts}), None))["predictions"]
    assert model.encoding.tokenizer._tokenizer() is not before
    assert model.encoding.tokenizer.known_strings < 5000
    assert body_of(handler.sentiment(http_event("POST", {"texts": texts}), None))["predictions"] == first


@pytest.mark.parametrize("function", ["sentiment", "question_type"])
def test_heaviest_requests_have_bounded_memory(models_dir, function):
    """The requests within the limits that cost the most memory (deploy_support.heavy_requests: 64 texts of
    15,620 one-character tokens; three requests of 64 texts of distinct new words, the most ids per text; 64
    texts of symbol chunks; 64 texts of chunks of a word and 76 affixes) answer 200 with the process's peak RSS
    under 700 MB, measured in a fresh Python (VmHWM). Their times, and those of the other heavy requests, are in
    benchmarks/bench_hostile.py."""
    from deploy_support import heavy_requests, probe_requests

    cases = ["a_comma_64", "distinct_words_x3", "symbol_chunks_64", "affix_chunks_64"]
    report = probe_requests(function, heavy_requests(cases), models_dir)
    print(f"\n{function}: peak RSS {report['baseline_rss_mb']:.0f} MB after loading, then "
          + ", ".join(f"{case} {r['peak_rss_mb']:.0f} MB" for case, r in report["cases"].items()))
    for case, result in report["cases"].items():
        assert set(result["statuses"]) == {200}, (case, result)
        assert result["peak_rss_mb"] < 700, (case, result)


def test_the_longest_real_reviews_are_never_refused(handler, real_data_dir):
    """The 64 longest IMDb test reviews (5,800 to 13,000 characters, 412 KB) in one request: a 200 from both
    functions, one prediction each. The API's limits refuse hostile requests, never real text."""
    from deploy_support import heavy_requests

    body, = heavy_requests(["imdb_longest_64"], data_dir=real_data_dir)["imdb_longest_64"]
    assert len(json.loads(body)["texts"]) == 64
    for function in (handler.sentiment, handler.question_type):
        result = function(http_event("POST", body), None)
        assert result["statusCode"] == 200, result["body"][:300]
        assert len(body_of(result)["predictions"]) == 64


def test_unexpected_error_is_a_json_500_without_trace(handler, monkeypatch):
    model = handler.get_model("sentiment")
    monkeypatch.setattr(model, "predict", lambda texts: 1 / 0)
    result = handler.sentiment(http_event("POST", {"text": "fine"}), None)
    assert result["statusCode"] == 500 and result["headers"][CORS] == "*"
    assert "ZeroDivisionError" not in result["body"] and "Traceback" not in result["body"]


def test_the_logs_never_hold_a_clients_text(handler, monkeypatch, caplog):
    """Whatever happens to a request (an answer, a refusal, a model that cannot load, a bug whose message quotes
    the text), the handler's log never records the texts sent; a bug is logged as its type and place."""
    import logging

    secret = "my-private-review-text-4711"
    caplog.set_level(logging.DEBUG)
    for body in ({"text": f"A film. {secret}"}, {"texts": ["ok", secret * 100]}, '{"text": "' + secret + '",}',
                 {"text": secret * 3000}, {"txt": secret}, {"text": secret, "text2": [secret] * 100}):
        for function in (handler.sentiment, handler.question_type):
            function(http_event("POST", body), None)
    model = handler.get_model("sentiment")

    def failing_predict(texts):
        raise ValueError(f"cannot predict {texts}")

    monkeypatch.setattr(model, "predict", failing_predict)
    assert handler.sentiment(http_event("POST", {"text": secret}), None)["statusCode"] == 500
    assert "unexpected error ValueError (message not logged)" in caplog.text and "in failing_predict" in caplog.text
    monkeypatch.setenv("MODELS_DIR", "/nonexistent")
    handler._models.clear()
    assert handler.sentiment(http_event("POST", {"text": secret}), None)["statusCode"] == 503
    assert caplog.records and secret not in caplog.text


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


@pytest.fixture
def bundle_copy(models_dir, tmp_path):
    """A copy of the sentiment bundle in tmp_path/models/sentiment, to tamper with."""
    folder = tmp_path / "models" / "sentiment"
    shutil.copytree(models_dir / "sentiment", folder)
    return folder


def edit_meta(folder, edit) -> None:
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    edit(meta)
    (folder / "meta.json").write_text(json.dumps(meta), encoding="utf-8")


ZEROS = "0" * 64
META_REFUSALS = [
    # (id, change to meta.json, fragment of the error)
    ("files-empty", lambda meta: meta.update(files={}), "lists no files with sha256 sums"),
    ("files-missing", lambda meta: meta.pop("files"), "lists no files with sha256 sums ('files' is missing)"),
    ("files-a-list", lambda meta: meta.update(files=list(meta["files"])), "lists no files with sha256 sums"),
    ("parent-path", lambda meta: meta["files"].update({"../x": ZEROS}), "'../x', which is not a plain file name"),
    ("absolute-path", lambda meta: meta["files"].update({"/etc/passwd": ZEROS}), "not a plain file name"),
    ("subfolder", lambda meta: meta["files"].update({"sub/model.onnx": ZEROS}), "not a plain file name"),
    ("dot-dot", lambda meta: meta["files"].update({"..": ZEROS}), "not a plain file name"),
    ("meta-itself", lambda meta: meta["files"].update({"meta.json": ZEROS}), "not a plain file name"),
    ("bad-digest", lambda meta: meta["files"].update({"model.onnx": "abc"}), "not 64 lowercase hex digits"),
    ("onnx-outside", lambda meta: meta["onnx"].update(file="../question-type/model.onnx"), "onnx.file"),
    ("onnx-absolute", lambda meta: meta["onnx"].update(file="/tmp/model.onnx"), "onnx.file"),
    ("onnx-unlisted", lambda meta: meta["onnx"].update(file="other.onnx"), "'other.onnx' is not one of the files"),
    ("onnx-missing", lambda meta: meta.pop("onnx"), "onnx.file None is not one of the files"),
]


@pytest.mark.parametrize("edit,fragment", [case[1:] for case in META_REFUSALS], ids=[case[0] for case in META_REFUSALS])
def test_unsafe_meta_is_refused(handler, bundle_copy, monkeypatch, caplog, edit, fragment):
    """The handler and helpers.export.read_bundle_meta refuse the same meta.json (helpers/bundle.py), naming the
    bundle and the problem; the client gets a 503 without the details."""
    from helpers.bundle import BundleError
    from helpers.export import read_bundle_meta

    shutil.copyfile(bundle_copy / "model.onnx", bundle_copy / "other.onnx")
    edit_meta(bundle_copy, edit)
    for load in (handler.Model, read_bundle_meta):
        with pytest.raises(BundleError, match=re.escape(fragment)) as refused:
            load(bundle_copy)
        assert str(bundle_copy) in str(refused.value)
    monkeypatch.setenv("MODELS_DIR", str(bundle_copy.parent))
    result = handler.sentiment(http_event("POST", {"text": "hello"}), None)
    assert result["statusCode"] == 503 and fragment not in result["body"]
    assert fragment in caplog.text  # the details go to the log


@pytest.mark.parametrize("edit,fragment", [
    (lambda meta: meta["files"].pop("vocab.json"), "vocab.json is not listed in meta.json's files"),
    (lambda meta: meta["tokenizer"].update(max_tokens=None), "a bound switched off"),
    (lambda meta: meta["tokenizer"].update(max_chunk_chars=None), "a bound switched off"),
], ids=["vocab-unlisted", "no-token-cap", "no-chunk-cap"])
def test_the_handler_uses_only_listed_files_and_bounded_tokenizers(handler, bundle_copy, edit, fragment):
    from helpers.bundle import BundleError

    edit_meta(bundle_copy, edit)
    with pytest.raises(BundleError, match=re.escape(fragment)):
        handler.Model(bundle_copy)


def rewrite_file(folder, name: str, data: bytes) -> None:
    """Replace a bundle file and its sha256 in meta.json: a bundle that passes every byte check, to test meaning."""
    import hashlib

    (folder / name).write_bytes(data)
    edit_meta(folder, lambda meta: meta["files"].update({name: hashlib.sha256(data).hexdigest()}))


def edit_json_file(folder, name: str, edit) -> None:
    data = json.loads((folder / name).read_text(encoding="utf-8"))
    edit(data)
    rewrite_file(folder, name, json.dumps(data).encode("utf-8"))


def edit_tokenizer(folder, **settings) -> None:
    """The same change in meta.json's tokenizer settings and in tokenizer.json (which must agree)."""
    edit_meta(folder, lambda meta: meta["tokenizer"].update(settings))
    edit_json_file(folder, "tokenizer.json", lambda tokenizer: tokenizer.update(settings))


def edit_graph(folder, edit) -> None:
    onnx = pytest.importorskip("onnx")
    model = onnx.load_from_string((folder / "model.onnx").read_bytes())
    edit(model.graph, onnx)
    rewrite_file(folder, "model.onnx", model.SerializeToString())


def rename_value(old: str, new: str):
    def edit(graph, onnx):
        for value in [*graph.input, *graph.output]:
            if value.name == old:
                value.name = new
        for node in graph.node:
            node.input[:] = [new if name == old else name for name in node.input]
            node.output[:] = [new if name == old else name for name in node.output]
    return edit


def fixed_batch(graph, onnx):
    graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1


def external_weights(graph, onnx):
    """fc.weight's data moved to the file secret.bin (next to the working directory, where ORT would look)."""
    tensor = next(t for t in graph.initializer if t.name == "fc.weight")
    Path("secret.bin").write_bytes(onnx.numpy_helper.to_array(tensor).tobytes())
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "secret.bin"


def grow_vocab(folder) -> None:
    """Ten words more in the vocabulary (and in meta.json's vocab_size) than the embedding has rows."""
    edit_json_file(folder, "vocab.json", lambda vocab: vocab["itos"].extend(f"new-word-{i}" for i in range(10)))
    edit_meta(folder, lambda meta: meta.update(vocab_size=meta["vocab_size"] + 10))


MEANING_REFUSALS = [
    # (id, bundle, change, fragment of the reason in the log): bundles whose bytes all match their sha256
    ("input-renamed", "sentiment", lambda f: edit_graph(f, rename_value("ids", "tokens")), "takes the inputs"),
    ("output-renamed", "sentiment", lambda f: edit_graph(f, rename_value("logits", "scores")), "the API reads logits"),
    ("fixed-batch", "sentiment", lambda f: edit_graph(f, fixed_batch), "any batch size"),
    ("external-data", "sentiment", lambda f: edit_graph(f, external_weights), "in another file (fc.weight)"),
    ("not-onnx", "sentiment", lambda f: rewrite_file(f, "model.onnx", b"\xff" * 64), "is not an ONNX model"),
    ("vocab-over-embedding", "sentiment", grow_vocab, "does its embedding have fewer rows?"),
    ("vocab-size-differs", "sentiment", lambda f: edit_meta(f, lambda m: m.update(vocab_size=12)), "vocab_size"),
    ("vocab-without-pad", "sentiment", lambda f: edit_json_file(f, "vocab.json", lambda v: (
        v["itos"].remove("<pad>"), v["specials"].remove("<pad>"))), "needs '<pad>'"),
    ("vocab-not-a-vocab", "sentiment", lambda f: rewrite_file(f, "vocab.json", b'{"itos": 5}'), "is not a vocabulary"),
    ("two-labels-six-outputs", "question-type", lambda f: edit_meta(f, lambda m: m.update(
        labels=["A", "B"], display_labels=["A", "B"])), "needs [2, 2]"),
    ("softmax-one-logit", "sentiment", lambda f: edit_meta(f, lambda m: m.update(output="softmax")), "needs [2, 2]"),
    ("sigmoid-six-labels", "question-type", lambda f: edit_meta(f, lambda m: m.update(output="sigmoid")),
     "means two labels"),
    ("unknown-output", "sentiment", lambda f: edit_meta(f, lambda m: m.update(output="relu")), "output is 'relu'"),
    ("labels-repeated", "sentiment", lambda f: edit_meta(f, lambda m: m.update(labels=["pos", "pos"])),
     "distinct non-empty strings"),
    ("display-labels-short", "sentiment", lambda f: edit_meta(f, lambda m: m.update(display_labels=["good"])),
     "display_labels"),
    ("max-chunk-chars-huge", "sentiment", lambda f: edit_tokenizer(f, max_chunk_chars=10**9),
     "max_chunk_chars is 1000000000; the API serves 1 to 80"),
    ("max-tokens-huge", "sentiment", lambda f: edit_tokenizer(f, max_tokens=10**9), "max_tokens is 1000000000"),
    ("max-tokens-zero", "sentiment", lambda f: edit_tokenizer(f, max_tokens=0), "max_tokens is 0"),
    ("max-tokens-text", "sentiment", lambda f: edit_tokenizer(f, max_tokens="80"), "max_tokens is '80';"),
    ("max-tokens-boolean", "sentiment", lambda f: edit_tokenizer(f, max_tokens=True), "max_tokens is True"),
    ("max-tokens-fraction", "sentiment", lambda f: edit_tokenizer(f, max_tokens=2.5), "max_tokens is 2.5"),
    ("min-length-huge", "question-type", lambda f: edit_tokenizer(f, min_length=10**7), "min_length is 10000000"),
    ("min-length-zero", "question-type", lambda f: edit_tokenizer(f, min_length=0), "min_length is 0"),
    ("piece-size-other", "sentiment", lambda f: edit_tokenizer(f, long_chunk_piece_chars=8), "pieces of 8"),
    ("tokenizer-from-the-future", "sentiment", lambda f: edit_tokenizer(f, version=3), "version is 3"),
    ("bigrams-not-boolean", "sentiment", lambda f: edit_tokenizer(f, bigrams="yes"), "bigrams must be true or false, got 'yes'"),
    ("tokenizer-json-differs", "sentiment", lambda f: edit_json_file(f, "tokenizer.json", lambda t: t.update(
        lowercase=True)), "tokenizer.json and meta.json's tokenizer settings differ (lowercase)"),
]


@pytest.mark.parametrize("bundle,change,fragment", [case[1:] for case in MEANING_REFUSALS],
                         ids=[case[0] for case in MEANING_REFUSALS])
def test_bundles_that_cannot_answer_fail_the_health_check(handler, models_dir, tmp_path, monkeypatch, caplog,
                                                          bundle, change, fragment):
    """A bundle whose files all match their sha256 but whose meaning is wrong (graph names, types and axes,
    output width against the labels, vocabulary against the embedding, tokenizer bounds, weights in another
    file) is refused when it loads: the health check and every POST get a JSON 503 without the details, the
    log says why. Never a 200 with wrong answers, nor a 500 on a later request."""
    from helpers.bundle import BundleError

    monkeypatch.chdir(tmp_path)  # where ONNX Runtime would look for external data (on Lambda: /var/task)
    folder = tmp_path / "models" / bundle
    shutil.copytree(models_dir / bundle, folder)
    change(folder)
    with pytest.raises(BundleError, match=re.escape(fragment)):
        handler.Model(folder)
    monkeypatch.setenv("MODELS_DIR", str(folder.parent))
    function = handler.question_type if bundle == "question-type" else handler.sentiment
    caplog.clear()
    for event in (http_event("GET"), http_event("POST", {"text": "A fine film"}),
                  http_event("POST", {"texts": ["word " * 3000, "x" * 20_000]})):
        result = function(event, None)
        assert result["statusCode"] == 503, result
        assert body_of(result) == {"error": f"the model {bundle!r} is not available"}
    assert fragment in caplog.text and str(folder) in caplog.text


def test_the_committed_bundles_pass_the_meaning_checks(handler, models_dir):
    for name in ("sentiment", "sentiment-cnn", "question-type"):
        model = handler.Model(models_dir / name)
        assert model.session.get_outputs()[0].name == "logits" and model.encoding.tokenizer.bounded_suffix_search


def test_without_a_bounded_suffix_search_the_bundle_is_refused(handler, bundle_copy, monkeypatch):
    """If this spaCy's suffix rules ever stop fitting a proven window, the API refuses to serve (a 503 and
    the reason in the log) rather than serve requests whose cost grows with their chunks' length squared."""
    import helpers.text
    from helpers.bundle import BundleError

    monkeypatch.setattr(helpers.text, "windowed_suffix_search", lambda pattern: None)
    with pytest.raises(BundleError, match="cannot be searched in a bounded window"):
        handler.Model(bundle_copy)


def test_external_data_is_found_wherever_a_tensor_can_be(tmp_path):
    """helpers.bundle reads the protobuf itself (the Lambda package has no onnx): an external tensor is found
    as an initializer, as a Constant node's value, inside a subgraph; none in the committed models."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from helpers.bundle import external_tensors

    def external(name):
        tensor = helper.make_tensor(name, TensorProto.FLOAT, [1], [1.0])
        tensor.ClearField("float_data")
        tensor.data_location = TensorProto.EXTERNAL
        entry = tensor.external_data.add()
        entry.key, entry.value = "location", "secret.bin"
        return tensor

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    constant = helper.make_node("Constant", [], ["c"], value=external("in-a-constant"))
    inner = helper.make_graph([helper.make_node("Identity", ["w"], ["z"])], "inner", [],
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1])], [external("in-a-subgraph")])
    branch = helper.make_node("If", ["cond"], ["y"], then_branch=inner, else_branch=inner)
    graph = helper.make_graph([constant, branch], "outer", [x], [y], [external("an-initializer")])
    found = external_tensors(helper.make_model(graph).SerializeToString())
    assert sorted(found) == ["an-initializer", "in-a-constant", "in-a-subgraph", "in-a-subgraph"]
    from deploy_support import COMMITTED_MODELS

    for name in ("sentiment", "question-type"):
        assert external_tensors((COMMITTED_MODELS / name / "model.onnx").read_bytes()) == []


def test_bundle_files_are_sha256_checked(handler, bundle_copy):
    from helpers.bundle import BundleError

    vocab = json.loads((bundle_copy / "vocab.json").read_text(encoding="utf-8"))
    vocab["itos"][2], vocab["itos"][3] = vocab["itos"][3], vocab["itos"][2]  # same size, other meaning
    (bundle_copy / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    with pytest.raises(BundleError, match="sha256 of vocab.json does not match meta.json"):
        handler.Model(bundle_copy)
    (bundle_copy / "vocab.json").unlink()
    with pytest.raises(BundleError, match="is missing vocab.json"):
        handler.Model(bundle_copy)
    (bundle_copy / "meta.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(BundleError, match="meta.json is not valid JSON"):
        handler.Model(bundle_copy)


@pytest.mark.parametrize("name", ["vocab.json", "meta.json"])
def test_symlinks_out_of_the_bundle_are_refused(handler, bundle_copy, tmp_path, name):
    """A link to an identical file outside the bundle passes the sha256 check, so the path check must catch it."""
    from helpers.bundle import BundleError
    from helpers.export import read_bundle_meta

    outside = tmp_path / f"outside-{name}"
    shutil.move(bundle_copy / name, outside)
    (bundle_copy / name).symlink_to(outside)
    for load in (handler.Model, read_bundle_meta):
        with pytest.raises(BundleError, match=f"{re.escape(name)} is a link to .*outside the bundle folder"):
            load(bundle_copy)


def test_symlinks_inside_the_bundle_are_fine(handler, bundle_copy, tmp_path):
    shutil.move(bundle_copy / "model.onnx", bundle_copy / "weights.bin")
    (bundle_copy / "model.onnx").symlink_to("weights.bin")  # relative, inside the bundle
    linked = tmp_path / "linked-bundle"
    linked.symlink_to(bundle_copy, target_is_directory=True)  # the bundle folder itself may be a link
    assert handler.Model(linked).predict(["A fine film"])[0]["label"] in ("positive", "negative")


class FakeS3:
    """boto3's S3 client for the tests: `objects` maps key -> bytes; every download is recorded."""

    def __init__(self, objects: dict, fail_on: str | None = None):
        self.objects, self.fail_on, self.calls = objects, fail_on, []

    def download_file(self, bucket, key, filename):
        self.calls.append(key)
        if key == self.fail_on:
            raise OSError(f"connection reset while downloading {key}")
        with open(filename, "wb") as handle:
            handle.write(self.objects[key])


def s3_objects(folder, prefix="models/sentiment") -> dict:
    return {f"{prefix}/{path.name}": path.read_bytes() for path in folder.iterdir()}


def serve_from_fake_s3(monkeypatch, tmp_path, client) -> None:
    monkeypatch.setitem(sys.modules, "boto3", types.SimpleNamespace(client=lambda service: client))
    monkeypatch.setenv("MODEL_S3_URI", "s3://my-bucket/models/sentiment")
    monkeypatch.setenv("MODEL_CACHE_DIR", str(tmp_path / "model-cache"))


@pytest.mark.parametrize("name", ["../../escaped", "/tmp/absolute", "sub/dir", ".."])
def test_s3_file_names_are_checked_before_anything_is_written(handler, bundle_copy, tmp_path, monkeypatch, caplog,
                                                              name):
    edit_meta(bundle_copy, lambda meta: meta["files"].update({name: ZEROS}))
    client = FakeS3({**s3_objects(bundle_copy), f"models/sentiment/{name}": b"written where?"})
    serve_from_fake_s3(monkeypatch, tmp_path, client)
    before = sorted(tmp_path.rglob("*"))
    result = handler.sentiment(http_event("POST", {"text": "hello"}), None)
    assert result["statusCode"] == 503
    assert client.calls == ["models/sentiment/meta.json"]  # nothing but meta.json was fetched
    assert sorted(tmp_path.rglob("*")) == sorted([*before, tmp_path / "model-cache"])  # nothing left, in or out
    assert "not a plain file name" in caplog.text and "s3://my-bucket/models/sentiment/" in caplog.text


def test_s3_meta_without_checksums_is_refused(handler, bundle_copy, tmp_path, monkeypatch, caplog):
    edit_meta(bundle_copy, lambda meta: meta.update(files={}))
    client = FakeS3(s3_objects(bundle_copy))
    serve_from_fake_s3(monkeypatch, tmp_path, client)
    assert handler.sentiment(http_event("POST", {"text": "hello"}), None)["statusCode"] == 503
    assert client.calls == ["models/sentiment/meta.json"] and "lists no files with sha256 sums" in caplog.text


def test_s3_download_failing_midway_leaves_no_half_bundle(handler, bundle_copy, tmp_path, monkeypatch):
    """A download that fails part way keeps the cached bundle as it was (here: none), with no temporary left."""
    client = FakeS3(s3_objects(bundle_copy), fail_on="models/sentiment/vocab.json")
    serve_from_fake_s3(monkeypatch, tmp_path, client)
    assert handler.sentiment(http_event("POST", {"text": "hello"}), None)["statusCode"] == 503
    assert list((tmp_path / "model-cache").iterdir()) == []
    client.fail_on = None  # the next request tries again and succeeds
    assert handler.sentiment(http_event("POST", {"text": "hello"}), None)["statusCode"] == 200
    assert sorted(p.name for p in (tmp_path / "model-cache" / "sentiment").iterdir()) == sorted(
        ["meta.json", *json.loads((bundle_copy / "meta.json").read_text())["files"]])


def test_s3_tampered_file_is_refused(handler, bundle_copy, tmp_path, monkeypatch, caplog):
    objects = s3_objects(bundle_copy)
    objects["models/sentiment/model.onnx"] += b"\0"
    serve_from_fake_s3(monkeypatch, tmp_path, FakeS3(objects))
    assert handler.sentiment(http_event("POST", {"text": "hello"}), None)["statusCode"] == 503
    assert "sha256 of model.onnx does not match meta.json" in caplog.text


def test_model_name_must_be_a_plain_folder_name(handler, monkeypatch, caplog):
    monkeypatch.setenv("SENTIMENT_MODEL", "../models/sentiment")
    assert handler.sentiment(http_event("GET"), None)["statusCode"] == 503
    assert "not a plain folder name" in caplog.text


def test_s3_uri_without_bucket_means_the_packaged_bundle(handler, monkeypatch):
    monkeypatch.setenv("MODEL_S3_URI", "s3:///models/sentiment")  # serverless.yml with modelBucket unset
    assert handler.sentiment(http_event("POST", {"text": "A fine film"}), None)["statusCode"] == 200


def training_batch(dataset, model):
    """The one batch training's loaders make of `dataset` (helpers.batching.loaders_for with the served model's
    encoding, which adds the bigrams itself). Labels are replaced by the row numbers, so the batch says which
    text each of its (length-sorted) rows is."""
    from dataclasses import replace

    from helpers.batching import loaders_for

    dataset = replace(dataset, labels=np.arange(len(dataset)))
    loader = loaders_for({"test": dataset}, model.encoding, len(dataset))["test"]
    (ids, lengths, rows), = list(loader)
    return ids.numpy(), lengths.numpy(), rows.numpy()


SHORT_INPUTS = ["a", "!", "Awful!", "ok", "The", "<br />", "😀", "zxqvbnmplk", "Not good.", "ñandú über straße"]


@pytest.mark.parametrize("name", ["sentiment", "sentiment-cnn", "question-type"])
def test_handler_encoding_matches_training_batches(handler, name):
    """The handler's ids and lengths for a text are the row training's loaders give it (lessons 3-5 load the
    data with load_imdb / load_trec and batch with loaders_for), on the fixtures' real test texts and short
    inputs. Widths match too: both pad to the batch's longest text, at least the CNN's widest filter."""
    from helpers.data import TextDataset, load_imdb, load_trec, tokenize_dataset

    from deploy_support import FIXTURE_DATA

    model = handler.get_model(name)
    load = load_trec if name == "question-type" else load_imdb
    real = load(model.encoding.tokenizer, FIXTURE_DATA, workers=1)["test"]
    short = tokenize_dataset(TextDataset(SHORT_INPUTS, np.zeros(len(SHORT_INPUTS)), ["any"]), model.encoding.tokenizer,
                             workers=1)
    assert len(real) >= 100
    if name != "question-type":
        assert max(real.tokens.lengths()) > 500  # long reviews too
    for dataset in (real, short):
        ids, lengths = model.encoding.encode(dataset.texts)
        expected_ids, expected_lengths, rows = training_batch(dataset, model)
        np.testing.assert_array_equal(lengths[rows], expected_lengths)
        np.testing.assert_array_equal(ids[rows], expected_ids)
    assert ids.shape[1] >= model.encoding.min_length


def test_handler_imports_no_torch(models_dir):
    """With torch made unimportable, the handler loads its bundle and answers: a 200, not a 503."""
    import os
    import subprocess

    from deploy_support import REPO_ROOT

    code = ("import sys, json; sys.modules['torch'] = None\n"  # importing torch would now fail
            "from deployment import handler\n"
            "for function in (handler.sentiment, handler.question_type):\n"
            "    r = function({'httpMethod': 'POST', 'body': json.dumps({'text': 'Great film'})}, None)\n"
            "    assert r['statusCode'] == 200, r\n"
            "assert 'torch' not in [m for m in sys.modules if sys.modules[m] is not None]\n")
    env = {**os.environ, "MODELS_DIR": str(models_dir)}
    for name in ("MODEL_S3_URI", "SENTIMENT_MODEL", "QUESTION_TYPE_MODEL"):
        env.pop(name, None)
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]


# ------------------------------------------------------------------- importing the handler as Lambda does

DEPLOYMENT_SKIP = {"node_modules", ".serverless", "__pycache__", "models", "website"}


def shadowing_modules(folder) -> dict[str, str]:
    """{module name: path} for every module (`x.py`) and regular package (`x/__init__.py`) under `folder`,
    recursively, whose name is also a standard-library module or the top-level module of an installed
    distribution other than this course's own (`helpers`, which deployment/helpers links to). With that
    module's folder first on sys.path, the file would be imported in its place."""
    import os
    from importlib.metadata import packages_distributions
    from pathlib import Path

    installed = {name for name, owners in packages_distributions().items() if set(owners) != {"sentiment-tutorials"}}
    taken = installed | set(sys.stdlib_module_names)
    found = {}
    for root, folders, files in os.walk(folder):
        folders[:] = [name for name in folders if name not in DEPLOYMENT_SKIP and not name.startswith(".")]
        names = [name[:-3] for name in files if name.endswith(".py") and name != "__init__.py"]
        names += [name for name in folders if (Path(root) / name / "__init__.py").is_file()]
        found.update({name: str(Path(root) / name) for name in names if name in taken})
    return found


def test_no_module_in_deployment_shadows_an_installed_one(tmp_path):
    from deploy_support import REPO_ROOT

    assert shadowing_modules(REPO_ROOT / "deployment") == {}
    # the check finds what it looks for: a module named like a distribution, like the stdlib, a package, deep down
    (tmp_path / "plugins" / "numpy").mkdir(parents=True)
    (tmp_path / "plugins" / "numpy" / "__init__.py").write_text("")
    for name in ("packaging.py", "json.py", "events.py"):
        (tmp_path / name).write_text("")
    assert sorted(shadowing_modules(tmp_path)) == ["json", "numpy", "packaging"]


def test_handler_imports_with_its_folder_first_on_sys_path(models_dir):
    """As `serverless invoke local` and Lambda's task root import it: `import handler` with deployment/ first on
    sys.path and as the working directory; both functions answer 200 (a deployment/packaging.py used to shadow
    the `packaging` distribution there: spaCy's import failed and every request got a 503)."""
    import os
    import subprocess

    from deploy_support import REPO_ROOT

    deployment = REPO_ROOT / "deployment"
    code = ("import json, os, sys; sys.path.insert(0, os.getcwd())\n"
            "import handler\n"
            "assert handler.__file__ == os.path.join(os.getcwd(), 'handler.py'), handler.__file__\n"
            "for function, text in ((handler.sentiment, 'Great film'), (handler.question_type, 'Who won?')):\n"
            "    r = function({'httpMethod': 'POST', 'body': json.dumps({'text': text})}, None)\n"
            "    assert r['statusCode'] == 200, r\n"
            "import packaging.version, spacy\n"
            "print(spacy.__file__, packaging.version.__file__)\n")
    env = {**os.environ, "MODELS_DIR": str(models_dir)}
    for name in ("MODEL_S3_URI", "SENTIMENT_MODEL", "QUESTION_TYPE_MODEL", "PYTHONPATH"):
        env.pop(name, None)
    out = subprocess.run([sys.executable, "-c", code], cwd=deployment, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert str(deployment) not in out.stdout  # spaCy and packaging came from the installed distributions
