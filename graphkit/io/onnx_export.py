"""Export a graph to ONNX: one ONNX node per graphkit node, through each op's own mapping.

Standard ops become standard ONNX operators; an op in another domain becomes a node of its
mapping's domain and, where the mapping gives a body, a model-local function, so runtimes that
know nothing of graphkit still run the model. What ONNX has no field for (graph metadata,
trainable flags, a node's exact attributes) travels in metadata_props, so JSON -> ONNX -> JSON
gives back an equal graph.
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from graphkit.errors import GraphkitError
from graphkit.graph import ResolvedGraph, validate
from graphkit.io.atomic import write_atomic
from graphkit.io.onnx_function import function_from_decomposition
from graphkit.io.onnx_types import (
    ATTRIBUTES_KEY,
    EXTRA_KEY,
    FORMAT_VERSION_KEY,
    METADATA_KEY,
    OP_KEY,
    TO_ONNX,
    TRAINABLE_KEY,
    UNSHAPED_KEY,
    UNTYPED_KEY,
)
from graphkit.model import FORMAT_VERSION, Graph, Node, ValueInfo
from graphkit.onnxmap import OnnxMapping, mappings
from graphkit.registry import Registry

OLDEST_OPSET = 7


class ExportError(GraphkitError):
    """The graph cannot be written as ONNX (an op without a mapping for the opset, ...)."""


@functools.cache
def default_opset() -> int:
    """The newest opset both the installed onnx and onnxruntime support."""
    newest = onnx.defs.onnx_opset_version()
    try:
        import onnxruntime
    except ImportError:
        return newest
    for opset in range(newest, OLDEST_OPSET - 1, -1):
        probe = helper.make_model(
            helper.make_graph(
                [helper.make_node("Identity", ["x"], ["y"])], "probe",
                [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
                [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
            ),
            opset_imports=[helper.make_opsetid("", opset)],
        )
        probe.ir_version = min(probe.ir_version, onnx.IR_VERSION)
        try:
            onnxruntime.InferenceSession(probe.SerializeToString(),
                                         providers=["CPUExecutionProvider"])
            return opset
        except Exception:  # noqa: BLE001 - any refusal means "not this opset"
            continue
    return newest


def _value_info(info: ValueInfo, dtype: str | None) -> onnx.ValueInfoProto:
    shape = None if info.shape is None else [d if isinstance(d, str) else int(d)
                                             for d in info.shape]
    return helper.make_tensor_value_info(info.name, TO_ONNX[dtype or "float64"], shape)


def _choose(op_mappings: tuple[OnnxMapping, ...], opset: int) -> OnnxMapping | None:
    for mapping in op_mappings:
        if mapping.domain in ("", "ai.onnx"):
            if mapping.covers(opset):
                return mapping
        else:
            return mapping  # custom domains version with the op, not with the standard opset
    return None


def _mapping_problems(resolved: ResolvedGraph, opset: int) -> list[str]:
    problems = []
    seen = set()
    for node, op, plugin in zip(resolved.model.nodes, resolved.ops, resolved.plugins,
                                strict=True):
        if op.key in seen:
            continue
        seen.add(op.key)
        found = mappings(op.onnx)
        if not found:
            problems.append(f"op {node.op} (plugin {plugin}) has no ONNX mapping")
        elif _choose(found, opset) is None:
            ranges = ", ".join(f"{m.since}..{m.until or 'newest'}" for m in found)
            problems.append(
                f"op {node.op} (plugin {plugin}) has no ONNX mapping for opset {opset} "
                f"(its mappings cover opsets {ranges})"
            )
    return problems


def to_onnx(
    graph: Graph | ResolvedGraph, opset: int | None = None, registry: Registry | None = None
) -> onnx.ModelProto:
    """The graph as an ONNX model that passes onnx.checker with full_check."""
    resolved = graph if isinstance(graph, ResolvedGraph) else validate(graph, registry)
    model = resolved.model
    opset = default_opset() if opset is None else opset
    if not OLDEST_OPSET <= opset <= onnx.defs.onnx_opset_version():
        raise ExportError(
            f"opset {opset} is outside what this exporter and onnx support "
            f"({OLDEST_OPSET}..{onnx.defs.onnx_opset_version()})"
        )
    problems = _mapping_problems(resolved, opset)
    if problems:
        raise ExportError(f"graph {model.name!r} cannot be exported: " + "; ".join(problems))

    unshaped = [i.name for i in model.inputs if i.shape is None]
    if unshaped:
        raise ExportError(
            f"graph {model.name!r}: input {', '.join(map(repr, unshaped))} has no declared "
            "shape, and ONNX needs every input's rank: declare it (dims may be symbolic, e.g. "
            '"shape": ["N", 3]; a scalar is "shape": [])'
        )
    dtypes: dict[str, Any] = {i.name: i.dtype or "float64" for i in model.inputs}
    dtypes.update({c.name: c.dtype for c in model.constants})
    nodes, extras, functions, domains = _export_nodes(resolved, opset, dtypes)
    typed_constants = any(m.constants_like is not None for op in resolved.ops
                          for m in mappings(op.onnx))
    for _ in range(len(model.nodes) if typed_constants else 0):
        # Pow's exponent and Clip's bounds must have their input's dtype: learn the dtypes of
        # intermediate values from ONNX's own type inference, until nothing changes.
        draft = _assemble(resolved, nodes, extras, functions, domains, draft=True)
        learned = dict(dtypes)
        learned.update(_inferred_dtypes(draft))
        if learned == dtypes:
            break
        dtypes = learned
        nodes, extras, functions, domains = _export_nodes(resolved, opset, dtypes)
    onnx_model = _assemble(resolved, nodes, extras, functions, domains)
    try:
        onnx.checker.check_model(onnx_model, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"graph {model.name!r}: the exported model fails onnx.checker: "
                          f"{str(exc).splitlines()[0]}") from None
    except onnx.shape_inference.InferenceError as exc:
        raise ExportError(f"graph {model.name!r}: ONNX shape inference fails on the export: "
                          f"{str(exc).splitlines()[0]}") from None
    return onnx_model


def _export_nodes(
    resolved: ResolvedGraph, opset: int, dtypes: dict[str, Any]
) -> tuple[list[onnx.NodeProto], list[tuple[str, np.ndarray]], dict[Any, Any], dict[str, int]]:
    model = resolved.model
    nodes, extras, functions = [], [], {}
    domains: dict[str, int] = {"": opset}
    for index in resolved.order:
        node, op = model.nodes[index], resolved.ops[index]
        mapping = _choose(mappings(op.onnx), opset)
        assert mapping is not None
        input_dtypes = [dtypes.get(name) for name in node.inputs]
        onnx_node, extra = _export_node(node, resolved.attributes[index], mapping, opset,
                                        input_dtypes)
        nodes.append(onnx_node)
        extras.extend(extra)
        if mapping.domain not in ("", "ai.onnx"):
            version = op.version if mapping.domain == op.domain else 1
            if domains.setdefault(mapping.domain, version) != version:
                raise ExportError(
                    f"graph {model.name!r} uses two versions of domain {mapping.domain!r}; "
                    "an ONNX model imports one"
                )
            key = (mapping.domain, mapping.op_type)
            if key not in functions and mapping.function is not None:
                functions[key] = mapping.function(opset)
            elif key not in functions and mapping.decomposition is not None:
                try:
                    functions[key] = function_from_decomposition(op, mapping, opset)
                except ValueError as exc:
                    raise ExportError(f"{exc} (plugin {resolved.plugins[index]})") from None
    for function in functions.values():
        for opset_id in function.opset_import:
            domains.setdefault(opset_id.domain, opset_id.version)
    return nodes, extras, functions, domains


def _inferred_dtypes(model: onnx.ModelProto) -> dict[str, Any]:
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except onnx.shape_inference.InferenceError:
        return {}
    found = {}
    for value in list(inferred.graph.value_info) + list(inferred.graph.output):
        elem_type = value.type.tensor_type.elem_type
        if elem_type:
            found[value.name] = helper.tensor_dtype_to_np_dtype(elem_type).name
    return found


def _assemble(
    resolved: ResolvedGraph, nodes: list[onnx.NodeProto], extras: list[tuple[str, np.ndarray]],
    functions: dict[Any, Any], domains: dict[str, int], draft: bool = False,
) -> onnx.ModelProto:
    """The ONNX model of exported nodes; a draft (for type inference) leaves outputs untyped."""
    model = resolved.model
    untyped = [i.name for i in model.inputs if i.dtype is None]
    untyped += [o.name for o in model.outputs if o.dtype is None]
    inputs = [_value_info(i, i.dtype) for i in model.inputs]
    initializers = [numpy_helper.from_array(c.to_numpy(), c.name) for c in model.constants]
    initializers += [numpy_helper.from_array(array, name) for name, array in extras]
    outputs = [_value_info(o, o.dtype) if o.dtype and o.shape is not None
               else helper.make_empty_tensor_value_info(o.name) for o in model.outputs]
    onnx_graph = helper.make_graph(nodes, model.name, inputs, outputs, initializers)
    onnx_model = helper.make_model(
        onnx_graph,
        opset_imports=[helper.make_opsetid(d, v) for d, v in domains.items()],
        functions=list(functions.values()),
        producer_name="graphkit",
        producer_version=_version(),
    )
    onnx_model.ir_version = min(onnx_model.ir_version, onnx.IR_VERSION)
    if not draft:
        _fill_output_types(onnx_model, model.outputs)
    props = {
        FORMAT_VERSION_KEY: str(FORMAT_VERSION),
        METADATA_KEY: json.dumps(model.metadata, separators=(",", ":")),
        TRAINABLE_KEY: json.dumps([c.name for c in model.constants if c.trainable]),
        UNTYPED_KEY: json.dumps(untyped),
        UNSHAPED_KEY: json.dumps([o.name for o in model.outputs if o.shape is None]),
        EXTRA_KEY: json.dumps([name for name, _ in extras]),
    }
    helper.set_model_props(onnx_model, props)
    return onnx_model


def _export_node(
    node: Node, attributes: dict[str, Any], mapping: OnnxMapping, opset: int,
    input_dtypes: list[Any],
) -> tuple[onnx.NodeProto, list[tuple[str, np.ndarray]]]:
    onnx_attributes, constants = mapping.export_for(attributes, opset, input_dtypes)
    inputs = list(node.inputs)
    extras = []
    for position, array in enumerate(constants):
        if array is None:
            inputs.append("")
            continue
        name = f"{node.name}::input{len(node.inputs) + position}"
        inputs.append(name)
        extras.append((name, np.asarray(array)))
    while inputs and inputs[-1] == "":
        inputs.pop()
    onnx_node = helper.make_node(
        mapping.op_type, inputs, list(node.outputs), name=node.name,
        domain=mapping.domain or None, **onnx_attributes,
    )
    helper.set_metadata_props(onnx_node, {
        OP_KEY: str(node.op),
        ATTRIBUTES_KEY: json.dumps(node.attributes, separators=(",", ":"), sort_keys=True),
    })
    return onnx_node, extras


def _fill_output_types(model: onnx.ModelProto, outputs: list[ValueInfo]) -> None:
    """Outputs declared without a dtype or shape get what ONNX shape inference finds."""
    missing = {o.name: o for o in outputs if o.dtype is None or o.shape is None}
    if not missing:
        return
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except onnx.shape_inference.InferenceError as exc:
        raise ExportError(f"ONNX shape inference fails on the export: "
                          f"{str(exc).splitlines()[0]}") from None
    found = {v.name: v.type for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    for output in model.graph.output:
        declared = missing.get(output.name)
        if declared is None:
            continue
        tensor = found[output.name].tensor_type if output.name in found else None
        if tensor is None or not tensor.elem_type or not tensor.HasField("shape"):
            raise ExportError(
                f"output {output.name!r}: ONNX cannot infer its type and rank; declare its "
                "dtype and shape in the graph"
            )
        output.type.tensor_type.elem_type = (
            TO_ONNX[declared.dtype] if declared.dtype else tensor.elem_type
        )
        shape = tensor.shape if declared.shape is None else \
            _value_info(declared, "float64").type.tensor_type.shape
        output.type.tensor_type.shape.CopyFrom(shape)


def save_onnx(graph: Graph, path: str | os.PathLike[str], opset: int | None = None) -> None:
    """Write the graph as an .onnx file, atomically."""
    write_atomic(path, to_onnx(graph, opset).SerializeToString())


def _version() -> str:
    from graphkit.registry import _own_version

    return _own_version() or "0"
