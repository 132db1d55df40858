"""`check_gate`: the checks graphkit runs on its own ops, run on any op, each one named.

sample      sample(rng) exists and returns inputs and attributes the op accepts
gradient    the vjp against central differences (float64, random directions, kinks skipped)
contracts   float dtype kept, infer's shapes, deterministic, inputs untouched, vjp structure
attributes  defaults build, unknown names and wrongly typed values refused
onnx        the exported single-node model checks, runs and matches graphkit's forward

A check that raises is a failed check with the exception's text: a broken gate never stops the
others from being checked, nor the caller from getting a report.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from graphkit.opdef import OpDef
from graphkit.testing.attributes import attributes_check
from graphkit.testing.contracts import contracts_check
from graphkit.testing.gradient import gradient_check
from graphkit.testing.onnxrun import onnx_check
from graphkit.testing.points import draw
from graphkit.testing.report import Check, GateReport
from graphkit.testing.seeds import describe

CHECKS = ("sample", "gradient", "contracts", "attributes", "onnx")
NEEDS_SAMPLE = {"gradient", "contracts", "onnx"}


def check_gate(
    op: OpDef, *, examples: int = 20, seed: int = 0, tolerance: float = 1e-6
) -> GateReport:
    """Every check of `op` on `examples` points drawn by its sample (seeds from `seed`).

    `tolerance` is the largest relative gradient error that passes.
    """
    if not isinstance(op, OpDef):
        raise TypeError(f"check_gate takes an OpDef, got {type(op).__name__}")
    if examples < 1:
        raise ValueError(f"examples must be at least 1, got {examples}")
    runs: dict[str, Callable[[], Check]] = {
        "sample": lambda: _sample_check(op, seed),
        "gradient": lambda: gradient_check(op, examples, seed, tolerance),
        "contracts": lambda: contracts_check(op, examples, seed),
        "attributes": lambda: attributes_check(op, seed),
        "onnx": lambda: onnx_check(op, examples, seed),
    }
    checks: list[Check] = []
    with np.errstate(all="ignore"):  # a plugin's overflow is reported by the checks, not here
        for name in CHECKS:
            if name in NEEDS_SAMPLE and checks[0].status == "failed":
                checks.append(Check(name, "skipped", "needs a working sample() (see the sample "
                                                     "check)"))
                continue
            try:
                checks.append(runs[name]())
            except Exception as exc:  # noqa: BLE001 - a check never escapes, it fails
                checks.append(Check(name, "failed", describe(exc)))
    return GateReport(op, checks)


def _sample_check(op: OpDef, seed: int) -> Check:
    point = draw(op, seed)
    return Check("sample", "passed", f"valid inputs and attributes, e.g. {point.where()}")
