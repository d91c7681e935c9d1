"""What writers that end without cleaning up leave in a cache folder, and whether writers in other PID
namespaces delete each other's live temporaries (issue 19, item 7).

    python benchmarks/bench_dead_writers.py [--writers 4] [--writes 200] [--out results/benchmarks/dead_writers.json]

Uses only `helpers.files.atomic_path`, so the same command measures any version of the library (put the
version to measure first on PYTHONPATH). For each way of ending (os._exit, SIGTERM, a forked child
ending as multiprocessing ends it), --writers processes each write one folder target --writes times and
end; the script counts the temporaries left beside it, then makes one write of another target in the
same folder (waiting out REPLACED_KEPT_S first, so what is counted is what stays for good) and counts again.

Then, where `unshare --pid --fork --mount-proc` is allowed (root, or user namespaces): a live writer in
this PID namespace holds a temporary while a writer in a new PID namespace (where the live writer's pid
runs nothing) writes the same target, then another target, in the folder; the script reports whether the
live temporary survived and the live writer finished its write.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, str(REPO_ROOT))

import helpers.files as files  # noqa: E402
from helpers.files import atomic_path  # noqa: E402

WRITE_THEN_END = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from helpers.files import atomic_path
    target, writes, ending = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    for write in range(writes):
        with atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "a").write_text(str(write))
    if ending == "os._exit":
        os._exit(0)
    if ending == "SIGTERM":
        os.kill(os.getpid(), signal.SIGTERM)
    with atomic_path(target) as tmp:  # "hold": a live writer, holding a temporary until told to finish
        tmp.mkdir()
        print("writing", flush=True)
        sys.stdin.readline()
        (tmp / "a").write_text("done")
""")


def write_folder(target: Path, writes: int) -> None:
    for write in range(writes):
        with atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "a").write_text(str(write))


def temporaries(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.endswith(".tmp"))


def environment() -> dict:
    """PYTHONPATH for the child processes: the library version this process imported (they run in a
    temporary folder, as `python -c` puts the working folder first on sys.path)."""
    return {**os.environ, "PYTHONPATH": str(Path(files.__file__).resolve().parent.parent)}


def dead_writers(ending: str, writers: int, writes: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "shared"
        if ending == "forked child":
            context = multiprocessing.get_context("fork")
            processes = [context.Process(target=write_folder, args=(target, writes)) for _ in range(writers)]
            for process in processes:
                process.start()
            for process in processes:
                process.join()
        else:
            processes = [subprocess.Popen([sys.executable, "-c", WRITE_THEN_END, str(target), str(writes), ending],
                                          env=environment(), cwd=folder) for _ in range(writers)]
            for process in processes:
                process.wait()
        left = len(temporaries(Path(folder)))
        time.sleep(files.REPLACED_KEPT_S + 0.5)
        with atomic_path(Path(folder) / "other") as tmp:
            tmp.write_text("another target")
        return {"ending": ending, "left_by_writers": left, "left_after_a_write_of_another_target":
                len(temporaries(Path(folder)))}


def can_unshare() -> bool:
    try:
        return subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True,
                              timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def other_namespace(same_target: bool) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        held = Path(folder) / "held"
        live = subprocess.Popen([sys.executable, "-c", WRITE_THEN_END, str(held), "0", "hold"], env=environment(),
                                cwd=folder, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert live.stdout.readline() == "writing\n"
        before = temporaries(Path(folder))
        subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", WRITE_THEN_END,
                        str(held if same_target else Path(folder) / "other"), "1", "os._exit"],
                       env=environment(), cwd=folder, check=True)
        survived = [name for name in before if name in temporaries(Path(folder))]
        live.communicate("finish\n", timeout=60)
        return {"target": "the same" if same_target else "another", "live_temporaries": len(before),
                "survived": len(survived), "live_writer_finished": live.returncode == 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rows = [dead_writers(ending, args.writers, args.writes) for ending in ("os._exit", "SIGTERM", "forked child")]
    report = {"library": str(Path(files.__file__).resolve()), "python": platform.python_version(),
              "writers": args.writers, "writes": args.writes, "dead_writers": rows,
              "other_pid_namespace": [other_namespace(same) for same in (True, False)] if can_unshare()
              else "skipped: unshare --pid not allowed"}
    for row in rows:
        print(f"{row['ending']:>13}: {row['left_by_writers']:4d} temporaries left by {args.writers} writers x "
              f"{args.writes} writes; {row['left_after_a_write_of_another_target']:4d} after a write of another target")
    for row in report["other_pid_namespace"] if can_unshare() else []:
        print(f"a write of {row['target']} target from another PID namespace: {row['survived']} of "
              f"{row['live_temporaries']} live temporaries survived; live writer finished: {row['live_writer_finished']}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
