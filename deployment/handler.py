"""AWS Lambda handlers: the course's models behind an HTTP API, with no torch at run time.

    sentiment(event, context)      IMDb review sentiment (bundle `sentiment`, FastText from lesson 3)
    question_type(event, context)  TREC question type (bundle `question-type`, CNN from lesson 5)

Events are API Gateway proxy events: HTTP API (payload format 2.0) or REST API
(payload format 1.0), bodies plain or base64-encoded.

    GET            -> 200 {"status": "ok", "model": {...metadata...}, "limits": {...}}
    POST {"text": "..."} or {"texts": ["...", ...]}
                   -> 200 {"model", "version", "task", "predictions": [{"label", "probability",
                          "probabilities": {label: p}}], "prediction": (the first, for "text")}
    OPTIONS        -> 204 (CORS preflight)

Every malformed request gets a 4xx JSON `{"error": "..."}` saying what is wrong; every
response, errors included, carries CORS headers. Limits: at most MAX_TEXTS texts per
request, MAX_TEXT_CHARS characters per text, MAX_BODY_BYTES bytes of body.

A bundle (see helpers/export.py) is loaded once per container, from `$MODELS_DIR/<name>`
(default: `models/` beside this file, i.e. inside the Lambda package) or, when
`MODEL_S3_URI=s3://bucket/prefix` is set, from S3 into /tmp first. Its sha256 sums are
checked before use. Tokenizing is helpers/text.py, the code used in training.
Environment: MODELS_DIR, SENTIMENT_MODEL (default "sentiment"; "sentiment-cnn" serves
lesson 4's CNN), QUESTION_TYPE_MODEL (default "question-type"), MODEL_S3_URI,
CORS_ALLOW_ORIGIN (default "*").
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
try:  # in the Lambda package helpers/ sits beside this file; in a checkout, one level up
    import helpers.text  # noqa: F401
except ImportError:
    sys.path.append(str(HERE.parent))

from helpers.text import Tokenizer, Vocab, encode_batch  # noqa: E402  (spaCy, NumPy + stdlib only)

logger = logging.getLogger("sentiment-api")
logger.setLevel(logging.INFO)

MAX_TEXTS = 64
MAX_TEXT_CHARS = 20_000       # the longest IMDb review is ~13,700 characters
MAX_BODY_BYTES = 1_000_000    # well under Lambda's 6 MB synchronous payload limit
ALLOWED_METHODS = "GET, POST, OPTIONS"


class RequestError(Exception):
    """A problem with the request: becomes a 4xx JSON error."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message, self.status = message, status


def cors_headers() -> dict:
    return {
        "Access-Control-Allow-Origin": os.environ.get("CORS_ALLOW_ORIGIN", "*"),
        "Access-Control-Allow-Methods": ALLOWED_METHODS,
        "Access-Control-Allow-Headers": "Content-Type",
        "Access-Control-Max-Age": "600",
    }


def response(status: int, payload: dict | None = None, extra_headers: dict | None = None) -> dict:
    headers = {**cors_headers(), **(extra_headers or {})}
    body = ""
    if payload is not None:
        headers["Content-Type"] = "application/json; charset=utf-8"
        body = json.dumps(payload, ensure_ascii=False)
    return {"statusCode": status, "headers": headers, "body": body, "isBase64Encoded": False}


def error(status: int, message: str, extra_headers: dict | None = None) -> dict:
    return response(status, {"error": message}, extra_headers)


# --------------------------------------------------------------------------------------------- models

def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _sigmoid(x):
    import numpy as np

    return 1.0 / (1.0 + np.exp(-x))


