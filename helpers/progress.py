"""One progress bar for everything long (tokenizing, parsing vectors, training), shown only to a person watching.

A live bar helps someone waiting at a notebook or a terminal; in a batch run (papermill,
the course runner, nbval, a script with its output redirected) every redraw would be
stored in the executed notebook or the log, hundreds of lines that say nothing. So the
bars show only in interactive use, decided by `interactive()`; training then prints its
one line per epoch either way.
"""
from __future__ import annotations

import sys

from tqdm import tqdm


def _kernel_request_allows_input() -> bool | None:
    """In a Jupyter kernel: whether the cell now running was sent by a front end that can answer `input()`
    (JupyterLab, Notebook, VS Code, Colab do; papermill, nbclient and nbval execute with `allow_stdin`
    False). None outside a kernel, or when the kernel does not say."""
    try:
        from IPython import get_ipython   # deferred: optional, absent outside Jupyter
    except ImportError:
        return None
    kernel = getattr(get_ipython(), "kernel", None)
    if kernel is None:
        return None
    try:
        request = kernel.get_parent("shell")          # ipykernel >= 6
    except (AttributeError, TypeError):
        request = getattr(kernel, "_parent_header", None)   # older kernels (some hosted ones)
    if not isinstance(request, dict) or "content" not in request:
        return None
    return bool(request["content"].get("allow_stdin", False))


def interactive(stream=None) -> bool:
    """True when a person is likely watching the output: a notebook cell run from a front end, or a terminal
    (`stream`, default stderr, is a tty)."""
    from_kernel = _kernel_request_allows_input()
    if from_kernel is not None:
        return from_kernel
    stream = stream or sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


def progress(iterable=None, desc: str = "", total: int | None = None, unit: str = "it", leave: bool = True,
             mininterval: float = 2.0) -> tqdm:
    """A text tqdm bar on stderr, shown only when `interactive()`; otherwise a silent counter (same interface).

    Plain tqdm rather than `tqdm.auto`'s widgets: widgets need ipywidgets and do not survive
    in saved notebooks.
    """
    return tqdm(iterable, desc=desc, total=total, unit=unit, leave=leave, mininterval=mininterval, ncols=90,
                file=sys.stderr, disable=not interactive(sys.stderr))
