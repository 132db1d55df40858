"""Turn a plugin's decomposition (GraphBuilder code over built-in ops) into an ONNX function.

    def swish(g, x, *, beta):          # beta arrives as a value: the caller's attribute
        return x * (beta * x).sigmoid()

The body is recorded with a GraphBuilder, each built-in node exported through its own ONNX
mapping, and every float attribute becomes `Constant(value_float=@beta)` cast like the op's
first input, so one FunctionProto serves every call and its attribute values.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from graphkit.builder import GraphBuilder, Value
from graphkit.graph import validate
from graphkit.onnxmap import OnnxMapping, mappings
from graphkit.opdef import OpDef
from graphkit.registry import builtin_registry


class DecompositionError(ValueError):
    """A decomposition that cannot become an ONNX function."""


CASTLIKE_OPSET = 15
"""The body casts attributes and literals like the first input with CastLike (opset 15)."""


def function_from_decomposition(op: OpDef, mapping: OnnxMapping, opset: int) -> onnx.FunctionProto:
    """The FunctionProto (domain and name of the mapping) computing `op` from standard ops."""
    assert mapping.decomposition is not None
    if opset < CASTLIKE_OPSET:
        raise DecompositionError(
            f"op {op.qualname}: a decomposition becomes an ONNX function only from opset "
            f"{CASTLIKE_OPSET} (it casts with CastLike); export with opset >= {CASTLIKE_OPSET}"
        )
    fields = op.attributes.model_fields
    not_float = [name for name, f in fields.items() if f.annotation not in (float, float | None)]
    if not_float:
        raise DecompositionError(
            f"op {op.qualname}: a decomposition takes float attributes only, not "
            f"{', '.join(not_float)}; give OnnxMapping.function (a FunctionProto) instead"
        )
    # literals are stored in float64 and cast like the first input: exact for float64 inputs,
    # rounded once for float32 (a float32 literal would cost float64 models ~1e-7 relative)
    g = GraphBuilder(f"{op.name}_body", dtype="float64")
    inputs = [g.input(f"x{i}", dtype=None) for i in range(op.num_inputs)]
    attributes = {name: g.input(f"attr.{name}", shape=[], dtype=None) for name in fields}
    result = mapping.decomposition(g, *inputs, **attributes)
    outputs = list(result) if isinstance(result, (tuple, list)) else [result]
    if len(outputs) != op.num_outputs:
        raise DecompositionError(
            f"op {op.qualname}: the decomposition returned {len(outputs)} values for "
            f"{op.num_outputs} outputs"
        )
    for position, value in enumerate(outputs):
        g.output(value if isinstance(value, Value) else g.constant(None, value),
                 f"y{position}")
    resolved = validate(g.build(), builtin_registry())
    nodes: list[onnx.NodeProto] = []
    for name in fields:  # the caller's attribute, as a tensor of the first input's type
        ref = helper.make_node("Constant", [], [f"attr.{name}.f"], value_float=0.0)
        ref.attribute[0].ref_attr_name = name
        nodes.append(ref)
        nodes.append(helper.make_node("CastLike", [f"attr.{name}.f", "x0"], [f"attr.{name}"]))
    for constant in resolved.model.constants:  # literals, cast like the first input too
        raw = f"{constant.name}.raw"
        nodes.append(helper.make_node("Constant", [], [raw],
                                      value=numpy_helper.from_array(constant.to_numpy(), raw)))
        nodes.append(helper.make_node("CastLike", [raw, "x0"], [constant.name]))
    for index in resolved.order:
        node, inner = resolved.model.nodes[index], resolved.ops[index]
        chosen = [m for m in mappings(inner.onnx) if m.domain in ("", "ai.onnx")
                  and m.covers(opset)]
        if not chosen:
            raise DecompositionError(
                f"op {op.qualname}: its decomposition uses {node.op}, which has no standard "
                f"ONNX mapping at opset {opset}"
            )
        attributes_onnx, extra = chosen[0].export(resolved.attributes[index], opset)
        names = list(node.inputs)
        for position, array in enumerate(extra):
            if array is None:
                names.append("")
                continue
            name = f"{node.name}.input{len(node.inputs) + position}"
            nodes.append(helper.make_node("Constant", [], [name],
                                          value=numpy_helper.from_array(np.asarray(array), name)))
            names.append(name)
        while names and names[-1] == "":
            names.pop()
        nodes.append(helper.make_node(chosen[0].op_type, names, list(node.outputs),
                                      **attributes_onnx))
    return helper.make_function(
        mapping.domain, mapping.op_type,
        [f"x{i}" for i in range(op.num_inputs)], [f"y{i}" for i in range(op.num_outputs)],
        nodes, [helper.make_opsetid("", opset)], attributes=list(fields),
    )