def _softmax(x):
    import numpy as np

    shifted = np.exp(x - x.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


class Model:
    """A verified bundle: tokenizer, vocabulary and an ONNX Runtime session."""

    def __init__(self, folder: str | os.PathLike):
        import onnxruntime

        folder = Path(folder)
        meta_path = folder / "meta.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"no model bundle at {folder} (meta.json missing)")
        self.meta = json.loads(meta_path.read_text(encoding="utf-8"))
        for file, digest in self.meta["files"].items():
            path = folder / file
            if not path.is_file() or _sha256(path) != digest:
                raise ValueError(f"bundle {folder}: {file} is missing or its sha256 does not match meta.json")
        settings = self.meta["tokenizer"]
        self.tokenizer = Tokenizer.from_config(settings)
        self.bigrams, self.min_length = bool(settings["bigrams"]), int(settings["min_length"])
        try:
            import spacy

            if spacy.__version__.split(".")[:2] != str(settings.get("spacy_version", "")).split(".")[:2]:
                logger.warning("bundle tokenized with spaCy %s, this runtime has %s",
                               settings.get("spacy_version"), spacy.__version__)
        except ImportError:
            pass
        self.vocab = Vocab.load(folder / "vocab.json")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = int(os.environ.get("ORT_THREADS", "1"))
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = onnxruntime.InferenceSession(str(folder / self.meta["onnx"]["file"]), options,
                                                    providers=["CPUExecutionProvider"])
        self.labels = self.meta.get("display_labels") or self.meta["labels"]
        self.tokenizer("warm up")  # builds spaCy's tokenizer now, not on the first request

    def encode(self, texts: list[str]):
        """ids int64 [batch, time] padded with <pad>, lengths int64 [batch], as in training."""
        return encode_batch(texts, self.tokenizer, self.vocab, self.bigrams, self.min_length)

    def logits(self, texts: list[str]):
        ids, lengths = self.encode(texts)
        return self.session.run(["logits"], {"ids": ids, "lengths": lengths})[0]

    def predict(self, texts: list[str]) -> list[dict]:
        logits = self.logits(texts)
        if self.meta["output"] == "sigmoid":
            positive = _sigmoid(logits[:, 0].astype("float64"))
            probabilities = [[1.0 - p, p] for p in positive.tolist()]
        else:
            probabilities = _softmax(logits.astype("float64")).tolist()
        results = []
        for row in probabilities:
            best = max(range(len(row)), key=row.__getitem__)
            results.append({"label": self.labels[best], "probability": round(row[best], 6),
                            "probabilities": {label: round(p, 6) for label, p in zip(self.labels, row)}})
        return results

    def describe(self) -> dict:
        keys = ("name", "version", "task", "description", "architecture", "vocab_size", "source_notebook",
                "test_accuracy", "profile", "provisional", "created_at", "git_commit")
        return {**{key: self.meta.get(key) for key in keys}, "labels": self.labels}


_models: dict[str, Model] = {}
_lock = threading.Lock()


def models_dir() -> Path:
    return Path(os.environ.get("MODELS_DIR") or HERE / "models")


def _download_from_s3(uri: str, name: str) -> Path:
    """Copy the bundle at `s3://bucket/prefix` (meta.json, then each file it lists) into /tmp."""
    import boto3  # in the Lambda runtime

    bucket, _, prefix = uri[len("s3://"):].partition("/")
    prefix = prefix.strip("/")
    target = Path(os.environ.get("MODEL_CACHE_DIR", "/tmp/models")) / name
    target.mkdir(parents=True, exist_ok=True)
    s3 = boto3.client("s3")

    def key(file):
        return f"{prefix}/{file}" if prefix else file

    s3.download_file(bucket, key("meta.json"), str(target / "meta.json"))
    meta = json.loads((target / "meta.json").read_text(encoding="utf-8"))
    for file in meta["files"]:
        s3.download_file(bucket, key(file), str(target / file))
    return target


def get_model(name: str) -> Model:
    """The bundle `name`, loaded once per container (thread-safe)."""
    model = _models.get(name)
    if model is not None:
        return model
    with _lock:
        if name not in _models:
            start = time.perf_counter()
            uri = os.environ.get("MODEL_S3_URI", "")
            if uri.startswith("s3://") and uri[len("s3://"):].partition("/")[0]:  # a bucket is named
                folder = _download_from_s3(uri, name)
            else:
                folder = models_dir() / name
            _models[name] = Model(folder)
            logger.info("loaded model %s from %s in %.2f s", name, folder, time.perf_counter() - start)
        return _models[name]


# -------------------------------------------------------------------------------------------- requests

def _method(event: dict) -> str:
    if not isinstance(event, dict):
        raise RequestError("the event is not an API Gateway proxy event")
    http = (event.get("requestContext") or {}).get("http") if isinstance(event.get("requestContext"), dict) else None
    method = (http or {}).get("method") if isinstance(http, dict) else None   # HTTP API, payload 2.0
    method = method or event.get("httpMethod")                                # REST API, payload 1.0
    if not isinstance(method, str) or not method:
        raise RequestError("the event is not an API Gateway proxy event (no HTTP method)")
    return method.upper()


def _body(event: dict) -> bytes:
    body = event.get("body")
    if body is None or body == "":
        raise RequestError('the request body is empty: send JSON like {"text": "..."}')
    if not isinstance(body, str):
        raise RequestError("the request body must be a string")
    if event.get("isBase64Encoded"):
        if len(body) > MAX_BODY_BYTES * 4 // 3 + 4:
            raise RequestError(f"the request body is larger than {MAX_BODY_BYTES:,} bytes", 413)
        try:
            data = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise RequestError("the request body is marked base64-encoded but is not valid base64") from None
    else:
        data = body.encode("utf-8", "surrogatepass")
    if len(data) > MAX_BODY_BYTES:
        raise RequestError(f"the request body is larger than {MAX_BODY_BYTES:,} bytes", 413)
    if not data.strip():
        raise RequestError('the request body is empty: send JSON like {"text": "..."}')
    return data


def _type_name(value) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def _check_text(text, where: str) -> str:
    if not isinstance(text, str):
        raise RequestError(f'"{where}" must be a string, got {_type_name(text)}')
    if not text.strip():
        raise RequestError(f'"{where}" is empty or only whitespace')
    if len(text) > MAX_TEXT_CHARS:
        raise RequestError(f'"{where}" is {len(text):,} characters long; the limit is {MAX_TEXT_CHARS:,}', 413)
    return text


def parse_texts(data: bytes) -> tuple[list[str], bool]:
    """The texts of a POST body and whether it used the single `text` form."""
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestError("the request body is not valid UTF-8") from None
    try:
        payload = json.loads(decoded)
    except json.JSONDecodeError as err:
        raise RequestError(f"the request body is not valid JSON ({err.msg} at line {err.lineno} "
                           f"column {err.colno})") from None
    except RecursionError:
        raise RequestError("the request body is not valid JSON (nested too deeply)") from None
    if not isinstance(payload, dict):
        raise RequestError(f'the JSON body must be an object like {{"text": "..."}}, got {_type_name(payload)}')
    if "text" in payload and "texts" in payload:
        raise RequestError('send either "text" or "texts", not both')
    if "text" in payload:
        return [_check_text(payload["text"], "text")], True
    if "texts" in payload:
        texts = payload["texts"]
        if not isinstance(texts, list):
            raise RequestError(f'"texts" must be a list of strings, got {_type_name(texts)}')
        if not texts:
            raise RequestError('"texts" is an empty list')
        if len(texts) > MAX_TEXTS:
            raise RequestError(f'"texts" has {len(texts)} items; the limit is {MAX_TEXTS}', 413)
        return [_check_text(text, f"texts[{i}]") for i, text in enumerate(texts)], False
    raise RequestError('missing "text" (a string) or "texts" (a list of strings) in the JSON body')


def handle(event, model_name: str) -> dict:
    """One API Gateway event for the bundle `model_name` -> an API Gateway proxy response."""
    try:
        method = _method(event)
        if method == "OPTIONS":
            return response(204)
        if method not in ("GET", "POST"):
            return error(405, f"method {method} is not allowed: use GET for model information or POST to predict",
                         {"Allow": ALLOWED_METHODS})
        if method == "POST":
            texts, single = parse_texts(_body(event))  # validate before touching the model
        try:
            model = get_model(model_name)
        except Exception:
            logger.exception("could not load model %s", model_name)
            return error(503, f"the model {model_name!r} is not available")
        if method == "GET":
            return response(200, {"status": "ok", "model": model.describe(),
                                  "limits": {"max_texts": MAX_TEXTS, "max_text_chars": MAX_TEXT_CHARS,
                                             "max_body_bytes": MAX_BODY_BYTES}})
        predictions = model.predict(texts)
        payload = {"model": model.meta["name"], "version": model.meta["version"], "task": model.meta["task"],
                   "predictions": predictions}
        if single:
            payload["prediction"] = predictions[0]
        return response(200, payload)
    except RequestError as err:
        return error(err.status, err.message)
    except Exception:  # a bug, not the client's fault: log it, never send the trace
        logger.exception("unexpected error")
        return error(500, "internal error while handling the request")


def sentiment(event, context=None) -> dict:
    return handle(event, os.environ.get("SENTIMENT_MODEL", "sentiment"))


def question_type(event, context=None) -> dict:
    return handle(event, os.environ.get("QUESTION_TYPE_MODEL", "question-type"))
