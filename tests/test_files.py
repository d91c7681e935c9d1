"""helpers.files.atomic_path: all-or-nothing writes, concurrent writers, and temporaries of killed writers."""
from __future__ import annotations

import importlib.util
import multiprocessing
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import helpers.files as files_module
from conftest import REPO_ROOT, entries
from helpers.files import ABANDONED_AFTER_S, atomic_path

WRITERS = 3
WRITES_PER_WRITER = 60
PAYLOAD_CHUNKS = 20  # each entry is written in pieces, so a reader of a half-written one would see it


def payload(writer: int, write: int) -> str:
    """A file's content: complete exactly when it starts with its header and ends with ':end'."""
    return f"{writer}:{write}:" + "x" * 1000 * PAYLOAD_CHUNKS + ":end"


def write_entry(target: Path, kind: str, writer: int, write: int) -> None:
    """One atomic write of `target`: a file, or a folder holding files a and b."""
    with atomic_path(target) as tmp:
        if kind == "folder":
            tmp.mkdir()
            paths = [tmp / "a", tmp / "b"]
        else:
            paths = [tmp]
        text = payload(writer, write)
        for path in paths:
            with open(path, "w", encoding="utf-8") as handle:
                for start in range(0, len(text), 1000):
                    handle.write(text[start:start + 1000])
                    handle.flush()


def problem_reading(target: Path, kind: str) -> str | None:
    """What is wrong with `target` as a reader finds it now, or None for a complete entry."""
    try:
        if kind == "folder":
            names = sorted(os.listdir(target))
            if names != ["a", "b"]:
                return f"folder holds {names}"
            texts = [(target / name).read_text(encoding="utf-8") for name in names]
        else:
            texts = [target.read_text(encoding="utf-8")]
    except OSError as err:
        return f"{type(err).__name__}: {err}"
    for text in texts:
        header = text.split(":", 2)[:2]
        if len(header) != 2 or text != payload(int(header[0]), int(header[1])):
            return f"incomplete entry of {len(text)} characters"
    return None


def writer_process(target: str, kind: str, writer: int, failures) -> None:
    for write in range(WRITES_PER_WRITER):
        try:
            write_entry(Path(target), kind, writer, write)
        except Exception as err:  # counted, not raised: the test reports every failure
            failures.put(f"writer {writer} write {write}: {type(err).__name__}: {err}")


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_concurrent_writers_of_one_target_never_fail_and_readers_see_complete_entries(tmp_path, monkeypatch):
    context = multiprocessing.get_context("fork")
    failures = context.Queue()
    targets = {"file": tmp_path / "file", "folder": tmp_path / "folder"}
    for kind, target in targets.items():
        write_entry(target, kind, writer=0, write=0)  # an entry exists before the race starts
    writers = [context.Process(target=writer_process, args=(str(target), kind, writer, failures))
               for kind, target in targets.items() for writer in range(1, WRITERS + 1)]
    for process in writers:
        process.start()
    reads, problems = 0, []
    while any(process.is_alive() for process in writers):
        for kind, target in targets.items():
            problem = problem_reading(target, kind)
            reads += 1
            if problem:
                problems.append(f"{kind}: {problem}")
    for process in writers:
        process.join()
    writer_failures = []
    while not failures.empty():
        writer_failures.append(failures.get())
    assert writer_failures == [] and problems == []
    assert reads > len(targets) and all(process.exitcode == 0 for process in writers)
    assert all(problem_reading(target, kind) is None for kind, target in targets.items())
    # the writers exited holding the folders they replaced last (kept for readers): the next write
    # removes those (at once here: they need not be kept REPLACED_KEPT_S), and this process deletes
    # its own once they have been kept long enough
    monkeypatch.setattr(files_module, "REPLACED_KEPT_S", 0)
    for kind, target in targets.items():
        write_entry(target, kind, writer=0, write=1)
    files_module._delete_replaced(wait=True)
    assert entries(tmp_path) == ["file", "folder"]


@pytest.fixture
def delete_replaced_at_once(monkeypatch):
    monkeypatch.setattr(files_module, "REPLACED_KEPT_S", 0)


