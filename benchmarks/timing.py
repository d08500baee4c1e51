"""Timing shared by the microbenchmarks: the best of several runs of a jitted function."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax


def best_seconds(run: Callable[[Any], Any], arg: Any, repeats: int) -> float:
    """Seconds of the fastest of `repeats` calls of `run(arg)`, after one warm-up call that
    compiles it (each call waits for its result)."""
    jax.block_until_ready(run(arg))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(run(arg))
        best = min(best, time.perf_counter() - start)
    return best
