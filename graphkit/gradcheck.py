"""Numerical gradient checks: analytic gradients against central differences, in float64.

Each check projects on random directions v: (f(x + h v) - f(x - h v)) / 2h must equal
<grad, v>. No Jacobian is built, so big tensors cost a few runs, not one per element.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from graphkit.execute import execute
from graphkit.graph import validate
from graphkit.hookspecs import hookimpl
from graphkit.model import FLOAT_DTYPES, Constant, Graph, Tensor, ValueInfo
from graphkit.opdef import OpDef
from graphkit.plan import Plan, compile_plan
from graphkit.registry import Registry

KINK_TOLERANCE = 1e-3
"""One-sided differences further apart than this (relative) mark a point with no derivative:
smooth functions differ by about |f''| * eps there, a kink by the jump in slope."""


@dataclass
class GradcheckReport:
    """The worst relative error per checked value; `ok` when every one is within tolerance."""

    errors: dict[str, float]
    tolerance: float
    details: dict[str, Any] = field(default_factory=dict)
    kinks: list[str] = field(default_factory=list)
    """Values at which the function has no derivative (one-sided differences disagree, as for
    Relu at exactly 0): there is nothing to check, so they are listed rather than scored."""

    @property
    def ok(self) -> bool:
        return all(error <= self.tolerance for error in self.errors.values())

    @property
    def worst(self) -> float:
        return max(self.errors.values(), default=0.0)


def relative_error(analytic: float, numeric: float) -> float:
    return abs(analytic - numeric) / max(1.0, abs(analytic), abs(numeric))


def _as_float64(graph: Graph) -> Graph:
    """The same graph with every float input and constant in float64."""
    inputs = [
        i.model_copy(update={"dtype": "float64"}) if i.dtype in FLOAT_DTYPES else i
        for i in graph.inputs
    ]
    constants = []
    for c in graph.constants:
        if c.dtype in FLOAT_DTYPES and c.dtype != "float64":
            tensor = Tensor.from_numpy(c.to_numpy().astype(np.float64))
            c = Constant(name=c.name, trainable=c.trainable, **tensor.model_dump(exclude_none=True))
        constants.append(c)
    return graph.model_copy(update={"inputs": inputs, "constants": constants})


def gradcheck(
    graph: Graph,
    inputs: Mapping[str, Any],
    wrt: Any = "all",
    of: str | None = None,
    directions: int = 4,
    eps: float = 1e-6,
    tolerance: float = 1e-6,
    seed: int = 0,
    registry: Registry | None = None,
) -> GradcheckReport:
    """Compare `execute`'s gradients with central differences, in float64, per value."""
    graph64 = _as_float64(graph)
    plan = compile_plan(validate(graph64, registry))
    float_inputs = {
        name: np.asarray(v, dtype=np.float64 if _is_float_input(graph64, name, v) else None)
        for name, v in inputs.items()
    }
    rng = np.random.default_rng(seed)
    base = execute(plan, float_inputs, wrt=wrt, of=of)
    output_name = of or plan.outputs[0][0]
    weights = rng.standard_normal(np.shape(base.outputs[output_name]))
    weighted = execute(plan, float_inputs, wrt=wrt, of=of, seed=weights)
    constants = {name: array for name, _slot, array in plan.constants}
    errors: dict[str, float] = {}
    kinks: list[str] = []
    for name, grad in weighted.gradients.items():
        if name not in float_inputs and name not in constants:
            continue  # an intermediate value: no way to perturb it from outside
        worst = 0.0
        for _ in range(directions):
            direction = rng.standard_normal(np.shape(grad))
            numeric, smooth = _directional(plan, float_inputs, constants, name, direction, eps,
                                           output_name, weights)
            if not smooth:  # e.g. Relu at exactly 0: no derivative there to compare with
                kinks.append(name)
                break
            worst = max(worst, relative_error(float(np.sum(grad * direction)), numeric))
        else:
            errors[name] = worst
    return GradcheckReport(errors, tolerance, kinks=kinks)


def _is_float_input(graph: Graph, name: str, value: Any) -> bool:
    for info in graph.inputs:
        if info.name == name:
            return info.dtype in FLOAT_DTYPES or (
                info.dtype is None and np.asarray(value).dtype.kind in "fiu"
            )
    return False


