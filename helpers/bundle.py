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

Every refusal is a `BundleError` (a ValueError) naming the bundle and the problem.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

# A bundle's files (helpers/export.py writes them, the handler reads them)
MODEL_FILE, VOCAB_FILE, TOKENIZER_FILE, META_FILE = "model.onnx", "vocab.json", "tokenizer.json", "meta.json"
_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
_SHA256 = re.compile(r"[0-9a-f]{64}")


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
