"""Timing helpers: interleaved repeats and medians, so both sides see the same machine state."""

from __future__ import annotations

import gc
import signal
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


def per_call(
    fn: Callable[[], object], min_seconds: float = 0.05, collector: bool = False
) -> float:
    """Seconds per call of `fn`, over a batch long enough to dwarf the clock's resolution.

    As timeit does, the cyclic garbage collector is off during a batch (unless `collector`)
    and runs between batches: otherwise a batch pays for collecting whatever ran before it left
    (micrograd leaves much: each Value's closure refers back to it), at a cost that grows with
    everything else alive in the process."""
    fn()
    count = 1
    while True:
        gc.collect()
        enabled = gc.isenabled()
        if not collector:
            gc.disable()
        try:
            start = time.perf_counter()
            for _ in range(count):
                fn()
            elapsed = time.perf_counter() - start
        finally:
            if enabled:
                gc.enable()
        if elapsed >= min_seconds:
            return elapsed / count
        count *= 2


def steady(fn: Callable[[], object], plan: Any, limit: float = 120.0) -> str:
    """Run `fn` (which runs `plan`) until graphkit has compiled every program of the plan it
    runs, as a training loop soon would (execute.py compiles a plan once the time spent
    interpreting it reaches the estimated cost of compiling it). Timings then measure the
    steady state, as benchmarks of JIT-compiling runtimes do. Returns a note saying how long
    that took."""
    from graphkit.codegen import Compiled

    start = time.perf_counter()
    runs = 0
    while True:
        fn()
        runs += 1
        states = list(plan._compiled.values())
        if states and all(isinstance(state, Compiled) for state in states):
            break
        if time.perf_counter() - start > limit:
            return f"not compiled after {runs} runs ({limit:.0f} s): interpreted"
    return f"compiled after {runs} runs ({time.perf_counter() - start:.2f} s)"


def compare(
    candidate: Callable[[], object], reference: Callable[[], object], rounds: int = 15,
    min_seconds: float = 0.05,
) -> tuple[float, float]:
    """Median seconds per call of candidate and reference, measured alternately."""
    ours, theirs = compare_all([candidate, reference], rounds, min_seconds)
    return ours, theirs


def compare_all(
    fns: list[Callable[[], object]], rounds: int = 15, min_seconds: float = 0.05
) -> list[float]:
    """Median seconds per call of each of `fns`, measured in turn, round after round."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for fn, found in zip(fns, times, strict=True):
            found.append(per_call(fn, min_seconds))
    return [statistics.median(found) for found in times]


def once(fn: Callable[[], Any], limit: float = 0) -> tuple[float, Any]:
    """Seconds of one call of `fn`, and its result; Timeout after `limit` seconds (if > 0).
    The call starts after a full garbage collection and runs with the collector on:
    collecting the garbage of a big load is part of what it costs."""
    gc.collect()
    with time_limit(limit):
        start = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - start
    return elapsed, result


class Timeout(Exception):
    """A measurement ran past its time limit."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise Timeout in the block after `seconds` (checked between Python bytecodes: a long
    call into C, such as one protobuf parse, finishes first). Unix main thread only; elsewhere
    the block runs without a limit."""
    if sys.platform == "win32" or seconds <= 0:
        yield
        return

    def expire(_signum: int, _frame: object) -> None:
        raise Timeout(f"over {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def progress(message: str) -> None:
    """A progress line on stderr, so stdout holds only the header and the table."""
    print(message, file=sys.stderr, flush=True)