def test_a_replaced_folder_is_kept_a_moment_for_readers_inside_it(tmp_path, monkeypatch):
    monkeypatch.setattr(files_module, "REPLACED_KEPT_S", 0.5)
    target = tmp_path / "entry"
    write_entry(target, "folder", writer=1, write=0)
    inside = os.open(target, os.O_RDONLY)  # a reader half-way through: it holds the old folder
    try:
        write_entry(target, "folder", writer=1, write=1)
        assert sorted(os.listdir(inside)) == ["a", "b"]
        with open(os.open("a", os.O_RDONLY, dir_fd=inside), encoding="utf-8") as handle:
            assert handle.read() == payload(1, 0)
        assert (target / "a").read_text(encoding="utf-8") == payload(1, 1)
        (kept,) = [name for name in entries(tmp_path) if name.endswith(".tmp")]
        time.sleep(0.6)
        write_entry(tmp_path / "other", "file", writer=1, write=0)  # any later write deletes what is due
        assert sorted(os.listdir(inside)) == [] and entries(tmp_path) == ["entry", "other"]
    finally:
        os.close(inside)


def test_folders_replace_each_other_without_the_one_step_swap(tmp_path, monkeypatch, delete_replaced_at_once):
    """Where renameat2 is missing the old folder is moved aside first; writes still succeed."""
    monkeypatch.setattr(files_module, "_exchange", lambda first, second: False)
    target = tmp_path / "entry"
    for write in range(3):
        write_entry(target, "folder", writer=1, write=write)
        assert problem_reading(target, "folder") is None and (target / "a").read_text().startswith(f"1:{write}:")
    with atomic_path(target) as tmp:  # a file may replace a folder, and the other way round
        tmp.write_text("now a file")
    assert target.read_text() == "now a file"
    write_entry(target, "folder", writer=2, write=0)
    assert problem_reading(target, "folder") is None
    assert entries(tmp_path) == ["entry"]


def test_atomic_path_keeps_target_on_error(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(ZeroDivisionError):
        with atomic_path(target) as tmp:
            tmp.write_text("new, half written", encoding="utf-8")
            1 / 0
    assert target.read_text(encoding="utf-8") == "old"
    assert entries(tmp_path) == ["out.txt"]


def test_atomic_path_folders(tmp_path, delete_replaced_at_once):
    target = tmp_path / "entry"
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "a").write_text("1")
    assert (target / "a").read_text() == "1"
    with pytest.raises(KeyError):
        with atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "b").write_text("2")
            raise KeyError("boom")
    assert entries(target) == ["a"] and entries(tmp_path) == ["entry"]
    with atomic_path(target) as tmp:  # success replaces the folder as a whole
        tmp.mkdir()
        (tmp / "b").write_text("2")
    assert entries(target) == ["b"] and entries(tmp_path) == ["entry"]
    with atomic_path(target) as tmp:  # and a file replaces a folder
        tmp.write_text("3")
    assert target.read_text() == "3" and entries(tmp_path) == ["entry"]


def test_a_block_that_writes_nothing_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing was written"):
        with atomic_path(tmp_path / "entry"):
            pass
    assert entries(tmp_path) == []


# ---------------------------------------------------------------------------- temporaries of killed writers

WRITER_SCRIPT = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    from helpers.files import atomic_path
    with atomic_path(Path(sys.argv[1])) as tmp:
        tmp.mkdir()
        (tmp / "part").write_bytes(b"x" * 100_000)
        print("writing", flush=True)
        if sys.argv[2] == "die":
            os.kill(os.getpid(), 9)  # killed mid-write: no cleanup runs
        sys.stdin.readline()  # a live writer: waits until told to finish
        (tmp / "done").write_text("yes")
