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

Every malformed request gets a 4xx JSON `{"error": "..."}` saying what is wrong (JSON that
Python would take but JSON does not define, such as NaN, integers of thousands of digits or
duplicate keys, and text that is not valid Unicode included); every response, errors
included, carries CORS headers. Limits: at most MAX_TEXTS texts per request,
MAX_TEXT_CHARS characters per text, MAX_BODY_BYTES bytes of body. A text gives at most the
bundle's `max_tokens` tokens (3,000 by default, more than the longest training text):
a longer text is TRUNCATED, i.e. predicted from its first `max_tokens` tokens, as
`helpers.text.Tokenizer` does in training too. GET's `limits` lists all of these.

Bounded cost: tokenizing is linear in the text's length (helpers/text.py), a batch runs
through the model in sub-batches of at most MAX_IDS_PER_RUN token ids (padding included), so
a request's memory does not grow with its batch, and spaCy's string table, which keeps
every distinct word it has seen, is started afresh past MAX_TOKENIZER_STRINGS so that a warm
container does not grow with the words clients send.

A bundle (see helpers/export.py) is loaded once per container, from `$MODELS_DIR/<name>`
(default: `models/` beside this file, i.e. inside the Lambda package) or, when
`MODEL_S3_URI=s3://bucket/prefix` is set, from S3 into `$MODEL_CACHE_DIR/<name>` (default
/tmp/models) first. helpers/bundle.py checks it: only files that meta.json lists with a
sha256, plain names inside the bundle folder, each file's bytes checked before use (and
S3 file names checked before anything is written). Encoding is the bundle's
`helpers.encoding.TextEncoding`, the code used in training. Environment: MODELS_DIR, SENTIMENT_MODEL (default "sentiment";
"sentiment-cnn" serves lesson 4's CNN), QUESTION_TYPE_MODEL (default "question-type"),
MODEL_S3_URI, MODEL_CACHE_DIR, CORS_ALLOW_ORIGIN (default "*"), ORT_THREADS (default 1).
"""
from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import sys
import threading
import time
import traceback
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
try:  # in the Lambda package helpers/ sits beside this file; in a checkout, one level up
    import helpers.text  # noqa: F401
except ImportError:
    sys.path.append(str(HERE.parent))

# spaCy, NumPy + stdlib only
from helpers.bundle import (META_FILE, BundleError, check_no_external_data, is_plain_name,  # noqa: E402
                            output_width, parse_meta, read_checked_file, read_meta)
from helpers.encoding import TextEncoding  # noqa: E402
from helpers.files import atomic_path  # noqa: E402

logger = logging.getLogger("sentiment-api")
logger.setLevel(logging.INFO)

MAX_TEXTS = 64
MAX_TEXT_CHARS = 20_000       # the longest IMDb review is ~13,700 characters
MAX_BODY_BYTES = 1_000_000    # well under Lambda's 6 MB synchronous payload limit
# Token ids (padding included) per ONNX Runtime run. The CNN's activations take about 1.6 KB per id:
# 64 texts of 3,000 tokens in one run peaked at 626 MB RSS, in runs of this size at 369 MB.
MAX_IDS_PER_RUN = 16_384
# spaCy keeps every distinct string it has tokenized (about 0.4 KB each); one request can add
# ~200,000. Past this many the tokenizer is rebuilt (~0.1 s), so a warm container stays bounded.
MAX_TOKENIZER_STRINGS = 250_000
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

def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _softmax(x):
    shifted = np.exp(x - x.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def sub_batches(lengths, min_length: int, max_ids: int) -> list:
    """Cut a batch into runs: row indices (int arrays) grouped shortest first so that each group,
    padded to its own width (its longest row, at least `min_length`), holds at most `max_ids`
    ids. A row wider than `max_ids` runs alone. `lengths`: int [batch]."""
    order = np.argsort(lengths, kind="stable")
    groups, start = [], 0
    for end in range(1, len(order) + 1):
        width = max(int(lengths[order[end - 1]]), min_length)  # the widest so far: rows are sorted
        if end - start > 1 and (end - start) * width > max_ids:
            groups.append(order[start:end - 1])
            start = end - 1
    if start < len(order):
        groups.append(order[start:])
    return groups


class Model:
    """A checked bundle (helpers/bundle.py): its `encoding` (a `helpers.encoding.TextEncoding`: tokenizer,
    vocabulary, bigrams, minimum length) and an ONNX Runtime session.

    Loading checks what the bundle means, not only its bytes, so that a bundle that cannot answer fails
    here (the health check: a 503, the reason in the log) and never as a 500 on a later request:
    meta.json's output, labels and tokenizer bounds (`helpers.bundle.check_servable`), the vocabulary's
    `<pad>`, default token and size (both through `TextEncoding.from_bundle`), spaCy's suffix search in a
    bounded window, no weights outside the model's bytes
    (`helpers.bundle.check_no_external_data`), the graph's inputs `ids` and `lengths` (int64, any batch
    and length) and output `logits` (float), and one run on two texts made of the largest token id: the
    embedding must have a row for every word of the vocabulary and the output one logit (sigmoid) or one
    per label (softmax), finite. Every refusal is a BundleError."""

    def __init__(self, folder: str | os.PathLike):
        import onnxruntime  # deferred: the module's request checks and tests run without a model

        self.folder = Path(folder)
        self.meta = read_meta(folder)
        # meaning, tokenizer.json, vocab.json: checked as helpers.encoding reads them
        self.encoding = TextEncoding.from_bundle(folder, self.meta)
        tokenizer = self.encoding.tokenizer
        tokenizer("warm up")  # builds spaCy's tokenizer now, not on the first request
        bundle_spacy = self.meta["tokenizer"].get("spacy_version")
        if not tokenizer.bounded_suffix_search:
            raise BundleError(f"bundle {folder}: spaCy {bundle_spacy}'s suffix rules cannot be "
                              f"searched in a bounded window here, so a request's cost would not be bounded")
        runtime_spacy = tokenizer.config["spacy_version"]
        if runtime_spacy.split(".")[:2] != str(bundle_spacy or "").split(".")[:2]:
            logger.warning("bundle tokenized with spaCy %s, this runtime has %s", bundle_spacy, runtime_spacy)
        model = read_checked_file(folder, self.meta, self.meta["onnx"]["file"])
        check_no_external_data(model, folder, self.meta["onnx"]["file"])
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = int(os.environ.get("ORT_THREADS", "1"))
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:  # the bytes whose sha256 was checked, not the path: nothing can change in between
            self.session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        except Exception as err:  # noqa: BLE001 (ONNX Runtime raises its own classes)
            raise BundleError(f"bundle {folder}: ONNX Runtime cannot load {self.meta['onnx']['file']} "
                              f"({str(err)[:300]})") from None
        self.labels = self.meta.get("display_labels") or self.meta["labels"]
        self._check_graph(folder)

    def _check_graph(self, folder) -> None:
        """The graph's inputs and output (names, element types, ranks, a free batch and time axis), then one
        run on two texts of the largest token id: every vocabulary id has an embedding row, and the output
        width fits the labels (1 for sigmoid, one per label for softmax)."""
        def refuse(problem: str):
            raise BundleError(f"bundle {folder}: {self.meta['onnx']['file']} {problem}")

        def described(args) -> str:
            return ", ".join(f"{arg.name} {arg.type} {arg.shape}" for arg in args)

        inputs = {arg.name: arg for arg in self.session.get_inputs()}
        outputs = {arg.name: arg for arg in self.session.get_outputs()}
        expected = {"ids": ("tensor(int64)", 2), "lengths": ("tensor(int64)", 1)}
        if set(inputs) != set(expected):
            refuse(f"takes the inputs ({described(inputs.values())}); the API sends ids int64 [batch, time] and "
                   f"lengths int64 [batch]")
        for name, (kind, rank) in expected.items():
            shape = inputs[name].shape
            if inputs[name].type != kind or len(shape) != rank or any(isinstance(dim, int) for dim in shape):
                refuse(f"input {name} is {inputs[name].type} {shape}; the API sends {kind} of rank {rank}, "
                       f"any batch size and length")
        logits = outputs.get("logits")
        if logits is None or logits.type != "tensor(float)" or len(logits.shape) != 2 \
                or isinstance(logits.shape[0], int):
            refuse(f"gives ({described(outputs.values())}); the API reads logits float [batch, outputs]")
        width = output_width(self.meta["output"], self.meta["labels"])
        vocab, min_length = self.encoding.vocab, self.encoding.min_length
        last = len(vocab) - 1
        time_steps = max(min_length, 2)
        ids = np.full((2, time_steps), last, dtype=np.int64)
        lengths = np.array([time_steps, min_length], dtype=np.int64)
        try:
            result = self.session.run(["logits"], {"ids": ids, "lengths": lengths})[0]
        except Exception as err:  # noqa: BLE001 (ONNX Runtime raises its own classes)
            refuse(f"fails on token id {last:,}, the vocabulary's last ({len(vocab):,} tokens: does its "
                   f"embedding have fewer rows?): {str(err)[:300]}")
        if result.shape != (2, width):
            refuse(f"gives logits of shape {list(result.shape)} for 2 texts; a {self.meta['output']} output with "
                   f"{len(self.meta['labels'])} labels needs [2, {width}]")
        if not np.isfinite(result).all():
            refuse("gives logits that are not finite numbers")

    def forget_strings_if_many(self) -> None:
        """Start spaCy afresh when its string table (which never shrinks) holds more than
        MAX_TOKENIZER_STRINGS strings. Tokens are the same: the table is a cache, not a setting."""
        tokenizer = self.encoding.tokenizer
        if tokenizer.known_strings > MAX_TOKENIZER_STRINGS:
            tokenizer.forget_strings()
            tokenizer("warm up")  # rebuild now (about 0.1 s), not inside the next request

    def logits(self, texts: list[str]):
        """float32 [batch, n_outputs], one row per text, in order.

        The batch runs in `sub_batches` of at most MAX_IDS_PER_RUN ids, each padded to its own
        width only. The models ignore padding (lessons 3-5), so each row is the unsplit run's, to
        float32 rounding (as for a text sent alone or in any batch)."""
        ids, lengths = self.encoding.encode(texts)   # [batch, time], as in training
        min_length, runs = self.encoding.min_length, []
        for rows in sub_batches(lengths, min_length, MAX_IDS_PER_RUN):
            width = max(int(lengths[rows].max()), min_length)
            runs.append((rows, self.session.run(["logits"], {"ids": ids[rows, :width], "lengths": lengths[rows]})[0]))
        logits = np.empty((len(texts), runs[0][1].shape[1]), dtype=runs[0][1].dtype)
        for rows, part in runs:
            logits[rows] = part
        return logits

    def predict(self, texts: list[str]) -> list[dict]:
        logits = self.logits(texts)
        self.forget_strings_if_many()
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

    def limits(self) -> dict:
        """What a request may hold, for GET: longer texts are truncated to `max_tokens_per_text` tokens."""
        return {"max_texts": MAX_TEXTS, "max_text_chars": MAX_TEXT_CHARS, "max_body_bytes": MAX_BODY_BYTES,
                "max_tokens_per_text": self.encoding.tokenizer.max_tokens, "longer_texts": "truncated"}


_models: dict[str, Model] = {}
_lock = threading.Lock()


def models_dir() -> Path:
    return Path(os.environ.get("MODELS_DIR") or HERE / "models")


def models_s3_uri() -> str | None:
    """$MODEL_S3_URI when it names a bucket (`s3://bucket[/prefix]`): the bundles then come from S3, else None."""
    uri = os.environ.get("MODEL_S3_URI", "")
    return uri if uri.startswith("s3://") and uri[len("s3://"):].partition("/")[0] else None


def _download_from_s3(uri: str, name: str) -> Path:
    """Copy the bundle at `s3://bucket/prefix` into `$MODEL_CACHE_DIR/<name>` and return that folder.

    meta.json comes first, and its file names are checked (helpers.bundle.parse_meta: plain
    names, with sha256 sums) before any other file is written; the files go into a temporary
    folder that replaces the cached bundle only once all are there. Their sha256 sums are
    checked when the bundle is loaded."""
    import boto3  # in the Lambda runtime

    bucket, _, prefix = uri[len("s3://"):].partition("/")
    prefix = prefix.strip("/")
    s3 = boto3.client("s3")

    def key(file):
        return f"{prefix}/{file}" if prefix else file

    target = Path(os.environ.get("MODEL_CACHE_DIR", "/tmp/models")) / name
    with atomic_path(target) as tmp:
        tmp.mkdir(parents=True)
        s3.download_file(bucket, key(META_FILE), str(tmp / META_FILE))
        meta = parse_meta((tmp / META_FILE).read_bytes(), f"s3://{bucket}/{key('')}")
        for file in meta["files"]:
            s3.download_file(bucket, key(file), str(tmp / file))
    return target


def get_model(name: str) -> Model:
    """The bundle `name`, loaded once per container (thread-safe)."""
    model = _models.get(name)
    if model is not None:
        return model
    with _lock:
        if name not in _models:
            if not is_plain_name(name):  # it becomes a folder name: never a path out of the models folder
                raise ValueError(f"the model name {name!r} is not a plain folder name")
            start = time.perf_counter()
            uri = models_s3_uri()
            if uri is not None:
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
        if len(body) > MAX_BODY_BYTES:  # a character is at least one byte: too long before encoding it
            raise RequestError(f"the request body is larger than {MAX_BODY_BYTES:,} bytes", 413)
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
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:  # JSON can escape half a surrogate pair ("\\ud800"), Unicode cannot hold it
        raise RequestError(f'"{where}" is not valid Unicode: an unpaired surrogate '
                           f'(\\u{ord(text[err.start]):04x}) at character {err.start}') from None
    return text


def _refuse_constant(name: str):
    raise RequestError(f"the request body is not valid JSON ({name} is not a JSON number)")


def _object_without_duplicate_keys(pairs: list) -> dict:
    """A JSON object as a dict; a key given twice is an error (Python would keep the last silently)."""
    payload = {}
    for key, value in pairs:
        if key in payload:  # json.dumps: the key is the client's, shown in ASCII and shortened
            raise RequestError(f"the request body has the key {json.dumps(key[:40])} twice in one object")
        payload[key] = value
    return payload


def parse_texts(data: bytes) -> tuple[list[str], bool]:
    """The texts of a POST body and whether it used the single `text` form."""
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestError("the request body is not valid UTF-8") from None
    try:
        payload = json.loads(decoded, parse_constant=_refuse_constant, object_pairs_hook=_object_without_duplicate_keys)
    except json.JSONDecodeError as err:
        raise RequestError(f"the request body is not valid JSON ({err.msg} at line {err.lineno} "
                           f"column {err.colno})") from None
    except RecursionError:
        raise RequestError("the request body is not valid JSON (nested too deeply)") from None
    except ValueError:  # Python's limit on integer digits (4,300), which JSON itself does not have
        raise RequestError("the request body holds a number with too many digits") from None
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
            return response(200, {"status": "ok", "model": model.describe(), "limits": model.limits()})
        predictions = model.predict(texts)
        payload = {"model": model.meta["name"], "version": model.meta["version"], "task": model.meta["task"],
                   "predictions": predictions}
        if single:
            payload["prediction"] = predictions[0]
        return response(200, payload)
    except RequestError as err:
        return error(err.status, err.message)
    except Exception as err:  # a bug, not the client's fault: log it, never send the trace
        log_bug(err)
        return error(500, "internal error while handling the request")


def log_bug(err: BaseException) -> None:
    """Log an unexpected error as its type and where it was raised (file, line, function per frame), without
    its message: a message can quote what it was given, and the logs never hold a client's texts."""
    frames = "; ".join(f"{Path(frame.filename).name}:{frame.lineno} in {frame.name}"
                       for frame in traceback.extract_tb(err.__traceback__))
    logger.error("unexpected error %s (message not logged) at %s", type(err).__name__, frames)


def sentiment(event, context=None) -> dict:
    return handle(event, os.environ.get("SENTIMENT_MODEL", "sentiment"))


def question_type(event, context=None) -> dict:
    return handle(event, os.environ.get("QUESTION_TYPE_MODEL", "question-type"))
