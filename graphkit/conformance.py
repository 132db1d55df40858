"""Run the ONNX backend node tests through graphkit's importer and executor.

The onnx package builds each case in memory: a one-node model, inputs and expected outputs,
and the tolerances to compare with. A case is *unsupported* when the import refuses it (an op
graphkit has no mapping for, an element type it does not handle, an attribute value its op
refuses), *passed* when graphkit's outputs match, *failed* otherwise. Where every op of a
passed case is differentiable, graphkit's gradients are also checked against central
differences: the suite's inputs, graphkit's backward pass.

    python -m graphkit.conformance        prints the summary table
"""

from __future__ import annotations

import sys
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from graphkit.errors import GraphkitError
from graphkit.execute import execute
from graphkit.gradcheck import gradcheck
from graphkit.graph import validate
from graphkit.io.onnx_import import from_onnx
from graphkit.model import FLOAT_DTYPES, Graph
from graphkit.registry import Registry, default_registry

GRADIENT_TOLERANCE = 1e-4


@dataclass
class CaseResult:
    name: str
    ops: tuple[str, ...]
    status: str
    """"passed", "failed" or "unsupported"."""
    message: str = ""
    gradient: str = "-"
    """"passed", "failed", "kink" (the inputs sit where the function has no derivative), or
    "-" (not checked: an op without a gradient, non-float values, or the case did not pass)."""
    details: dict[str, Any] = field(default_factory=dict)


def cases() -> list[Any]:
    """The ONNX backend node test cases, as the onnx package builds them."""
    from onnx.backend.test.loader import load_model_tests

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return list(load_model_tests(kind="node"))


def _ops(case: Any) -> tuple[str, ...]:
    return tuple(sorted({(f"{n.domain}::" if n.domain else "") + n.op_type
                         for n in case.model.graph.node}))


def run_case(case: Any, registry: Registry | None = None) -> CaseResult:
    """Import, run and compare one case; check gradients where the graph is differentiable."""
    registry = registry or default_registry()
    ops = _ops(case)
    nodes = len(case.model.graph.node)
    model, folded = _fold_attribute_inputs(case, registry)
    try:
        graph = from_onnx(model, registry, case.name)
        resolved = validate(graph, registry)
    except GraphkitError as exc:
        return CaseResult(case.name, ops, "unsupported", str(exc), details={"nodes": nodes})
    status, message = "passed", ""
    for inputs, expected in case.data_sets:
        inputs, expected = _arrays(inputs), _arrays(expected)
        inputs = [v for v, info in zip(inputs, case.model.graph.input, strict=False)
                  if info.name not in folded]
        feeds = dict(zip([i.name for i in graph.inputs], inputs, strict=False))
        try:
            with np.errstate(all="ignore"):
                outputs = execute(resolved, feeds).outputs
        except GraphkitError as exc:
            return CaseResult(case.name, ops, "failed", f"run: {exc}", details={"nodes": nodes})
        for info, want in zip(graph.outputs, expected, strict=False):
            got = outputs[info.name]
            problem = _compare(got, np.asarray(want), case.rtol, case.atol)
            if problem:
                status, message = "failed", f"output {info.name!r}: {problem}"
                break
        if status == "failed":
            break
    result = CaseResult(case.name, ops, status, message, details={"nodes": nodes})
    if status == "passed" and _differentiable(graph, resolved, registry):
        result.gradient, result.message = _check_gradients(graph, case, registry)
    return result


def _fold_attribute_inputs(case: Any, registry: Registry) -> tuple[Any, set[str]]:
    """The case's model with graph inputs that graphkit takes as attributes (Reshape's shape,
    ReduceSum's axes, ...) turned into initializers holding the case's values for them.

    The suite feeds those at run time; real models hold them as constants, as graphkit needs.
    Only cases with one data set are folded (the values must be the same for every run).
    """
    from onnx import numpy_helper

    from graphkit.io.onnx_import import _table

    model = case.model
    if len(case.data_sets) != 1:
        return model, set()
    table = _table(registry)
    graph_inputs = [i.name for i in model.graph.input]
    attribute_positions: set[str] = set()
    for node in model.graph.node:
        candidates = table.get(("" if node.domain == "ai.onnx" else node.domain, node.op_type))
        if not candidates:
            continue
        op = candidates[0][0]
        if not op.variadic:
            attribute_positions.update(n for n in node.input[op.num_inputs:] if n)
    folded = {name for name in graph_inputs if name in attribute_positions}
    if not folded:
        return model, set()
    values = dict(zip(graph_inputs, _arrays(case.data_sets[0][0]), strict=False))
    model = type(model).FromString(model.SerializeToString())
    kept = [i for i in model.graph.input if i.name not in folded]
    del model.graph.input[:]
    model.graph.input.extend(kept)
    model.graph.initializer.extend(numpy_helper.from_array(values[n], n) for n in sorted(folded))
    return model, folded


def _arrays(values: Iterable[Any]) -> list[np.ndarray]:
    """The suite gives numpy arrays, or TensorProtos for dtypes numpy lacks a literal for."""
    from onnx import TensorProto, numpy_helper

    return [numpy_helper.to_array(v) if isinstance(v, TensorProto) else np.asarray(v)
            for v in values]


