"""Timing calls to the API: each call's milliseconds, and their percentiles.

    times = time_calls(lambda: handler.sentiment(event), n=300)      # ms of each call, after a warm-up
    latency_summary(times)                                            # {"n", "mean_ms", "p50_ms", "p90_ms", "p99_ms"}

Used by benchmarks/bench_deployment.py and lesson 7. Percentiles are nearest-rank on the sorted
times (no interpolation), so every figure is a time one call really took.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

PERCENTILES = (50, 90, 99)


def percentile(values: Sequence[float], q: float) -> float:
    """The value at percentile `q` (0-100) of `values`: the sorted values' element nearest to that rank."""
    if not values:
        raise ValueError("percentile of no values: time at least one call")
    if not 0 <= q <= 100:
        raise ValueError(f"a percentile is between 0 and 100, not {q}")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def time_calls(call: Callable[[], object], n: int, warmup: int = 20) -> list[float]:
    """Milliseconds of each of `n` calls of `call()`, one after another, after `warmup` untimed calls (the
    first calls pay one-off costs: caches, lazy set-up). An exception from `call` ends the timing."""
    if n < 1:
        raise ValueError(f"time at least one call, not {n}")
    for _ in range(warmup):
        call()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return times


def latency_summary(times_ms: Sequence[float], percentiles: Sequence[float] = PERCENTILES) -> dict:
    """{"n", "mean_ms", "p<q>_ms" for each of `percentiles`} of call times in milliseconds."""
    quantiles = {f"p{q:g}_ms": percentile(times_ms, q) for q in percentiles}   # raises on no times
    return {"n": len(times_ms), "mean_ms": statistics.fmean(times_ms), **quantiles}
