"""Where data lives, safe writes, checksums and verified downloads.

Everything that touches the disk goes through here so that a crash or a bad
download never leaves a half-written file behind: writers write to a temporary
name in the same folder and rename it into place only when complete.
"""
from __future__ import annotations

import atexit
import contextlib
import ctypes
import errno
import functools
import hashlib
import os
import re
import secrets
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

# Where downloads and prepared caches go when a caller passes no folder (`cache=None`). No module writes it:
# the course layer passes its run's own folder (SENTIMENT_CACHE_DIR, else this one) as `cache=`; only the
# tests point it at a temporary folder.
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "sentiment-tutorials"


class DataError(RuntimeError):
    """A data file is missing, corrupt or shaped wrongly; the message names the file."""


def data_dir(explicit: str | os.PathLike | None = None) -> Path | None:
    """The local data folder `explicit` as an absolute path, or None (download) when it is None or "".

    A relative path is taken from the current folder; a folder that does not exist is an
    error rather than a silent fallback to downloading.
    """
    if explicit in (None, ""):
        return None
    path = Path(explicit).expanduser().resolve()
    if not path.is_dir():
        raise DataError(f"data directory {path} does not exist (pass an existing folder, or none to download)")
    return path


def cache_dir(explicit: str | os.PathLike | None = None) -> Path:
    """Folder for downloads and prepared caches: `explicit`, else `DEFAULT_CACHE_DIR`
    (`~/.cache/sentiment-tutorials`). Created if missing."""
    path = Path(explicit or DEFAULT_CACHE_DIR).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


# Temporaries beside a target are named `.<target name>.<writer>.<8 random>.tmp`, where <writer> is
# `<pid>-<namespace>-<token>`: the writer's process id, 12 hex digits naming the PID namespace that id
# belongs to (`_namespace_tag`), and 12 random hex digits drawn once per process (again in a forked child),
# so that no writer takes another's temporary for its own, even one with the same host name and id.
_TEMPORARY = re.compile(r"\..+\.(?P<pid>\d+)-(?P<namespace>[0-9a-f]{12})-(?P<token>[0-9a-f]{12})\.[a-z0-9_]{8}\.tmp")
# Older versions named them `.<target name>.<pid>-<host>.<8 random>.tmp` or `.<target name>.<8 random>.tmp`;
# that shape is less distinctive, so it is only matched after the prefix of the target being written.
_OLDER_TEMPORARY = re.compile(r"(?:\d+-[0-9a-f]{8}\.)?[a-z0-9_]{8}\.tmp")
# A temporary whose writer cannot be checked (another machine, container or boot, the older naming, a system
# whose processes cannot be asked about) counts as abandoned once it has been left untouched this long: far
# longer than any cache write takes.
ABANDONED_AFTER_S = 24 * 3600
# A folder replaced by a newer one is kept this long (inside its writer's temporary) before it is deleted,
# so that a reader who was already inside it (listing it, or half-way through resolving a path in it) can
# finish. Deleted by the writer's next atomic_path call after that, or when its interpreter exits; if the
# writer ends without either (os._exit, a signal, a forked child), by any later atomic_path call in the folder.
REPLACED_KEPT_S = 2.0
_replaced: list[tuple[float, Path]] = []  # (when it may go, time.monotonic(); the temporary holding it)
_replaced_lock = threading.Lock()
_RENAME_EXCHANGE = 2  # linux/fs.h: swap two existing paths in one step
_AT_FDCWD = -100
# what a move meets when another writer moved or replaced the target between our check and our move
_LOST_RACE = (errno.ENOENT, errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR, errno.ENOTDIR)
_writer: tuple[int, str, str] | None = None  # this process's (pid, namespace tag, token), made on first use


def _namespace_tag() -> str:
    """12 hex digits naming the space in which this process's id is unique, or 12 random ones where
    that cannot be told.

    On Linux: the host name, the boot (boot_id) and the PID namespace (each container has its own, and
    ids repeat across them); two writers with the same tag can ask about each other's process ids. On
    other POSIX systems, which have no PID namespaces: the host name. Where /proc cannot be read, or
    processes cannot be asked about (Windows): a random tag that no other process shares, so that other
    writers leave this one's temporaries alone until ABANDONED_AFTER_S.
    """
    parts = [socket.gethostname()]
    if sys.platform.startswith("linux"):
        try:
            parts += [Path("/proc/sys/kernel/random/boot_id").read_text().strip(), os.readlink("/proc/self/ns/pid")]
        except OSError:
            return secrets.token_hex(6)
    elif os.name != "posix":
        return secrets.token_hex(6)
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


