"""Check that notebooks' code cells are those of a git revision (prose may differ): exit 1 naming the first cell
that differs. Usage: python docs/plans/same_code_cells.py REV notebooks/06_x.ipynb [more notebooks]

The reference run's parts must run the same code; a notebook whose Markdown was edited after the reference
commit may still be run for it when this check passes (the runner does not count .ipynb edits as code)."""
import json
import subprocess
import sys


def code_cells(text: str) -> list[str]:
    return ["".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            for cell in json.loads(text)["cells"] if cell["cell_type"] == "code"]


def main(rev: str, paths: list[str]) -> int:
    status = 0
    for path in paths:
        old = code_cells(subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True,
                                        check=True).stdout)
        new = code_cells(open(path, encoding="utf-8").read())
        if old == new:
            print(f"{path}: the {len(new)} code cells are {rev}'s")
            continue
        status = 1
        first = next((i for i, (a, b) in enumerate(zip(old, new)) if a != b), min(len(old), len(new)))
        print(f"{path}: code cell {first + 1} differs from {rev}'s ({len(old)} cells there, {len(new)} here)")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