def _compare(got: np.ndarray, want: np.ndarray, rtol: float, atol: float) -> str:
    if got.shape != want.shape:
        return f"shape {got.shape}, expected {want.shape}"
    if want.dtype.kind in "fc":
        if not np.allclose(got, want, rtol=rtol, atol=atol, equal_nan=True):
            worst = np.max(np.abs(got.astype(np.float64) - want.astype(np.float64)))
            return f"values differ (max abs diff {worst:.3g}, rtol {rtol}, atol {atol})"
    elif not np.array_equal(got, want):
        return "values differ"
    if got.dtype != want.dtype:
        return f"dtype {got.dtype}, expected {want.dtype}"
    return ""


def _differentiable(graph: Graph, resolved: Any, registry: Registry) -> bool:
    if not any(i.dtype in FLOAT_DTYPES for i in graph.inputs):
        return False
    if any(o.dtype not in FLOAT_DTYPES for o in graph.outputs):
        return False
    return all(op.vjp is not None for op in resolved.ops)


def _check_gradients(graph: Graph, case: Any, registry: Registry) -> tuple[str, str]:
    inputs = _arrays(case.data_sets[0][0])
    feeds = dict(zip([i.name for i in graph.inputs], inputs, strict=False))
    wrt = [i.name for i in graph.inputs if i.dtype in FLOAT_DTYPES]
    try:
        with np.errstate(all="ignore"):
            report = gradcheck(graph, feeds, wrt=wrt, of=graph.outputs[0].name,
                               tolerance=GRADIENT_TOLERANCE, registry=registry)
    except GraphkitError as exc:
        return "failed", f"gradient: {exc}"
    if report.kinks and not report.errors:
        return "kink", f"gradient: not differentiable at the suite's inputs ({report.kinks})"
    if not all(np.isfinite(e) for e in report.errors.values()):
        return "failed", f"gradient: non-finite error {report.errors}"
    if report.ok:
        return "passed", ""
    worst = max(report.errors, key=report.errors.__getitem__)
    return "failed", f"gradient of {worst!r}: relative error {report.errors[worst]:.3g}"


def _reason(message: str) -> str:
    """The kind of refusal, for the summary: why a case of a supported op was not run."""
    if "element type" in message:
        return "element type " + message.split("element type ")[1].split(";")[0].split()[0]
    if "must be a constant" in message:
        return "an attribute given as a run-time input (graphkit needs it constant)"
    if "unsupported ONNX ops" in message:
        return "unsupported op"
    return message.split(": ", 1)[-1][:90]


def summarize(results: Iterable[CaseResult], supported: set[str] | None = None) -> str:
    """Per op, over the cases that test that op alone (one node): passed, failed, unsupported
    (a dtype or attribute value graphkit refuses) and gradient checks; then the totals."""
    results = list(results)
    per_op: dict[str, Counter[str]] = {}
    for result in results:
        if len(result.ops) == 1 and result.details.get("nodes", 1) == 1:
            counts = per_op.setdefault(result.ops[0], Counter())
            counts[result.status] += 1
            counts[f"gradient {result.gradient}"] += 1
    head = (f"{'op':26} {'passed':>6} {'failed':>6} {'refused':>7} {'grad ok':>7} "
            f"{'grad bad':>8} {'kink':>4}")
    lines = [head, "-" * len(head)]
    for op in sorted(per_op):
        c = per_op[op]
        if c["passed"] + c["failed"] == 0 and (supported is None or op not in supported):
            continue
        lines.append(f"{op:26} {c['passed']:>6} {c['failed']:>6} {c['unsupported']:>7} "
                     f"{c['gradient passed']:>7} {c['gradient failed']:>8} "
                     f"{c['gradient kink']:>4}")
    totals = Counter(r.status for r in results)
    grads = Counter(r.gradient for r in results)
    lines.append("-" * len(head))
    lines.append(
        f"all {len(results)} cases (single-node and expanded): {totals['passed']} passed, "
        f"{totals['failed']} failed, {totals['unsupported']} unsupported"
    )
    lines.append(
        f"gradients checked on {grads['passed'] + grads['failed']} passed cases: "
        f"{grads['passed']} agree, {grads['failed']} disagree; {grads['kink']} at a kink"
    )
    reasons = Counter(_reason(r.message) for r in results if r.status == "unsupported")
    lines.append("unsupported cases by reason:")
    lines += [f"  {count:5}  {reason}" for reason, count in reasons.most_common(12)]
    return "\n".join(lines)


def supported_ops(registry: Registry | None = None) -> set[str]:
    """The ONNX op types (with a domain prefix outside the standard one) graphkit imports."""
    from graphkit.onnxmap import mappings

    found = set()
    for op in (registry or default_registry()).ops():
        for mapping in mappings(op.onnx):
            domain = "" if mapping.domain in ("", "ai.onnx") else f"{mapping.domain}::"
            found.add(domain + mapping.op_type)
    return found


def main(argv: list[str] | None = None) -> int:
    results = [run_case(case) for case in cases()]
    print(summarize(results, supported_ops()))
    failed = [r for r in results if r.status == "failed" or r.gradient == "failed"]
    for result in failed:
        print(f"FAILED {result.name}: {result.message}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
