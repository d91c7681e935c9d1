"""Reading and checking a model bundle folder (see helpers/export.py for what one holds).

Standard library only (no torch, no NumPy): the Lambda handler (deployment/handler.py)
loads bundles with it, and `helpers.export.read_bundle_meta` uses it too, so there is one
set of rules:

* `meta.json` is the bundle's root of trust. It must list every file the bundle uses under
  `files` with its sha256 (a bundle without checksums is refused, never loaded unchecked),
  and its ONNX model (`onnx.file`) must be one of them.
* A file name in `files` is a plain name inside the bundle folder (`model.onnx`): no folder
  part, no absolute path, no `..`. The names are checked when `meta.json` is read, so a
  downloader can check them before it writes anything (`check_file_name`).
* A file is used only if `meta.json` lists it, it lies inside the bundle folder once
  symlinks are followed, and its bytes match the sha256: `read_checked_file` returns those
  very bytes, so what was checked is what is used.

What a bundle means is checked too, before anything is served from it (`check_servable`,
`check_no_external_data`; the handler adds what needs ONNX Runtime): the task's output and its labels
agree, every tokenizer bound lies inside the range the API's cost per request is measured for
(`SERVABLE_RANGES`), `tokenizer.json` says what meta.json says, and the ONNX model reads no file
outside its own bytes.

Every refusal is a `BundleError` (a ValueError) naming the bundle and the problem.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from .text import LONG_CHUNK_PIECE_CHARS, MAX_CHUNK_CHARS, MAX_TOKENS, TOKENIZER_VERSION

# A bundle's files (helpers/export.py writes them, the handler reads them)
MODEL_FILE, VOCAB_FILE, TOKENIZER_FILE, META_FILE = "model.onnx", "vocab.json", "tokenizer.json", "meta.json"
_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
_SHA256 = re.compile(r"[0-9a-f]{64}")


# The tokenizer settings a served bundle may have, (lowest, highest) inclusive: the API's limits and its
# measured worst request (benchmarks/bench_hostile.py) hold only within them. The lessons' widest CNN filter is
# 5 wide (`min_length`); a `max_tokens` of 1e9 let one 20,000-character text take 42 s, a `min_length` of 1e7
# padded 64 texts to 5 GB.
SERVABLE_RANGES = {"max_tokens": (1, MAX_TOKENS), "max_chunk_chars": (1, MAX_CHUNK_CHARS), "min_length": (1, 64)}
OUTPUTS = ("sigmoid", "softmax")   # one logit and two labels, or one logit per label
MAX_LABELS = 1000


class BundleError(ValueError):
    """A bundle is missing, incomplete, tampered with or unsafe; the message names the bundle and the problem."""


def is_plain_name(name) -> bool:
    """True for a name that can only mean a file or folder right inside a folder: letters, digits,
    `_`, `-` and `.`, not starting with `.` (so no `..`, no hidden files) and no `/` or `\\`
    (so no subfolders and no absolute paths)."""
    return isinstance(name, str) and _FILE_NAME.fullmatch(name) is not None


def check_file_name(name, bundle: str | os.PathLike) -> str:
    """`name` if it is a plain name (`is_plain_name`) other than meta.json, else BundleError."""
    if not is_plain_name(name) or name == META_FILE:
        raise BundleError(f"bundle {bundle}: meta.json names the file {name!r}, which is not a plain file name "
                          f"inside the bundle (letters, digits, '_', '-', '.'; no folders, no '..')")
    return name


def parse_meta(data: bytes, bundle: str | os.PathLike) -> dict:
    """The checked contents of a bundle's meta.json, given as bytes.

    Checks: a JSON object; `files` a non-empty object of plain file names -> sha256 (64 lowercase
    hex digits); `onnx.file` one of those files. Raises BundleError otherwise.
    """
    try:
        meta = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise BundleError(f"bundle {bundle}: meta.json is not valid JSON ({err})") from None
    if not isinstance(meta, dict):
        raise BundleError(f"bundle {bundle}: meta.json is not a JSON object")
    files = meta.get("files")
    if not isinstance(files, dict) or not files:
        raise BundleError(f"bundle {bundle}: meta.json lists no files with sha256 sums ('files' is "
                          f"{'missing' if files is None else repr(files)}); an unchecked bundle is refused")
    for name, digest in files.items():
        check_file_name(name, bundle)
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise BundleError(f"bundle {bundle}: meta.json gives {name} the sha256 {digest!r}, "
                              f"which is not 64 lowercase hex digits")
    onnx = meta.get("onnx")
    model_file = onnx.get("file") if isinstance(onnx, dict) else None
    if model_file not in files:
        raise BundleError(f"bundle {bundle}: meta.json's onnx.file {model_file!r} is not one of the files it "
                          f"lists with a sha256 ({', '.join(files)})")
    return meta


def read_meta(bundle: str | os.PathLike) -> dict:
    """The checked meta.json of the bundle folder `bundle` (see `parse_meta`); BundleError if it is
    missing, lies outside the folder (a symlink) or breaks a rule."""
    path = _inside(bundle, META_FILE)
    if not path.is_file():
        raise BundleError(f"no model bundle at {bundle} (meta.json missing)")
    return parse_meta(path.read_bytes(), bundle)


def read_checked_file(bundle: str | os.PathLike, meta: dict, name: str) -> bytes:
    """The bytes of the bundle file `name`, after checking that meta.json lists it, that it lies
    inside the bundle folder and that its sha256 matches. Use these bytes, not the path: what was
    checked is then exactly what is used."""
    digest = meta["files"].get(name)
    if digest is None:
        raise BundleError(f"bundle {bundle}: {name} is not listed in meta.json's files, so it is not used")
    path = _inside(bundle, check_file_name(name, bundle))
    if not path.is_file():
        raise BundleError(f"bundle {bundle} is missing {name}")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != digest:
        raise BundleError(f"bundle {bundle}: sha256 of {name} does not match meta.json")
    return data


def verify_files(bundle: str | os.PathLike, meta: dict) -> None:
    """Check every file meta.json lists (present, inside the bundle, sha256); BundleError on the first problem."""
    for name in meta["files"]:
        read_checked_file(bundle, meta, name)


def _inside(bundle: str | os.PathLike, name: str) -> Path:
    """`bundle/name`, refused when symlinks take it outside the bundle folder."""
    folder = Path(bundle)
    path = folder / name
    real_folder, real_path = folder.resolve(), path.resolve()
    if real_folder not in real_path.parents:
        raise BundleError(f"bundle {bundle}: {name} is a link to {real_path}, outside the bundle folder")
    return path


def output_width(output: str, labels) -> int:
    """How many logits a model gives per text for its `output` and `labels`: one for "sigmoid" (P(positive)
    of two labels), one per label for "softmax". The export and the handler both hold a model to it."""
    return 1 if output == "sigmoid" else len(labels)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_servable(meta: dict, bundle: str | os.PathLike, tokenizer_file: bytes | None = None) -> None:
    """Check that a bundle's meta.json (already through `parse_meta`) means something the API can serve.

    * `output` is "sigmoid" (then exactly two `labels`) or "softmax" (two or more); `labels` are distinct
      non-empty strings, `display_labels` (if given) as many distinct strings;
    * `tokenizer` holds every bound the API needs, each an integer inside `SERVABLE_RANGES` (none switched
      off), the piece size the code cuts long chunks into, a version this code knows, and booleans where
      the tokenizer takes booleans, and ids [batch, time] (no `batch_first` other than true);
    * `tokenizer_file` (the bytes of tokenizer.json, when the bundle has one) says exactly the same.

    Raises BundleError naming the bundle and the first problem."""
    def refuse(problem: str):
        raise BundleError(f"bundle {bundle}: {problem}")

    output, labels, shown = meta.get("output"), meta.get("labels"), meta.get("display_labels")
    if output not in OUTPUTS:
        refuse(f"meta.json's output is {output!r}; the API knows {' and '.join(map(repr, OUTPUTS))}")
    if not isinstance(labels, list) or not 2 <= len(labels) <= MAX_LABELS \
            or not all(isinstance(label, str) and label for label in labels) or len(set(labels)) != len(labels):
        refuse(f"meta.json's labels must be 2 to {MAX_LABELS:,} distinct non-empty strings, got {str(labels)[:200]}")
    if output == "sigmoid" and len(labels) != 2:
        refuse(f"a sigmoid output (one logit) means two labels, meta.json has {len(labels)}")
    if shown is not None and (not isinstance(shown, list) or len(shown) != len(labels) or len(set(shown)) != len(shown)
                              or not all(isinstance(label, str) and label for label in shown)):
        refuse(f"meta.json's display_labels must be {len(labels)} distinct non-empty strings like its labels, "
               f"got {str(shown)[:200]}")

    settings = meta.get("tokenizer")
    if not isinstance(settings, dict):
        refuse("meta.json has no tokenizer settings (an object under 'tokenizer')")
    switched_off = [name for name in ("max_tokens", "max_chunk_chars") if settings.get(name, 0) is None]
    if switched_off:
        refuse(f"its tokenizer has a bound switched off ({', '.join(f'{name} None' for name in switched_off)}); the API "
               f"serves only bounded tokenizers, so that every request has a bounded cost")
    defaults = {"max_tokens": MAX_TOKENS, "max_chunk_chars": MAX_CHUNK_CHARS}  # bundles before tokenizer version 2
    for name, (lowest, highest) in SERVABLE_RANGES.items():
        value = settings.get(name, defaults.get(name))
        if not _is_int(value) or not lowest <= value <= highest:
            refuse(f"its tokenizer's {name} is {repr(value)[:40]}; the API serves {lowest} to {highest:,} (an integer)")
    pieces = settings.get("long_chunk_piece_chars", LONG_CHUNK_PIECE_CHARS)
    if pieces != LONG_CHUNK_PIECE_CHARS:
        refuse(f"its tokenizer cut long chunks into pieces of {repr(pieces)[:40]} characters; this code cuts them into "
               f"{LONG_CHUNK_PIECE_CHARS}, so its tokens would differ from training's")
    version = settings.get("version", 1)
    if not _is_int(version) or not 1 <= version <= TOKENIZER_VERSION:
        refuse(f"its tokenizer version is {repr(version)[:40]}; this code knows versions 1 to {TOKENIZER_VERSION}")
    for name in ("lowercase", "strip_html_breaks", "bigrams"):
        if not isinstance(settings.get(name), bool):
            refuse(f"its tokenizer's {name} must be true or false, got {repr(settings.get(name))[:40]}")
    if settings.get("batch_first", True) is not True:
        refuse(f"its tokenizer settings say batch_first {repr(settings['batch_first'])[:40]}; a bundle's model reads "
               f"ids [batch, time]")
    if not isinstance(settings.get("language"), str) or not is_plain_name(settings["language"]):
        refuse(f"its tokenizer's language must be a language code like 'en', got {repr(settings.get('language'))[:40]}")
    if tokenizer_file is not None:
        try:
            saved = json.loads(tokenizer_file.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as err:
            refuse(f"{TOKENIZER_FILE} is not valid JSON ({err})")
        if saved != settings:
            different = sorted(key for key in {*saved, *settings} if saved.get(key) != settings.get(key)) \
                if isinstance(saved, dict) else ["(not an object)"]
            refuse(f"{TOKENIZER_FILE} and meta.json's tokenizer settings differ ({', '.join(different)[:200]})")


# ONNX's protobuf messages and fields (onnx/onnx.proto) that can hold a tensor, directly or below:
# message -> {field number: message}. A TensorProto's data is in another file when its data_location (14) is
# EXTERNAL (1) or it lists external_data (13).
_TENSOR_HOLDERS = {
    "model": {7: "graph", 20: "training_info", 25: "function"},
    "training_info": {1: "graph", 2: "graph"},
    "graph": {1: "node", 5: "tensor", 15: "sparse_tensor"},
    "node": {5: "attribute"},
    "function": {7: "node", 11: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse_tensor", 23: "sparse_tensor"},
    "sparse_tensor": {1: "tensor", 2: "tensor"},
}
_TENSOR_NAME, _TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION, _EXTERNAL = 8, 13, 14, 1


def _protobuf_fields(data: memoryview):
    """(field number, wire type, value) of each field of a protobuf message: value an int (varint, fixed) or a
    memoryview (length-delimited). ValueError when the bytes are not a protobuf message."""
    def varint(position):
        result = shift = 0
        while True:
            if position >= len(data) or shift > 63:
                raise ValueError("a varint runs past the end")
            byte = data[position]
            result |= (byte & 0x7F) << shift
            position, shift = position + 1, shift + 7
            if byte < 0x80:
                return result, position

    position = 0
    while position < len(data):
        key, position = varint(position)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, position = varint(position)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, position = int.from_bytes(data[position:position + size], "little"), position + size
        elif wire == 2:
            size, position = varint(position)
            value, position = data[position:position + size], position + size
        else:
            raise ValueError(f"wire type {wire} (groups or unknown)")
        if position > len(data) or number == 0:
            raise ValueError("a field runs past the end")
        yield number, wire, value


def external_tensors(model: bytes) -> list[str]:
    """The names of the tensors of an ONNX model (its protobuf bytes) whose data lies in another file: in the
    graph's initializers, in node attributes (Constant), in subgraphs, functions and training graphs.
    ValueError when the bytes are not an ONNX model's protobuf."""
    found = []

    def walk(data: memoryview, kind: str, depth: int) -> None:
        if depth > 64:
            raise ValueError("graphs nested more than 64 deep")
        name, external = "", False
        for number, wire, value in _protobuf_fields(data):
            if kind == "tensor":
                if number == _TENSOR_NAME and wire == 2:
                    name = bytes(value).decode("utf-8", "replace")
                external |= (number == _TENSOR_EXTERNAL_DATA) or (number == _TENSOR_DATA_LOCATION and value == _EXTERNAL)
            elif wire == 2 and number in _TENSOR_HOLDERS[kind]:
                walk(value, _TENSOR_HOLDERS[kind][number], depth + 1)
        if external:
            found.append(name or "(unnamed)")

    walk(memoryview(model), "model", 0)
    return found


def check_no_external_data(model: bytes, bundle: str | os.PathLike, name: str = MODEL_FILE) -> None:
    """BundleError if the ONNX model `model` (bytes) keeps any tensor's data in another file: ONNX Runtime would
    read that file relative to the working directory (on Lambda /var/task), outside the checked bundle."""
    try:
        external = external_tensors(model)
    except ValueError as err:
        raise BundleError(f"bundle {bundle}: {name} is not an ONNX model ({err})") from None
    if external:
        raise BundleError(f"bundle {bundle}: {name} keeps the data of {len(external)} tensor(s) in another file "
                          f"({', '.join(external[:5])}); a bundle's model must hold all of its weights")