def _this_writer() -> tuple[int, str, str]:
    """(pid, namespace tag, token) of this process, as its temporaries are named."""
    global _writer
    if _writer is None or _writer[0] != os.getpid():
        _writer = (os.getpid(), _namespace_tag(), secrets.token_hex(6))
    return _writer


def _after_fork_in_child() -> None:
    """A forked child is a new writer (its own token, maybe in another PID namespace) and holds none of
    the parent's replaced folders: those stay the parent's to delete."""
    global _writer, _replaced, _replaced_lock
    _writer, _replaced, _replaced_lock = None, [], threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


@functools.lru_cache(maxsize=1)
def _renameat2():
    """Linux's renameat2 from the C library, or None where there is none (macOS, Windows, old glibc)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


def _exchange(first: Path, second: Path) -> bool:
    """Swap two existing paths in one step; False where the system or file system cannot.

    Raises OSError (e.g. FileNotFoundError when `second` has gone) for other failures.
    """
    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(second))


def _move_into_place(new: Path, target: Path, scratch: Path) -> None:
    """Put the complete entry `new` at `target`; whatever was at `target` ends up inside `scratch`.

    A file onto a file (or onto nothing) is one os.replace. Otherwise an existing target is swapped with
    the new entry in one step, so readers always find a complete entry; where that swap is not available
    the old entry is moved aside first and readers may briefly find nothing. Other writers may put their
    own entries in place at the same time: each step that loses such a race is tried again.
    """
    if not os.path.lexists(new):
        raise FileNotFoundError(f"nothing was written at {new}")
    for attempt in range(1000):
        if not _is_folder(new) and not _is_folder(target):
            os.replace(new, target)
            return
        try:
            if not os.path.lexists(target):
                os.rename(new, target)  # fails if another writer's entry got there first: then swap
            elif not _exchange(new, target):
                os.rename(target, scratch / f"replaced-{attempt}")
                os.rename(new, target)
            return
        except OSError as err:
            if err.errno not in _LOST_RACE:
                raise
    raise OSError(f"could not move {new} onto {target}: other writers kept replacing it")


def _is_folder(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def _writer_alive(pid: int) -> bool | None:
    """Whether process `pid` runs in this process's PID namespace; None where that cannot be asked safely."""
    if os.name != "posix":  # os.kill on Windows would end the process rather than probe it
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, under another user
        return True
    except OverflowError:  # no process has such an id: a name not made by atomic_path
        return None
    return True


def _last_touched(temporary: Path) -> float:
    """The latest mtime of a temporary folder and of the entries directly in it: its writer's last step."""
    times = [os.lstat(temporary).st_mtime]
    with os.scandir(temporary) as found:
        times += [entry.stat(follow_symlinks=False).st_mtime for entry in found]
    return max(times)


def _abandoned(temporary: Path, target_name: str) -> bool:
    """Whether `temporary` (an entry beside the target `target_name`) is a temporary whose writer is gone.

    One named with this process's PID namespace (`_namespace_tag`) is abandoned once its process id runs
    nothing and it has been left REPLACED_KEPT_S (a reader may still be inside a folder it replaced); a
    live process under the id, even one reusing it, keeps it until that process ends. Any other (another
    machine, container or boot, the older naming) is abandoned once left untouched for ABANDONED_AFTER_S.
    This process's own temporaries are never abandoned. Raises OSError when `temporary` has gone.
    """
    match = _TEMPORARY.fullmatch(temporary.name)
    if match is None:
        prefix = f".{target_name}."
        if not (temporary.name.startswith(prefix) and _OLDER_TEMPORARY.fullmatch(temporary.name[len(prefix):])):
            return False  # not a temporary: another file
        left_for = ABANDONED_AFTER_S
    else:
        this = _this_writer()
        writer = (int(match["pid"]), match["namespace"], match["token"])
        if writer == this:
            return False
        alive = _writer_alive(writer[0]) if writer[1] == this[1] else None
        if alive:
            return False
        left_for = ABANDONED_AFTER_S if alive is None else REPLACED_KEPT_S
    return time.time() - _last_touched(temporary) >= left_for


