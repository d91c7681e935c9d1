"""Everything that decides a run's digits besides code, data and hardware, fixed: seeds, torch's
thread count, deterministic algorithms.

* `set_seed`: Python, NumPy and torch seeded, cuDNN deterministic;
* `make_reproducible`: that, plus the thread count and torch's deterministic algorithms.

The loaders seed their samplers and workers from their own `seed` argument (`helpers.batching`).
"""
from __future__ import annotations

import random

import numpy as np
import torch


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) and make cuDNN deterministic."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def make_reproducible(seed: int, threads: int | None = None) -> dict:
    """Everything that decides a run's digits besides code, data and hardware, fixed.

    Seeds Python, NumPy and torch (`set_seed`), fixes torch's intra-op thread count to
    `threads` (None keeps the current count; a different count sums in a different
    order), and switches torch to its deterministic algorithms where it has them
    (`warn_only`: an operation without one warns instead of failing).
    On CUDA, cuBLAS is deterministic only with the environment variable
    `CUBLAS_WORKSPACE_CONFIG` set (":4096:8") before its first use; this function does not
    touch the environment (a library module takes explicit arguments): the course layer
    (`helpers.course.start_lesson`) sets it, and a script of your own on a GPU should too.
    The loaders seed their samplers and workers from their own `seed` argument.
    Returns {"seed", "threads"}, for the run's record.
    """
    if threads is not None:
        if int(threads) < 1:
            raise ValueError(f"threads must be at least 1, not {threads}")
        torch.set_num_threads(int(threads))
    torch.use_deterministic_algorithms(True, warn_only=True)
    set_seed(seed)
    return {"seed": int(seed), "threads": torch.get_num_threads()}
