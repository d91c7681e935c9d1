"""Peak memory and outcome of `read_table` on small .gz files that decompress to a lot (issue 19, item 6).

    python benchmarks/bench_table_bombs.py [--mib 44] [--out results/benchmarks/table_bombs.json]

Each case is a .gz file of about 45 KB holding --mib MiB once decompressed: many tiny rows, one row of
millions of empty or short fields, one JSON line of millions of objects. Each is read with `read_table`'s
defaults in a fresh Python, which reports its peak resident memory (VmHWM, Linux) and what happened.
Uses only `read_table`, so the same command measures any version of the library (put the version to
measure first on PYTHONPATH).
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, str(REPO_ROOT))

import helpers.data  # noqa: E402

CASES = {  # name: (what comes first, the unit repeated after it)
    "rows.csv.gz": (b"text,label\n", b"a,b\n"),
    "commas.csv.gz": (b"text,label\nx,y", b","),
    "fields.csv.gz": (b"text,label\nx,y", b",ab"),
    "objects.jsonl.gz": (b'{"text": "a", "label": "b", "x": [', b"{},"),
}
READ = """
import re, sys, time
from pathlib import Path
from helpers.data import read_table
start = time.perf_counter()
try:
    outcome = f"read {len(read_table(sys.argv[1])):,} rows"
except Exception as err:
    outcome = f"{type(err).__name__}: {str(err).replace(sys.argv[1], Path(sys.argv[1]).name)}"
peak = int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text())[1]) // 1024
print(f"{peak}\\t{time.perf_counter() - start:.1f}\\t{outcome}")
"""


def make(path: Path, head: bytes, unit: bytes, total: int) -> None:
    with gzip.open(path, "wb", compresslevel=9) as handle:
        handle.write(head)
        block = unit * ((1 << 20) // len(unit))
        for _ in range(total // len(block)):
            handle.write(block)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=44, help="MiB each file holds once decompressed")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    library = Path(helpers.data.__file__).resolve().parent.parent
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name, (head, unit) in CASES.items():
            path = Path(folder) / name
            make(path, head, unit, args.mib << 20)
            result = subprocess.run([sys.executable, "-c", READ, str(path)], capture_output=True, text=True,
                                    env={**os.environ, "PYTHONPATH": str(library)}, cwd=folder)
            peak, seconds, outcome = (result.stdout.strip().split("\t") if result.returncode == 0
                                      else ("-", "-", result.stderr.strip().splitlines()[-1]))
            rows.append({"file": name, "gz_bytes": path.stat().st_size, "decompressed_mib": args.mib,
                         "peak_mb": peak, "seconds": seconds, "outcome": outcome})
            print(f"{name:17} {path.stat().st_size:7,d} B gz  peak {peak:>5} MB  {seconds:>5} s  {outcome[:110]}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"library": str(library), "cases": rows}, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