""")


def start_writer(target: Path, how: str) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", WRITER_SCRIPT, str(target), how], cwd=REPO_ROOT,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "writing\n"
    return process


def temporaries(folder: Path) -> list[str]:
    return [name for name in entries(folder) if name.endswith(".tmp")]


def test_next_write_removes_the_temporary_of_a_killed_writer(tmp_path, delete_replaced_at_once):
    target = tmp_path / "entry"
    killed = start_writer(target, "die")
    assert killed.wait() == -9
    (left,) = temporaries(tmp_path)
    assert left.startswith(".entry.") and not target.exists()
    write_entry(target, "folder", writer=1, write=0)
    assert entries(tmp_path) == ["entry"] and problem_reading(target, "folder") is None


def test_a_live_writers_temporary_is_kept(tmp_path, delete_replaced_at_once):
    target = tmp_path / "entry"
    live = start_writer(target, "wait")
    try:
        (theirs,) = temporaries(tmp_path)
        write_entry(target, "folder", writer=1, write=0)  # another writer of the same target meanwhile
        assert temporaries(tmp_path) == [theirs]
        with atomic_path(target) as tmp:  # this process's own unfinished write is safe from itself too
            tmp.mkdir()
            write_entry(target, "folder", writer=1, write=1)
            (tmp / "mine").write_text("mine")
        assert entries(target) == ["mine"]
        out, _ = live.communicate("finish\n", timeout=30)
    finally:
        live.kill()
    assert live.returncode == 0
    assert entries(target) == ["done", "part"] and entries(tmp_path) == ["entry"]


def test_temporaries_whose_writer_cannot_be_checked_are_removed_after_a_day(tmp_path):
    target = tmp_path / "entry"
    old_format, recent_old_format = tmp_path / ".entry.abcd_123.tmp", tmp_path / ".entry.zyxw_987.tmp"
    other_machine = tmp_path / f".entry.1-{'0' * 8}.qwerty12.tmp"  # pid 1 elsewhere: cannot be asked
    unrelated = [tmp_path / ".entry.notes", tmp_path / ".entry.b.abcd_123.tmp"]  # another target's temporary
    for folder in (old_format, recent_old_format, other_machine, *unrelated):
        (folder / "entry").mkdir(parents=True)
    long_ago = time.time() - ABANDONED_AFTER_S - 60
    for folder in (old_format, other_machine, unrelated[0], unrelated[1]):
        for path in (folder / "entry", folder):
            os.utime(path, (long_ago, long_ago))
    write_entry(target, "file", writer=1, write=0)
    assert entries(tmp_path) == sorted(["entry", recent_old_format.name, *(path.name for path in unrelated)])


# ---------------------------------------------------------------------------- writers that end without cleaning up

# the benchmark's writer (benchmarks/bench_dead_writers.py): argv target, writes, ending
_spec = importlib.util.spec_from_file_location("bench_dead_writers", REPO_ROOT / "benchmarks" / "bench_dead_writers.py")
dead_writers_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dead_writers_bench)
ENDING_SCRIPT = dead_writers_bench.WRITE_THEN_END


def token_of(temporary: str) -> str:
    return files_module._TEMPORARY.fullmatch(temporary)["token"]


@pytest.mark.parametrize("ending", ["os._exit", "SIGTERM", "forked child"])
def test_any_later_write_in_the_folder_removes_what_writers_left_when_they_ended(tmp_path, monkeypatch, ending):
    """The issue's measurement in miniature: 4 writers x 10 writes of one folder, each ending without its
    exit handlers; a write of another target in the same folder removes everything they left."""
    shared, writers, writes = tmp_path / "shared", 4, 10
    if ending == "forked child":
        if "fork" not in multiprocessing.get_all_start_methods():
            pytest.skip("needs fork")
        context = multiprocessing.get_context("fork")
        processes = [context.Process(target=dead_writers_bench.write_folder, args=(shared, writes))
                     for _ in range(writers)]
        for process in processes:
            process.start()
        for process in processes:
            process.join()
        assert [process.exitcode for process in processes] == [0] * writers
    else:
        processes = [subprocess.Popen([sys.executable, "-c", ENDING_SCRIPT, str(shared), str(writes), ending],
                                      cwd=REPO_ROOT) for _ in range(writers)]
        assert [process.wait() for process in processes] == [0 if ending == "os._exit" else -15] * writers
    left = temporaries(tmp_path)
    assert len(left) >= writers  # each kept the folders it replaced last, for REPLACED_KEPT_S
    assert files_module._this_writer()[2] not in {token_of(name) for name in left}  # forked children drew their own
    monkeypatch.setattr(files_module, "REPLACED_KEPT_S", 0)  # their readers' time is over (not waited for here)
    write_entry(tmp_path / "other", "file", writer=0, write=0)
    assert entries(tmp_path) == ["other", "shared"] and entries(shared) == ["a"]  # one writer's last, whole


def test_a_dead_writers_replaced_folder_is_still_kept_a_moment_for_readers(tmp_path, monkeypatch):
    monkeypatch.setattr(files_module, "REPLACED_KEPT_S", 60.0)
    shared = tmp_path / "shared"
    writer = subprocess.run([sys.executable, "-c", ENDING_SCRIPT, str(shared), "3", "os._exit"], cwd=REPO_ROOT)
    assert writer.returncode == 0
    left = temporaries(tmp_path)
    write_entry(tmp_path / "other", "file", writer=0, write=0)
    assert temporaries(tmp_path) == left  # replaced under a second ago: a reader may be inside
    for name in left:
        for path in (tmp_path / name, *(tmp_path / name).iterdir()):
            os.utime(path, (time.time() - 61, time.time() - 61))
    write_entry(tmp_path / "other", "file", writer=0, write=1)
    assert temporaries(tmp_path) == []


def named_temporary(folder: Path, target: str, pid: int, namespace: str, token: str) -> Path:
    """A temporary as a writer with that pid, namespace tag and token names it, holding a folder entry."""
    path = folder / f".{target}.{pid}-{namespace}-{token}.abcd1234.tmp"
    (path / target).mkdir(parents=True)
    return path


def make_old(path: Path, seconds: float) -> None:
    for entry in (path, *path.iterdir()):
        os.utime(entry, (time.time() - seconds, time.time() - seconds))


def test_writers_with_the_same_host_name_and_pid_never_delete_each_others_live_temporaries(tmp_path, monkeypatch):
    """Containers sharing a cache: same host name, and often the same pid (1, 7, ...); the writers differ
    in PID namespace and token. Simulated here by this process taking another writer's identity."""
    pid, namespace, token = files_module._this_writer()
    other_namespace, other_token = "0123456789ab", "ba9876543210"
    with atomic_path(tmp_path / "a") as mine:  # writer A's live write
        mine.mkdir()
        for identity in [(pid, other_namespace, other_token), (pid, namespace, other_token)]:
            monkeypatch.setattr(files_module, "_writer", identity)  # writer B: same host name and pid
            write_entry(tmp_path / "b", "file", writer=1, write=0)
            assert (mine.parent / "a").is_dir()
        monkeypatch.setattr(files_module, "_writer", (pid, namespace, token))
        (mine / "done").write_text("yes")
    assert entries(tmp_path / "a") == ["done"] and entries(tmp_path) == ["a", "b"]


