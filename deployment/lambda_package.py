"""The Lambda package: the Python it is built for, `serverless package`, and what the zip holds.

    python = lambda_python()                      # a python3.12, the Lambda runtime's version (None if none)
    zip_path = build_package(python, folder)      # npx serverless package --package <folder>
    package_sizes(zip_path)                       # zipped and unzipped bytes, the largest top-level parts

`serverless.yml` says what goes in (the handler, the torch-free helpers, the bundles
`models/sentiment` and `models/question-type`) and `plugins/optimize-requirements.js` trims the
dependencies; building needs Node (npx), `deployment/node_modules` (`make deploy-deps`) and
python3.12. `missing_tools` says which of them is absent, in words.

A build takes minutes, so the test suite's build is reused: tests/test_packaging.py leaves its
package in `shared_package_dir(<output folder>)` (the folder `make test` gives the notebooks too),
where lesson 7's smoke run finds it with `shared_package`.

Not named `packaging.py`: `serverless invoke local`, Lambda's task root and tools that import the
handler from its folder put deployment/ first on sys.path, where such a file would shadow the
`packaging` distribution that spaCy imports (tests/test_handler.py checks every module name here).
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

DEPLOYMENT = Path(__file__).resolve().parent
PACKAGE_ZIP = "sentiment-tutorials-api.zip"   # serverless names it after the service in serverless.yml
SHARED_PACKAGE_FOLDER = "lambda-package"
SERVERLESS_ENV = {"SLS_TELEMETRY_DISABLED": "1", "SLS_NOTIFICATIONS_MODE": "off", "SLS_DEPRECATION_DISABLE": "*",
                  "AWS_REGION": "eu-west-1"}


def lambda_python() -> str | None:
    """A python3.12 (the Lambda runtime's version): $SLS_PYTHON_BIN, python3.12 on PATH, or pyenv's; None if none."""
    candidates = [os.environ.get("SLS_PYTHON_BIN"), shutil.which("python3.12"),
                  *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python3.12")))]
    for candidate in filter(None, candidates):
        try:
            out = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 12))"],
                                 capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and out.stdout.strip() == "True":
            return candidate
    return None


def missing_tools() -> str | None:
    """Why `build_package` cannot run here, in words (what to install), or None when everything is present."""
    if shutil.which("npx") is None or shutil.which("node") is None:
        return "Node.js (node and npx) is not installed: install Node.js 18 or newer"
    if not (DEPLOYMENT / "node_modules" / "serverless" / "package.json").is_file():
        return "deployment/node_modules is missing: run `make deploy-deps` (npm ci in deployment/)"
    if lambda_python() is None:
        return "no python3.12 found (the Lambda runtime's version): install it or set SLS_PYTHON_BIN"
    return None


def build_package(python: str, destination: str | os.PathLike | None = None, timeout: float = 1500) -> Path:
    """Run `npx serverless package` in deployment/ with `python` (a python3.12) and return the zip's path.

    `destination`: the folder serverless writes the zip and the CloudFormation templates into
    (`--package`); None: its default, deployment/.serverless. The pinned serverless of
    deployment/node_modules is used, never a download (`--no-install`). RuntimeError with the end
    of serverless's output when the build fails."""
    command = ["npx", "--no-install", "serverless", "package"]
    if destination is not None:
        command += ["--package", str(destination)]
    result = subprocess.run(command, cwd=DEPLOYMENT, env={**os.environ, **SERVERLESS_ENV, "SLS_PYTHON_BIN": python},
                            capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"serverless package failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    artifact = Path(destination or DEPLOYMENT / ".serverless") / PACKAGE_ZIP
    if not artifact.is_file():
        raise RuntimeError(f"serverless package succeeded but wrote no {PACKAGE_ZIP}")
    return artifact


def shared_package_dir(output_dir: str | os.PathLike) -> Path:
    """Where the test suite leaves its package for the notebooks of the same output folder."""
    return Path(output_dir) / SHARED_PACKAGE_FOLDER


def shared_package(output_dir: str | os.PathLike) -> Path | None:
    """The zip the test suite built for `output_dir` (see `shared_package_dir`), or None when there is none."""
    artifact = shared_package_dir(output_dir) / PACKAGE_ZIP
    return artifact if artifact.is_file() else None


def folder_bytes(folder: str | os.PathLike) -> int:
    """Bytes of the regular files under `folder` (symlinks not followed, not counted)."""
    return sum(path.stat().st_size for path in Path(folder).rglob("*") if path.is_file() and not path.is_symlink())


def package_sizes(zip_path: str | os.PathLike, largest: int = 8) -> dict:
    """{"zipped": bytes of the zip, "unzipped": bytes of its files once extracted, "parts": [(name, unzipped
    bytes)] of its `largest` biggest top-level entries (a folder counts everything below it), biggest first}."""
    parts: dict[str, int] = {}
    with zipfile.ZipFile(zip_path) as archive:
        for member in archive.infolist():
            if not member.is_dir():
                top = member.filename.split("/", 1)[0]
                parts[top] = parts.get(top, 0) + member.file_size
    ranked = sorted(parts.items(), key=lambda item: (-item[1], item[0]))
    return {"zipped": Path(zip_path).stat().st_size, "unzipped": sum(parts.values()), "parts": ranked[:largest]}
