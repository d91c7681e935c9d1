"""Trims and precompiles the Lambda package's Python requirements (run by optimize-requirements.js).

    python3.12 optimize_requirements.py REQUIREMENTS_DIR SERVICE_DIR [--exclude GLOB ...]

1. Deletes the --exclude globs (relative to REQUIREMENTS_DIR; a glob starting with `!` keeps
   what it matches): files and folders the handler never loads (custom.optimizeRequirements.exclude).
   When blis's Python API (blis/py.*.so) is excluded, installs blis_py.py in its place.
2. Probes: a fresh python -I -S -B whose sys.path is REQUIREMENTS_DIR + SERVICE_DIR (+ the stdlib)
   imports handler.py and answers POST, GET and a bad request on both routes, from the main thread
   and from a new one. If that fails, the package would be broken: the build fails.
3. Precompiles exactly the modules the probe imported (`unchecked-hash` .pyc: /var/task is
   read-only and the zip resets timestamps) and deletes every other .pyc: a module no request
   needs stays a .py that Python compiles only if it is ever imported.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import py_compile
import shutil
import subprocess
import sys
from pathlib import Path

PROBE = r"""
import json, sys, threading
sys.path[:] = [REQUIREMENTS, SERVICE] + [p for p in sys.path if p and 'site-packages' not in p]
import handler

def check(function, text):
    for event in ({"requestContext": {"http": {"method": "POST"}}, "body": json.dumps({"text": text})},
                  {"httpMethod": "POST", "body": json.dumps({"texts": [text, "Great"]})}):
        answer = function(event)
        assert answer["statusCode"] == 200, answer
    assert function({"httpMethod": "GET"})["statusCode"] == 200
    assert function({"httpMethod": "POST", "body": "{oops"})["statusCode"] == 400

check(handler.sentiment, "This film is great")
check(handler.question_type, "Who wrote Hamlet?")
errors = []
def in_thread():
    try:
        check(handler.sentiment, "Not good at all.")
    except BaseException as err:
        errors.append(repr(err))
thread = threading.Thread(target=in_thread)
thread.start()
thread.join()
assert not errors, errors
import numpy, blis.py
from thinc.api import NumpyOps
a, b = numpy.random.default_rng(0).random((2, 3, 4), dtype="float32")
assert numpy.allclose(NumpyOps().gemm(a, b, trans2=True), a @ b.T, atol=1e-6)
files = {getattr(module, "__file__", None) or "" for module in list(sys.modules.values())}
print(json.dumps(sorted(f for f in files if f.startswith(REQUIREMENTS + "/"))))
"""


def exclude(root: Path, patterns: list[str]) -> int:
    drop = {path for pattern in patterns if not pattern.startswith("!") for path in root.glob(pattern)}
    keep = {path for pattern in patterns if pattern.startswith("!") for path in root.glob(pattern[1:])}
    removed = 0
    for path in sorted(drop - keep):
        if any(parent in keep for parent in path.parents) or any(path in k.parents for k in keep):
            continue  # inside a kept folder, or holds kept files
        if path.is_dir() and not path.is_symlink():
            removed += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            removed += path.stat().st_size if path.is_file() else 0
            path.unlink()
    return removed


def probe(root: Path, service: Path) -> list[str]:
    code = f"REQUIREMENTS = {str(root)!r}; SERVICE = {str(service)!r}\n" + PROBE
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8",
           "MODEL_S3_URI": ""}
    result = subprocess.run([sys.executable, "-I", "-S", "-B", "-c", code], cwd=service, env=env,
                            capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise SystemExit(f"the handler does not work from the trimmed requirements:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("requirements", type=Path)
    parser.add_argument("service", type=Path)
    parser.add_argument("--exclude", action="append", default=[])
    args = parser.parse_args()
    root, service = args.requirements.resolve(), args.service.resolve()
    removed = exclude(root, args.exclude)
    if (root / "blis").is_dir() and not list((root / "blis").glob("py.*.so")):  # excluded: the stand-in
        shutil.copyfile(Path(__file__).with_name("blis_py.py"), root / "blis" / "py.py")
    for pyc in list(root.rglob("*.pyc")):  # stale or unneeded: recreated below for what is needed
        pyc.unlink()
    needed = [Path(f) for f in probe(root, service) if f.endswith(".py")]
    for source in needed:
        py_compile.compile(str(source), cfile=importlib.util.cache_from_source(str(source)), doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    print(f"removed {removed / 1e6:.1f} MB of excluded files; precompiled the {len(needed)} modules "
          f"the handler imports (of {sum(1 for _ in root.rglob('*.py'))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
