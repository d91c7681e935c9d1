"""The course as a student meets it: installed (not editable) into a fresh environment, notebooks copied
alone into an empty folder, run in the smoke profile, offline.

The fresh environment is cheap: a new venv that sees the test environment's packages through a .pth
file (torch, spaCy, papermill: nothing downloaded) and gets the course by `pip install --no-deps
--no-index` of a copy of pyproject.toml, README.md, helpers/ and deployment/. Lessons 3 (exports a bundle
and saves its weights), 6 (the tiny encoder shipped in the package) and 7 (starts from lesson 3's bundle and
weights, serves them through the installed `deployment` package) run through `python -m helpers.run` in the
notebooks' folder. Everything must land in that folder; the installed package must be left exactly as
installed.
"""
from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import nbformat
import pytest

from conftest import REPO_ROOT

NOTEBOOKS = ("03_faster_sentiment", "06_transformers_sentiment", "07_deployment")


def listing(folder: Path) -> dict[str, tuple[int, int]]:
    """{relative path: (size, mtime in ns)} of every file under `folder`."""
    return {str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
            for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(python of a fresh venv with the course installed non-editable, its site-packages)."""
    root = tmp_path_factory.mktemp("outside")
    source = root / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    shutil.copytree(REPO_ROOT / "helpers", source / "helpers", ignore=shutil.ignore_patterns("__pycache__"))
    # deployment/ as a checkout has it, its symlink helpers -> ../helpers and its models included (the package
    # must leave both out); what npm and serverless build there is not part of a checkout
    shutil.copytree(REPO_ROOT / "deployment", source / "deployment", symlinks=True,
                    ignore=shutil.ignore_patterns("node_modules", ".serverless", "__pycache__"))
    environment = root / "venv"
    venv.create(environment, with_pip=False, symlinks=True)
    python = environment / "bin" / "python"
    purelib = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True, check=True).stdout.strip())
    # the test environment's packages, after the venv's own (where the course goes)
    (purelib / "test-environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    result = subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                             str(source)], capture_output=True, text=True, timeout=300, env=clean_environment(root))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (purelib / "helpers" / "fixtures" / "tiny-bert" / "config.json").is_file(), "package data not installed"
    assert (purelib / "helpers" / "fixtures" / "data" / "glove").is_dir()
    assert (purelib / "deployment" / "website" / "index.html").is_file(), "the website not installed"
    assert not (purelib / "deployment" / "helpers").exists(), "deployment/helpers (a symlink) was installed"
    assert not (purelib / "deployment" / "models").exists(), "deployment/models was installed"
    return python, purelib


def clean_environment(root: Path) -> dict:
    """No course variables, no PYTHONPATH, home and caches inside `root`, the Hugging Face hub offline."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("SENTIMENT_") and key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HOME=str(root / "home"), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", MPLBACKEND="Agg",
               PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}")
    return env


def printed_lines(python: Path, code: str, folder: Path) -> list[str]:
    """The lines `code` prints, run by the installed course's `python` in `folder` with a clean environment."""
    out = subprocess.run([python, "-c", code], cwd=folder, capture_output=True, text=True, timeout=120,
                         env=clean_environment(folder))
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip().splitlines()


def test_installed_course_imports_from_site_packages_and_knows_no_checkout(installed, tmp_path):
    python, purelib = installed
    code = ("import helpers, helpers.course as c; "
            "print(helpers.__file__); print(c.checkout_root()); print(c.provenance()['git_commit']); "
            "print(c.course_url())")
    module, checkout, commit, url = printed_lines(python, code, tmp_path)
    assert Path(module).parent == purelib / "helpers"
    assert checkout == "None" and commit.startswith("not a checkout")
    assert url == "https://github.com/sentiment-tutorials/sentiment-tutorials"   # pyproject's, via the metadata


def test_the_installed_course_includes_the_deployment(installed, tmp_path):
    """Lesson 7 imports the handler, the local server and its tools from the installed course."""
    python, purelib = installed
    code = ("from deployment import events, handler, lambda_package, latency, local; "
            "print(handler.__file__); print(local.WEBSITE_DIR / 'index.html'); "
            "print((local.WEBSITE_DIR / 'index.html').is_file())")
    module, page, found = printed_lines(python, code, tmp_path)
    assert Path(module) == purelib / "deployment" / "handler.py"
    assert Path(page) == purelib / "deployment" / "website" / "index.html" and found == "True"


def test_lessons_run_alone_in_an_empty_folder_and_write_only_there(installed, tmp_path):
    python, purelib = installed
    work = tmp_path / "work"
    work.mkdir()
    for stem in NOTEBOOKS:
        shutil.copy(REPO_ROOT / "notebooks" / f"{stem}.ipynb", work)
    before = listing(purelib)
    result = subprocess.run([python, "-m", "helpers.run", "--profile", "smoke", "--only", "3,6,7", "--quiet"],
                            cwd=work, capture_output=True, text=True, timeout=600, env=clean_environment(tmp_path))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert listing(purelib) == before, "the run wrote into the installed package"

    out = work / "results-smoke"
    summary = json.loads((out / "summary.json").read_text())
    assert [row["notebook"] for row in summary["notebooks"]] == list(NOTEBOOKS)
    for stem in NOTEBOOKS:
        metrics = json.loads((out / stem / "metrics.json").read_text())
        assert metrics["profile"] == "smoke" and metrics["git_commit"].startswith("not a checkout")
        assert metrics["hardware"]["threads"] >= 1 and metrics["course_version"]
        assert (out / stem / f"{stem}.ipynb").is_file()
        assert (out / stem / ("latency.png" if stem == "07_deployment" else "learning_curves.png")).is_file()
    bundle = out / "03_faster_sentiment" / "bundles" / "sentiment"
    assert json.loads((bundle / "meta.json").read_text())["name"] == "sentiment"
    assert (out / "03_faster_sentiment" / "checkpoint" / "fasttext.pt").is_file()   # lesson 3's weights
    # lesson 7 started from lesson 3's bundle and weights: the same model, so the same test accuracy
    lesson3 = json.loads((out / "03_faster_sentiment" / "metrics.json").read_text())
    lesson7 = json.loads((out / "07_deployment" / "metrics.json").read_text())
    assert lesson7["model_source"] == "lesson 3's bundle and weights"
    assert lesson7["bundle_test_accuracy"] == lesson3["test_accuracy"]
    said = "".join(output.get("text", "") for cell in nbformat.read(out / "07_deployment" / "07_deployment.ipynb",
                                                                  as_version=4).cells
                   if cell.cell_type == "code" for output in cell.outputs)
    assert "loaded lesson 3's model: bundle " in said
    assert "built from the course's repository checkout" in said   # the package cell, which builds nothing
    assert (out / "07_deployment" / "bundles" / "sentiment-lesson7" / "meta.json").is_file()
    lesson6 = json.loads((out / "06_transformers_sentiment" / "metrics.json").read_text())
    assert lesson6["transformer"] == "tiny-bert"   # the tiny encoder shipped in the package, offline
    # nothing outside the working folder but the caches under the (temporary) home
    assert sorted(path.name for path in work.iterdir()) == sorted([*(f"{stem}.ipynb" for stem in NOTEBOOKS),
                                                                   "results-smoke"])
    print(f"\noutside a checkout: {', '.join(NOTEBOOKS)} wrote {len(listing(out))} files under {out}; "
          f"site-packages unchanged ({len(before)} files)")
