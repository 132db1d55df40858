"""Seeds for an op's own `sample(rng)`: drawn by hypothesis, so a failure shrinks to one seed.

A property of a gate is a function of a seed that raises when the gate breaks it. hypothesis
(imported only here, and only when installed: it is a test dependency) explores seeds and
shrinks a failing one, so a report names the smallest seed to reproduce with
`op.sample(numpy.random.default_rng(seed))`. Without hypothesis, numpy draws the seeds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

SEEDS = 2**32
"""Seeds are drawn from 0 .. SEEDS - 1."""


class Violation(AssertionError):
    """A property does not hold at a point; the message says what and where."""


@dataclass(frozen=True)
class Counterexample:
    """The (shrunk) seed at which a property failed, and why; seed None: no seed to blame."""

    seed: int | None
    message: str


def describe(exc: BaseException) -> str:
    if isinstance(exc, Violation):
        return str(exc)
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def explore(prop: Callable[[int], None], examples: int, seed: int = 0) -> Counterexample | None:
    """Run `prop` on `examples` seeds; the smallest failing one found, or None if all pass."""
    try:
        import hypothesis  # noqa: F401 - only whether it is there
    except ImportError:
        return _with_numpy(prop, examples, seed)
    return _with_hypothesis(prop, examples, seed)


def _with_numpy(prop: Callable[[int], None], examples: int, seed: int) -> Counterexample | None:
    for drawn in np.random.default_rng(seed).integers(0, SEEDS, size=examples):
        try:
            prop(int(drawn))
        except Exception as exc:  # noqa: BLE001 - any failure of the gate is a finding
            return Counterexample(int(drawn), describe(exc))
    return None


def _with_hypothesis(
    prop: Callable[[int], None], examples: int, seed: int
) -> Counterexample | None:
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings
    from hypothesis import seed as fixed_seed
    from hypothesis import strategies as st

    failures: list[Counterexample] = []

    def run(sample_seed: int) -> None:
        try:
            prop(sample_seed)
        except Exception as exc:
            failures.append(Counterexample(sample_seed, describe(exc)))
            raise

    test = fixed_seed(seed)(settings(
        max_examples=examples, deadline=None, database=None, derandomize=False,
        phases=(Phase.generate, Phase.shrink), verbosity=Verbosity.quiet,
        report_multiple_bugs=False, suppress_health_check=list(HealthCheck), print_blob=False,
    )(given(st.integers(0, SEEDS - 1))(run)))
    try:
        test()
    except Exception as exc:  # noqa: BLE001 - hypothesis re-raises the shrunk failure
        # hypothesis replays the minimal failing example last; anything else is its own error
        return failures[-1] if failures else Counterexample(None, describe(exc))
    return None