def test_a_temporary_from_another_pid_namespace_waits_a_day_even_if_its_pid_runs_nothing_here(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)  # ended: no process here has this id (until one reuses it)
    _, namespace, _ = files_module._this_writer()
    other = named_temporary(tmp_path, "x", pid, "0123456789ab", "ba9876543210")  # a container's live writer
    same = named_temporary(tmp_path, "x", pid, namespace, "ba9876543210")  # this namespace: provably dead
    make_old(same, 10)
    write_entry(tmp_path / "y", "file", writer=1, write=0)
    assert temporaries(tmp_path) == [other.name]
    make_old(other, ABANDONED_AFTER_S + 60)
    write_entry(tmp_path / "y", "file", writer=1, write=1)
    assert entries(tmp_path) == ["y"]


NAMESPACED = ["unshare", "--pid", "--fork", "--mount-proc"]


@pytest.mark.skipif(not sys.platform.startswith("linux") or not dead_writers_bench.can_unshare(),
                    reason="needs permission to make PID namespaces (unshare --pid)")
def test_writers_in_other_pid_namespaces_never_delete_each_others_live_temporaries(tmp_path, monkeypatch):
    """Real PID namespaces: a writer in this one, and two that are each process 1 of their own."""
    monkeypatch.setattr(files_module, "REPLACED_KEPT_S", 0)
    live = [start_writer(tmp_path / "here", "wait")]
    for name in ("ns1", "ns2"):
        process = subprocess.Popen([*NAMESPACED, sys.executable, "-c", WRITER_SCRIPT, str(tmp_path / name), "wait"],
                                   cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert process.stdout.readline() == "writing\n"
        live.append(process)
    try:
        held = temporaries(tmp_path)
        writers = {files_module._TEMPORARY.fullmatch(name)["pid"] for name in held}
        namespaces = {files_module._TEMPORARY.fullmatch(name)["namespace"] for name in held}
        assert len(held) == 3 and "1" in writers and len(namespaces) == 3
        # a write in yet another namespace, where this test's writer's pid runs nothing, and one here
        other = subprocess.run([*NAMESPACED, sys.executable, "-c", ENDING_SCRIPT, str(tmp_path / "other"), "1",
                                "os._exit"], cwd=REPO_ROOT)
        assert other.returncode == 0
        write_entry(tmp_path / "mine", "file", writer=1, write=0)
        assert temporaries(tmp_path) == held
        for process in live:
            process.communicate("finish\n", timeout=30)
            assert process.returncode == 0
    finally:
        for process in live:
            process.kill()
    write_entry(tmp_path / "mine", "file", writer=1, write=1)
    assert entries(tmp_path) == ["here", "mine", "ns1", "ns2", "other"]
    assert all(entries(tmp_path / name) == ["done", "part"] for name in ("here", "ns1", "ns2"))