def _remove_abandoned_temporaries(target: Path) -> None:
    """Delete the temporaries in `target`'s folder, of any target, whose writers are gone (`_abandoned`)."""
    try:
        names = [name for name in os.listdir(target.parent) if name.startswith(".") and name.endswith(".tmp")]
    except OSError:
        return
    for name in names:
        temporary = target.parent / name
        try:
            if _abandoned(temporary, target.name):
                shutil.rmtree(temporary, ignore_errors=True)
        except OSError:
            continue  # gone already (another writer cleaned it up), or not a folder, so not a temporary of ours


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike):
    """Yield a temporary path beside `target`; move it onto `target` only if the block succeeds.

    Works for files and folders (the block creates whichever it likes at the yielded path, which has
    `target`'s name). On error the temporary is removed and `target` is untouched.

    Safe for concurrent writers of the same target: each writes its own temporary and the last to
    finish wins; no writer fails because of another. A reader opening `target`, or a file inside a
    target folder, finds the old or the new complete entry, never a missing or half-written one: files
    move with os.replace, and a folder replaces an existing one by swapping the two in one step
    (Linux's renameat2 RENAME_EXCHANGE); the old folder is deleted REPLACED_KEPT_S later, so a reader
    already inside it can finish. Where that swap does not exist (macOS, Windows, some network file
    systems) the old folder is moved aside first, so a reader may briefly find no folder. A reader that
    opens several files of a folder while writers replace it may get them from different complete entries.

    Every call deletes the temporaries in the target's folder, of any target, whose writer is gone: one
    that was killed or ended without cleaning up (os._exit, a signal, a forked child). A live writer's
    temporary is never touched, whichever host, container or PID namespace it writes from (`_abandoned`).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _delete_replaced()
    _remove_abandoned_temporaries(target)
    pid, namespace, token = _this_writer()
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.{pid}-{namespace}-{token}.", suffix=".tmp",
                                    dir=target.parent))
    replaced = False
    try:
        yield scratch / target.name
        _move_into_place(scratch / target.name, target, scratch)
        replaced = any(scratch.iterdir())  # the old entry, moved here when a folder was involved
    finally:
        if replaced and REPLACED_KEPT_S > 0:
            with _replaced_lock:
                _replaced.append((time.monotonic() + REPLACED_KEPT_S, scratch))
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def _delete_replaced(wait: bool = False) -> None:
    """Delete the folders this process replaced whose REPLACED_KEPT_S is over (`wait`: all of them, once
    it is). Runs at the start of every atomic_path call and, waiting, when the interpreter exits."""
    with _replaced_lock:
        due = [entry for entry in _replaced if wait or entry[0] <= time.monotonic()]
        for entry in due:
            _replaced.remove(entry)
    for when, scratch in sorted(due):
        time.sleep(max(0.0, when - time.monotonic()))
        shutil.rmtree(scratch, ignore_errors=True)


atexit.register(_delete_replaced, wait=True)


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(url: str, sha256: str | None, filename: str, cache: str | os.PathLike | None = None) -> Path:
    """Download `url` into `<cache>/downloads/<filename>` once and return its path.

    The file is checked against `sha256` (hex) before it is kept; a file already in
    the cache is re-checked, and a mismatch there means a fresh download. Pooch
    writes to a temporary file and moves it into place, so a failed or truncated
    download leaves nothing behind. Raises DataError naming the URL on failure.
    """
    import pooch  # deferred: only the download path needs it

    folder = cache_dir(cache) / "downloads"
    try:
        path = pooch.retrieve(
            url,
            known_hash=f"sha256:{sha256}" if sha256 else None,
            fname=filename,
            path=folder,
            progressbar=True,
        )
    except ValueError as err:  # pooch's hash mismatch
        raise DataError(f"checksum mismatch for {url}: the download is corrupt or incomplete ({err})") from None
    except Exception as err:  # network errors come from requests, whose classes we need not import
        raise DataError(
            f"could not download {url}: {err}. Without internet, put a local copy in a data "
            "directory and set SENTIMENT_DATA_DIR (see README)."
        ) from None
    return Path(path)
