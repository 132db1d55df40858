"""Timing helpers: interleaved repeats and medians, so both sides see the same machine state."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def per_call(fn: Callable[[], object], min_seconds: float = 0.05) -> float:
    """Seconds per call of `fn`, over a batch long enough to dwarf the clock's resolution."""
    fn()
    count = 1
    while True:
        start = time.perf_counter()
        for _ in range(count):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return elapsed / count
        count *= 2


def compare(
    candidate: Callable[[], object], reference: Callable[[], object], rounds: int = 15,
    min_seconds: float = 0.05,
) -> tuple[float, float]:
    """Median seconds per call of candidate and reference, measured alternately."""
    ours, theirs = [], []
    for _ in range(rounds):
        ours.append(per_call(candidate, min_seconds))
        theirs.append(per_call(reference, min_seconds))
    return statistics.median(ours), statistics.median(theirs)
