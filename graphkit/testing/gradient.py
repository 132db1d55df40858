"""The gradient check: the vjp against central differences, in float64, at sampled points.

Each point is one single-node graph run through `graphkit.check_op_at` (random directions, no
Jacobian), so a plugin's op is checked exactly as graphkit checks its own. A point where the
function has no derivative (gradcheck's kinks, e.g. Relu at 0) is skipped, not failed; a point
where the vjp's gradients are malformed is left to the contracts check, which names the fault.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from graphkit.gradcheck import check_op_at
from graphkit.opdef import OpDef
from graphkit.testing.contracts import vjp_problems_at
from graphkit.testing.points import blaming, draw
from graphkit.testing.report import Check
from graphkit.testing.seeds import Violation, explore

NAME = "gradient"


@dataclass
class _Tally:
    scored: int = 0
    """Points with at least one input not at a kink."""
    worst: float = 0.0
    kinks: int = 0
    integer_only: int = 0
    malformed: list[str] = field(default_factory=list)


def gradient_check(op: OpDef, examples: int, seed: int, tolerance: float) -> Check:
    """Passed when every checked point is within `tolerance` (relative error)."""
    if op.vjp is None:
        return Check(NAME, "skipped", "not differentiable (vjp=None)")
    tally = _Tally()

    def prop(sample_seed: int) -> None:
        point = draw(op, sample_seed)
        if not point.has_float:
            tally.integer_only += 1
            return
        with blaming(point):
            malformed = vjp_problems_at(op, point, np.dtype(np.float64))
            if malformed:
                tally.malformed.append(malformed[0])
                return
            report = check_op_at(op, point.fresh(np.float64), point.raw_attributes,
                                 tolerance=tolerance, seed=sample_seed)
        tally.kinks += bool(report.kinks)
        if report.errors:
            tally.scored += 1
            tally.worst = max(tally.worst, *report.errors.values())
        for name, error in report.errors.items():
            if not error <= tolerance:  # NaN fails too
                raise Violation(f"input {name}: relative error {error:.2e} > tolerance "
                                f"{tolerance:g} at {point.where()}")

    failure = explore(prop, examples, seed)
    if failure is not None:
        return Check(NAME, "failed", failure.message)
    notes = []
    if tally.kinks:
        notes.append(f"{tally.kinks} at a kink (no derivative) skipped")
    if tally.integer_only:
        notes.append(f"{tally.integer_only} without float inputs skipped")
    if tally.malformed:
        return Check(NAME, "skipped", f"the vjp's gradients are malformed, see the contracts "
                                      f"check ({tally.malformed[0]})")
    if not tally.scored:
        return Check(NAME, "skipped", "no sampled point could be checked: " + ", ".join(notes))
    return Check(NAME, "passed", f"worst relative error {tally.worst:.2e} (tolerance "
                                 f"{tolerance:g}) over {tally.scored} points"
                 + "".join(f"; {note}" for note in notes))
