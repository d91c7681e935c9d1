"""One progress bar for everything long (tokenizing, parsing vectors, training)."""
from __future__ import annotations

import os
import sys

from tqdm import tqdm


def progress(iterable=None, desc: str = "", total: int | None = None, unit: str = "it", leave: bool = True,
             mininterval: float = 2.0) -> tqdm:
    """A text tqdm bar on stderr that reads well in Jupyter, in papermill logs and in a terminal.

    Plain tqdm rather than `tqdm.auto`'s widgets: widgets need ipywidgets, do not survive
    in executed notebooks, and vanish from papermill logs. `SENTIMENT_PROGRESS=0` hides them.
    """
    return tqdm(iterable, desc=desc, total=total, unit=unit, leave=leave, mininterval=mininterval, ncols=90,
                file=sys.stderr, disable=os.environ.get("SENTIMENT_PROGRESS", "1") == "0")