def _directional(
    plan: Plan, inputs: dict[str, np.ndarray], constants: dict[str, np.ndarray], name: str,
    direction: np.ndarray, eps: float, output_name: str, weights: np.ndarray,
) -> tuple[float, bool]:
    """Central difference of sum(weights * output) along `direction` in value `name`, and
    whether the function is smooth there (its two one-sided differences agree)."""
    def loss(shift: float) -> float:
        if name in inputs:
            moved = dict(inputs)
            moved[name] = inputs[name] + shift * direction
            out = execute(_with_constants(plan, {}), moved).outputs[output_name]
        else:
            out = execute(_with_constants(plan, {name: constants[name] + shift * direction}),
                          inputs).outputs[output_name]
        return float(np.sum(weights * out))

    ahead, here, behind = loss(eps), loss(0.0), loss(-eps)
    right, left = (ahead - here) / eps, (here - behind) / eps
    return (ahead - behind) / (2 * eps), relative_error(right, left) < KINK_TOLERANCE


def _with_constants(plan: Plan, replaced: dict[str, np.ndarray]) -> Plan:
    """The same plan with some constants' values replaced (for perturbing them)."""
    if not replaced:
        return plan
    constants = [(n, s, replaced.get(n, a)) for n, s, a in plan.constants]
    return replace(plan, constants=constants, _backward={})


def check_op(
    op: OpDef,
    trials: int = 25,
    seed: int = 0,
    tolerance: float = 1e-6,
    registry: Registry | None = None,
) -> GradcheckReport:
    """Check one op's gradient rule on inputs drawn by its `sample` over random shapes."""
    if op.sample is None:
        raise ValueError(f"op {op.qualname} has no sample(); pass inputs to check_op_at instead")
    rng = np.random.default_rng(seed)
    errors: dict[str, float] = {}
    for _ in range(trials):
        arrays, attributes = op.sample(rng)
        seed_here = int(rng.integers(2**31))
        report = check_op_at(op, arrays, attributes, tolerance=tolerance, seed=seed_here)
        for name, error in report.errors.items():
            errors[name] = max(errors.get(name, 0.0), error)
    return GradcheckReport(errors, tolerance)


def check_op_at(
    op: OpDef,
    arrays: list[np.ndarray],
    attributes: Mapping[str, Any] | None = None,
    tolerance: float = 1e-6,
    seed: int = 0,
) -> GradcheckReport:
    """Check one op's gradient rule at one point: one single-node graph, gradchecked."""
    graph, inputs = single_node_graph(op, arrays, attributes or {})
    registry = Registry(strict=True)
    registry.register_plugin(_SingleOp(op), name=f"check_op:{op.qualname}")
    return gradcheck(graph, inputs, seed=seed, tolerance=tolerance, registry=registry)


def single_node_graph(
    op: OpDef, arrays: list[np.ndarray], attributes: Mapping[str, Any]
) -> tuple[Graph, dict[str, np.ndarray]]:
    names = [f"x{i}" for i in range(len(arrays))]
    outputs = [f"y{i}" for i in range(op.num_outputs)]
    inputs = [
        ValueInfo(name=n, dtype=_dtype_name(np.asarray(a)), shape=list(np.shape(a)))
        for n, a in zip(names, arrays, strict=True)
    ]
    graph = Graph.model_validate({
        "name": op.name,
        "inputs": [i.model_dump() for i in inputs],
        "outputs": [{"name": o} for o in outputs[:1]],
        "nodes": [{"name": op.name, "op": {"domain": op.domain, "name": op.name,
                                           "version": op.version},
                   "inputs": names, "outputs": outputs, "attributes": dict(attributes)}],
    })
    return graph, dict(zip(names, arrays, strict=True))


def _dtype_name(array: np.ndarray) -> str:
    """Integer and bool inputs keep their dtype (labels); floats are checked in float64."""
    return str(array.dtype) if array.dtype.kind in "iub" else "float64"


class _SingleOp:
    """A throwaway plugin holding the one op under check."""

    def __init__(self, op: OpDef) -> None:
        self.op = op

    @hookimpl
    def graphkit_register_ops(self, register: Callable[[OpDef], None]) -> None:
        register(self.op)
