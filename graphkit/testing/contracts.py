"""The contracts check: what the executor relies on and a gradient check cannot see.

At each point, for float32 and float64 inputs: forward keeps the inputs' float dtype (no
silent upcast; an output of a dtype an attribute names, as Cast's `to`, is what was asked for),
returns num_outputs outputs of the shapes `infer` promises, gives the same result twice and
leaves its inputs alone; forward_saving, if the op has one, returns (output, residual) with
forward's output; the vjp, given only what `saves` declares (and the residual), returns one
gradient (or None) per input in a shape the input broadcasts to, and leaves its arguments
alone too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from graphkit.opdef import Meta, OpDef
from graphkit.testing.points import Point, blaming, draw
from graphkit.testing.report import Check
from graphkit.testing.seeds import Violation, explore

NAME = "contracts"
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def contracts_check(op: OpDef, examples: int, seed: int) -> Check:
    """Passed when every contract holds at every sampled point, in float32 and float64."""
    def prop(sample_seed: int) -> None:
        point = draw(op, sample_seed)
        for dtype in DTYPES:
            with blaming(point, dtype):
                problems = point_problems(op, point, dtype)
            if problems:
                raise Violation("; ".join(problems) + f", with {dtype} inputs at {point.where()}")

    failure = explore(prop, examples, seed)
    if failure is not None:
        return Check(NAME, "failed", failure.message)
    held = ["float dtype kept", "deterministic", "inputs untouched"]
    if op.infer is not None:
        held.append("shapes as infer says")
    if op.forward_saving is not None:
        held.append("forward_saving's output is forward's")
    if op.vjp is not None:
        held.append("one gradient per input, in its shape")
    return Check(NAME, "passed", f"{', '.join(held)} (float32 and float64, {examples} points)")


def point_problems(op: OpDef, point: Point, dtype: np.dtype) -> list[str]:
    """Every contract the op breaks at `point` with its float inputs in `dtype`."""
    arrays = point.fresh(dtype)
    before = [a.copy() for a in arrays]
    outputs, problems = _outputs(op, op.forward(*arrays, **point.attributes))
    if problems:
        return problems
    problems += [f"forward writes into input {i}" for i in _changed(before, arrays)]
    again, _ = _outputs(op, op.forward(*point.fresh(dtype), **point.attributes))
    problems += [f"forward is not deterministic: output {i} differs between two runs on the "
                 "same inputs" for i, (a, b) in enumerate(zip(outputs, again, strict=True))
                 if not _same(a, b)]
    if point.has_float:
        problems += _dtype_problems(outputs, dtype, point.attributes)
    if op.infer is not None:
        problems += _infer_problems(op, point, arrays, outputs)
    if op.vjp is not None:
        residual, problems_saving = _residual(op, point.fresh(dtype), point.attributes, outputs)
        problems += problems_saving or vjp_problems(op, point.fresh(dtype), point.attributes,
                                                    outputs, residual)
    return problems


def _residual(op: OpDef, arrays: Sequence[np.ndarray], attributes: dict[str, Any],
              outputs: list[np.ndarray]) -> tuple[Any, list[str]]:
    """forward_saving's residual (None without one), or why its result is unusable."""
    if op.forward_saving is None:
        return None, []
    result = op.forward_saving(*arrays, **attributes)
    if not isinstance(result, tuple) or len(result) != 2:
        return None, ["forward_saving must return a tuple (output, residual)"]
    saved, problems = _outputs(op, result[0])
    if problems:
        return None, [f"forward_saving's output: {problem}" for problem in problems]
    if any(not _same(a, b) for a, b in zip(saved, outputs, strict=True)):
        return None, ["forward_saving's output differs from forward's on the same inputs"]
    return result[1], []


def _outputs(op: OpDef, result: Any) -> tuple[list[np.ndarray], list[str]]:
    if op.num_outputs == 1:
        return [np.asarray(result)], []
    if not isinstance(result, tuple | list) or len(result) != op.num_outputs:
        count = len(result) if isinstance(result, tuple | list) else "a non-tuple"
        return [], [f"forward returned {count}, expected a tuple of {op.num_outputs} outputs"]
    return [np.asarray(r) for r in result], []


def _dtype_problems(outputs: list[np.ndarray], dtype: np.dtype, attributes: dict[str, Any]
                    ) -> list[str]:
    named = _named_dtypes(attributes)
    return [f"output {i} is {out.dtype} for {dtype} inputs: an op must keep its inputs' float "
            "dtype (no silent upcast)"
            for i, out in enumerate(outputs)
            if out.dtype.kind == "f" and out.dtype != dtype and out.dtype not in named]


