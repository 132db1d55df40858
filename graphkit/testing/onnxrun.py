"""The onnx check: the op exported alone runs elsewhere and computes what graphkit computes.

At each point, in float64 and float32: a single-node graph is exported with `to_onnx` at the
default opset, passes `onnx.checker` (full check), runs in onnxruntime, and its output must
match graphkit's forward. Where onnxruntime has no kernel for a dtype (NOT_IMPLEMENTED, e.g.
float64 Elu), onnx's ReferenceEvaluator runs the model instead, and the detail says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from graphkit.execute import execute
from graphkit.gradcheck import single_node_graph
from graphkit.hookspecs import hookimpl
from graphkit.onnxmap import mappings
from graphkit.opdef import OpDef
from graphkit.registry import Registry
from graphkit.testing.points import Point, blaming, draw
from graphkit.testing.report import Check
from graphkit.testing.seeds import Violation, explore

NAME = "onnx"
TOLERANCE = {np.dtype(np.float64): 1e-5, np.dtype(np.float32): 1e-4}


class _OneOp:
    """A throwaway plugin registering just the op under check."""

    def __init__(self, op: OpDef) -> None:
        self.op = op

    @hookimpl
    def graphkit_register_ops(self, register: Callable[[OpDef], None]) -> None:
        register(self.op)


def onnx_check(op: OpDef, examples: int, seed: int) -> Check:
    """Passed when every export checks, runs and matches; skipped without an ONNX mapping."""
    if not mappings(op.onnx):
        return Check(NAME, "skipped", "no ONNX mapping (export will fail)")
    registry = Registry(strict=True)
    registry.register_plugin(_OneOp(op), name=f"check_gate:{op.qualname}")
    fallbacks: set[str] = set()
    """Why onnx.reference ran a model instead of onnxruntime."""

    def prop(sample_seed: int) -> None:
        point = draw(op, sample_seed)
        for dtype in TOLERANCE:
            with blaming(point, dtype):
                problem = _mismatch(op, point, dtype, registry, fallbacks)
            if problem:
                raise Violation(f"{problem}, with {dtype} inputs at {point.where()}")
            if not point.has_float:
                break  # the other dtype would run the same model

    failure = explore(prop, examples, seed)
    if failure is not None:
        return Check(NAME, "failed", failure.message)
    detail = f"exported, checked and run on {examples} points (float64 and float32)"
    if fallbacks:
        detail += f"; {', '.join(sorted(fallbacks))}: compared with onnx.reference's " \
                  "ReferenceEvaluator instead"
    return Check(NAME, "passed", detail)


def _mismatch(op: OpDef, point: Point, dtype: np.dtype, registry: Registry,
              fallbacks: set[str]) -> str:
    """Why the exported op disagrees with graphkit at this point ("" when it agrees)."""
    import onnx

    from graphkit.io.onnx_export import to_onnx

    arrays = point.fresh(dtype)
    graph, inputs = single_node_graph(op, arrays, point.raw_attributes)
    graph = graph.model_copy(update={"inputs": [
        i.model_copy(update={"dtype": str(inputs[i.name].dtype)}) for i in graph.inputs]})
    model = to_onnx(graph, registry=registry)
    onnx.checker.check_model(model, full_check=True)
    ours = execute(graph, {k: v.copy() for k, v in inputs.items()}, registry=registry).outputs
    theirs, fallback = _run(model, inputs, dtype)
    if fallback:
        fallbacks.add(fallback)
    tolerance = TOLERANCE[dtype]
    for name, want in ours.items():
        got = np.asarray(theirs[name])
        if got.shape != want.shape:
            return f"output {name}: onnx gives shape {got.shape}, graphkit {want.shape}"
        if (got.dtype.kind == "b") != (want.dtype.kind == "b"):
            return f"output {name}: onnx gives {got.dtype}, graphkit {want.dtype}"
        if not np.allclose(got, want, rtol=tolerance, atol=tolerance, equal_nan=True):
            worst = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64))))
            return (f"output {name}: onnx and graphkit differ by up to {worst:.3g} (rtol and "
                    f"atol {tolerance:g})")
    return ""


def _run(model: Any, feeds: dict[str, np.ndarray], dtype: np.dtype
         ) -> tuple[dict[str, np.ndarray], str]:
    """The model's outputs from onnxruntime; or from the reference evaluator where onnxruntime
    is missing or lacks the kernel, with the reason."""
    try:
        import onnxruntime
    except ImportError:
        return _reference(model, feeds), "onnxruntime is not installed"
    try:
        session = onnxruntime.InferenceSession(model.SerializeToString(),
                                               providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        return dict(zip(names, session.run(None, feeds), strict=True)), ""
    except Exception as exc:
        if type(exc).__name__ != "NotImplemented" and "NOT_IMPLEMENTED" not in str(exc):
            raise
    return _reference(model, feeds), f"onnxruntime has no {dtype} kernel (NOT_IMPLEMENTED)"


def _reference(model: Any, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    from onnx.reference import ReferenceEvaluator

    evaluator = ReferenceEvaluator(model)
    return dict(zip(evaluator.output_names, evaluator.run(None, feeds), strict=True))
