"""helpers.reproducibility: seeds, threads and deterministic algorithms; the environment left alone."""
import os
import random

import numpy as np
import pytest
import torch

from helpers.reproducibility import make_reproducible


def test_make_reproducible_repeats_every_random_stream():
    threads = torch.get_num_threads()
    try:
        assert make_reproducible(7, threads=1) == {"seed": 7, "threads": 1}
        assert torch.get_num_threads() == 1 and torch.are_deterministic_algorithms_enabled()
        first = (random.random(), np.random.rand(), torch.rand(1).item())
        make_reproducible(7)
        assert (random.random(), np.random.rand(), torch.rand(1).item()) == first
        with pytest.raises(ValueError, match="threads"):
            make_reproducible(7, threads=0)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(False)


def test_make_reproducible_leaves_the_environment_to_the_course_layer(monkeypatch):
    """CUBLAS_WORKSPACE_CONFIG is the course layer's to set (a library module writes no environment)."""
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = dict(os.environ)
    try:
        make_reproducible(3)
        assert dict(os.environ) == before
    finally:
        torch.use_deterministic_algorithms(False)