def _named_dtypes(attributes: dict[str, Any]) -> set[np.dtype]:
    """Dtypes that attributes name in full (Cast's `to`): an output of one was asked for."""
    found = set()
    for value in attributes.values():
        if isinstance(value, str):
            try:
                dtype = np.dtype(value)
            except TypeError:
                continue
            if dtype.name == value:
                found.add(dtype)
    return found


def _infer_problems(op: OpDef, point: Point, arrays: list[np.ndarray],
                    outputs: list[np.ndarray]) -> list[str]:
    assert op.infer is not None
    shapes = [tuple(a.shape) for a in arrays]
    try:
        inferred = list(op.infer(*shapes, **point.attributes))
    except ValueError as exc:
        return [f"infer refuses input shapes {shapes} that forward accepts: {exc}"]
    if len(inferred) != len(outputs):
        return [f"infer returned {len(inferred)} shapes for {len(outputs)} outputs"]
    problems = []
    for i, (shape, out) in enumerate(zip(inferred, outputs, strict=True)):
        if shape is None:
            continue
        known = len(shape) == out.ndim and all(
            not isinstance(d, int) or d == actual for d, actual in zip(shape, out.shape,
                                                                       strict=True))
        if not known:
            problems.append(f"output {i} has shape {tuple(out.shape)} but infer says "
                            f"{tuple(shape)}")
    return problems


def vjp_problems_at(op: OpDef, point: Point, dtype: np.dtype) -> list[str]:
    """The vjp's part of the contracts alone: whether its gradients can be used at all."""
    outputs, problems = _outputs(op, op.forward(*point.fresh(dtype), **point.attributes))
    if problems:
        return problems
    residual, problems = _residual(op, point.fresh(dtype), point.attributes, outputs)
    return problems or vjp_problems(op, point.fresh(dtype), point.attributes, outputs, residual)


def vjp_problems(op: OpDef, arrays: Sequence[np.ndarray], attributes: dict[str, Any],
                 outputs: list[np.ndarray], residual: Any = None) -> list[str]:
    """Whether the vjp, called as the executor calls it, returns usable gradients."""
    rng = np.random.default_rng(0)
    upstream = [rng.standard_normal(o.shape).astype(o.dtype if o.dtype.kind == "f" else "f8")
                for o in outputs]
    before = [a.copy() for a in arrays]
    upstream_before = [u.copy() for u in upstream]
    inputs = [a if "inputs" in op.saves else Meta(a.shape, a.dtype) for a in arrays]
    kept = [o if "outputs" in op.saves else Meta(o.shape, o.dtype) for o in outputs]
    g = upstream[0] if op.num_outputs == 1 else tuple(upstream)
    y = kept[0] if op.num_outputs == 1 else tuple(kept)
    keywords = dict(attributes, residual=residual) if op.forward_saving else attributes
    try:
        if isinstance(op.vjp, tuple):
            grads: Any = tuple(rule(g, y, *inputs, **keywords) if rule is not None else None
                               for rule in op.vjp)
        else:
            assert op.vjp is not None
            grads = op.vjp(g, y, *inputs, **keywords)
    except Exception as exc:  # noqa: BLE001 - reported with a hint
        hint = ""
        if op.saves != frozenset({"inputs", "outputs"}):
            hint = (f" (it gets only {sorted(op.saves) or 'nothing'} as arrays, the rest as "
                    "graphkit.Meta: does it read a value `saves` leaves out?)")
        return [f"vjp raised {type(exc).__name__}: {exc}{hint}"]
    problems = [f"vjp writes into input {i}" for i in _changed(before, arrays)]
    if _changed(upstream_before, upstream):
        problems.append("vjp writes into the upstream gradient")
    if grads is None:  # the executor reads it as "no gradient for any input"
        return problems
    if not isinstance(grads, tuple | list) or len(grads) != len(arrays):
        count = len(grads) if isinstance(grads, tuple | list) else f"a {type(grads).__name__}"
        return problems + [f"vjp returned {count} for {len(arrays)} inputs: it must return "
                           "one gradient (or None) per input"]
    for i, (grad, x) in enumerate(zip(grads, arrays, strict=True)):
        if grad is not None:
            problems += _gradient_problems(i, np.asarray(grad), x)
    return problems


def _gradient_problems(i: int, grad: np.ndarray, x: np.ndarray) -> list[str]:
    try:
        broadcasts = np.broadcast_shapes(x.shape, grad.shape) == grad.shape
    except ValueError:
        broadcasts = False
    if not broadcasts:
        return [f"gradient {i} has shape {tuple(grad.shape)} for an input of shape "
                f"{tuple(x.shape)}: it must be the input's shape or one it broadcasts to"]
    if x.dtype.kind == "f" and grad.dtype.kind != "f":
        return [f"gradient {i} is {grad.dtype} for a {x.dtype} input"]
    return []


def _changed(before: Sequence[np.ndarray], after: Sequence[np.ndarray]) -> list[int]:
    return [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if not _same(a, b)]


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
