"""Import ONNX models: each ONNX node becomes the registered op whose mapping claims it.

Loading untrusted files is safe: the size is capped before parsing, truncated or malformed
protobuf is a FormatError, ir_version 0 (what empty bytes parse to) and unknown versions are
refused, and external data is read only from plain files inside the model's own folder.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import helper, inliner, numpy_helper

from graphkit.errors import FormatError, GraphkitError
from graphkit.io.onnx_types import (
    ATTRIBUTES_KEY,
    EXTRA_KEY,
    METADATA_KEY,
    OP_KEY,
    TRAINABLE_KEY,
    UNSHAPED_KEY,
    UNTYPED_KEY,
    dtype_from_onnx,
)
from graphkit.io.reading import max_file_bytes, read_capped
from graphkit.model import Constant, Graph, Node, OpRef, Tensor, ValueInfo
from graphkit.onnxmap import OnnxMapping, mappings
from graphkit.opdef import OpDef
from graphkit.registry import Registry, default_registry

STANDARD_DOMAINS = ("", "ai.onnx")


def load_onnx(path: str | os.PathLike[str], registry: Registry | None = None) -> Graph:
    """Read an .onnx file into a graph; every problem is a FormatError naming the file."""
    source = Path(path)
    data = read_capped(source, "an ONNX model")
    model = parse_model(data, str(source))
    _load_external_data(model, source.parent.resolve(), str(source))
    return from_onnx(model, registry, str(source))


def parse_model(data: bytes, source: str = "<bytes>") -> onnx.ModelProto:
    """Parse ONNX bytes, refusing what is not a model this onnx understands."""
    if len(data) > max_file_bytes():
        raise FormatError(f"{source}: {len(data)} bytes is over the limit of {max_file_bytes()}")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise FormatError(f"{source}: not a valid ONNX model (malformed or truncated): "
                          f"{exc}") from None
    if model.ir_version <= 0:
        raise FormatError(f"{source}: not an ONNX model (ir_version {model.ir_version}; empty or "
                          "not ONNX bytes)")
    if model.ir_version > onnx.IR_VERSION:
        raise FormatError(f"{source}: ONNX ir_version {model.ir_version} is newer than this onnx "
                          f"reads ({onnx.IR_VERSION}); upgrade onnx")
    return model


def _external_tensors(
    model: onnx.ModelProto, functions: bool = True
) -> Iterable[onnx.TensorProto]:
    """Tensors with external data: initializers, node attributes, and (unless told not to)
    node attributes in model-local function bodies (inlining copies those into the graph)."""
    for tensor in model.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            yield tensor
    bodies = [model.graph, *model.functions] if functions else [model.graph]
    for node in (node for body in bodies for node in body.node):
        for attribute in node.attribute:
            tensors = [attribute.t] if attribute.HasField("t") else []
            for tensor in [*tensors, *attribute.tensors]:
                if tensor.data_location == onnx.TensorProto.EXTERNAL:
                    yield tensor


def _load_external_data(model: onnx.ModelProto, folder: Path, source: str) -> None:
    """Read external tensor data, but only from regular files inside the model's folder."""
    tensors = list(_external_tensors(model))
    total = 0
    for tensor in tensors:
        info = {entry.key: entry.value for entry in tensor.external_data}
        location = info.get("location", "")
        where = f"{source}: tensor {tensor.name!r} keeps its data in {location!r}"
        candidate = Path(location)
        if not location or candidate.is_absolute() or ".." in candidate.parts:
            raise FormatError(f"{where}: external data must be a relative path inside the "
                              "model's folder")
        path = folder / candidate
        if path.is_symlink() or any(p.is_symlink() for p in path.parents if p != folder
                                    and folder in p.parents):
            raise FormatError(f"{where}: external data may not be a symbolic link")
        try:
            stat = path.stat()
        except (OSError, ValueError):  # ValueError: a NUL character in the location
            raise FormatError(f"{where}: no such file beside the model") from None
        if not path.is_file() or stat.st_nlink != 1:
            raise FormatError(f"{where}: external data must be a plain file with one link")
        if folder not in path.resolve().parents:
            raise FormatError(f"{where}: external data resolves outside the model's folder")
        try:
            offset, length = int(info.get("offset", 0) or 0), info.get("length")
            size = int(length) if length else stat.st_size - offset
        except ValueError:
            raise FormatError(f"{where}: offset and length must be whole numbers") from None
        if offset < 0 or size < 0 or offset + size > stat.st_size:
            raise FormatError(f"{where}: offset and length lie outside the file")
        total += size  # many tensors may name the same bytes: cap what is read in all
        if total > max_file_bytes():
            raise FormatError(f"{where}: {total} bytes of external data in all is over the "
                              f"limit of {max_file_bytes()}")
        with open(path, "rb") as stream:
            stream.seek(offset)
            tensor.raw_data = stream.read(size)
        del tensor.external_data[:]
        tensor.data_location = onnx.TensorProto.DEFAULT


def _table(registry: Registry) -> dict[tuple[str, str], list[tuple[OpDef, OnnxMapping]]]:
    table: dict[tuple[str, str], list[tuple[OpDef, OnnxMapping]]] = {}
    for op in registry.ops():
        for mapping in mappings(op.onnx):
            domain = "" if mapping.domain == "ai.onnx" else mapping.domain
            table.setdefault((domain, mapping.op_type), []).append((op, mapping))
    for candidates in table.values():
        candidates.sort(key=lambda pair: -pair[0].version)
    return table


def from_onnx(
    model: onnx.ModelProto, registry: Registry | None = None, source: str = "<model>"
) -> Graph:
    """The graphkit graph of an ONNX model (already parsed and with its data loaded)."""
    try:
        return _Importer(model, registry or default_registry(), source).run()
    except GraphkitError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RuntimeError,
            OverflowError, UnicodeDecodeError, DecodeError, onnx.checker.ValidationError) as exc:
        raise FormatError(f"{source}: cannot import: {type(exc).__name__}: {exc}") from None


class _Importer:
    """One import: ONNX model in, graphkit Graph out."""

    def __init__(self, model: onnx.ModelProto, registry: Registry, source: str) -> None:
        self.source = source
        self.registry = registry
        self.table = _table(registry)
        self.props = {p.key: p.value for p in model.metadata_props}
        known = {key for key in self.table}
        unknown_functions = [(f.domain, f.name) for f in model.functions
                             if (f.domain, f.name) not in known]
        if unknown_functions:
            model = inliner.inline_selected_functions(model, unknown_functions)
        for tensor in _external_tensors(model, functions=False):
            # onnx would read it relative to the working directory: only load_onnx reads
            # external data, and only from inside the model's folder
            raise FormatError(f"{source}: tensor {tensor.name!r} keeps its data in an external "
                              "file that was not read; load the model from its file (load_onnx)")
        self.model = model
        self.opsets = {("" if o.domain == "ai.onnx" else o.domain): o.version
                       for o in model.opset_import}
        self.constants: dict[str, np.ndarray] = {}
        self._types: dict[str, int] | None = None

    def _json_prop(self, key: str, default: Any) -> Any:
        raw = self.props.get(key)
        if raw is None:
            return default
        try:
            return json.loads(raw)
        except ValueError:
            raise FormatError(f"{self.source}: metadata {key!r} is not valid JSON") from None

    def run(self) -> Graph:
        graph = self.model.graph
        initializer_names = {t.name for t in graph.initializer}
        for tensor in graph.initializer:
            self.constants[tensor.name] = numpy_helper.to_array(tensor)
        untyped = set(self._json_prop(UNTYPED_KEY, []))
        unshaped = set(self._json_prop(UNSHAPED_KEY, []))
        nodes, problems, unsupported = [], [], Counter()
        used_as_data: set[str] = set()
        attribute_inputs: set[str] = set()
        names: set[str] = set()
        for index, onnx_node in enumerate(graph.node):
            if onnx_node.op_type == "Constant" and onnx_node.domain in STANDARD_DOMAINS:
                self._constant_node(onnx_node)
                continue
            if onnx_node.op_type == "CastLike" and onnx_node.domain in STANDARD_DOMAINS:
                onnx_node = self._cast_like(onnx_node)
            key = ("" if onnx_node.domain == "ai.onnx" else onnx_node.domain, onnx_node.op_type)
            chosen = self._choose(key)
            if chosen is None:
                unsupported[_show_op(key)] += 1
                continue
            op, mapping = chosen
            try:
                node, data, extra = self._node(onnx_node, index, op, mapping, names)
            except ValueError as exc:
                problems.append(f"node {onnx_node.name or index!r} ({onnx_node.op_type}): {exc}")
                continue
            names.add(node.name)
            nodes.append(node)
            used_as_data.update(data)
            attribute_inputs.update(extra)
        if unsupported:
            listed = ", ".join(f"{op} ({count} node{'s' if count > 1 else ''})"
                               for op, count in sorted(unsupported.items()))
            raise FormatError(f"{self.source}: unsupported ONNX ops: {listed}")
        if problems:
            raise FormatError(f"{self.source}: " + "; ".join(problems))
        declared_extra = set(self._json_prop(EXTRA_KEY, []))
        drop = (attribute_inputs - used_as_data - {o.name for o in graph.output}) \
            | (declared_extra - used_as_data)
        trainable = set(self._json_prop(TRAINABLE_KEY, []))
        constants = []
        for name, array in self.constants.items():
            if name in drop:
                continue
            tensor = Tensor.from_numpy(array, dtype=dtype_from_onnx(
                helper.np_dtype_to_tensor_dtype(array.dtype),
                f"{self.source}: constant {name!r}"))
            constants.append(Constant(name=name, trainable=name in trainable,
                                      **tensor.model_dump(exclude_none=True)))
        inputs = [self._value_info(v, untyped) for v in graph.input
                  if v.name not in initializer_names]
        outputs = [self._value_info(v, untyped) for v in graph.output]
        outputs = [o.model_copy(update={"shape": None}) if o.name in unshaped else o
                   for o in outputs]
        metadata = self._json_prop(METADATA_KEY, None)
        if metadata is None:
            metadata = {k: v for k, v in self.props.items() if not k.startswith("graphkit.")}
        return Graph(
            name=graph.name or "onnx_model",
            inputs=inputs,
            outputs=outputs,
            constants=constants,
            nodes=nodes,
            metadata=metadata,
        )

    def _choose(self, key: tuple[str, str]) -> tuple[OpDef, OnnxMapping] | None:
        candidates = self.table.get(key, [])
        opset = self.opsets.get(key[0], 1)
        for op, mapping in candidates:
            if key[0] not in STANDARD_DOMAINS or mapping.covers(opset):
                return op, mapping
        return None

    def _cast_like(self, node: onnx.NodeProto) -> onnx.NodeProto:
        """CastLike(x, like) as Cast(x, to=like's type), the type found by ONNX inference
        (inlined function bodies use CastLike to follow their caller's dtype)."""
        if self._types is None:
            try:
                inferred = onnx.shape_inference.infer_shapes(self.model)
            except onnx.shape_inference.InferenceError:
                inferred = self.model
            values = [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]
            self._types = {v.name: v.type.tensor_type.elem_type for v in values}
            self._types.update({t.name: t.data_type for t in self.model.graph.initializer})
        like = node.input[1] if len(node.input) > 1 else ""
        elem_type = self._types.get(like) or (
            helper.np_dtype_to_tensor_dtype(self.constants[like].dtype)
            if like in self.constants else 0
        )
        if not elem_type:
            return node  # left to the registry, which reports it unsupported
        return helper.make_node("Cast", [node.input[0]], list(node.output), name=node.name,
                                to=elem_type)

    def _constant_node(self, node: onnx.NodeProto) -> None:
        if len(node.attribute) != 1 or len(node.output) != 1:
            raise FormatError(f"{self.source}: Constant node {node.name!r} needs exactly one "
                              "value attribute and one output")
        attribute = node.attribute[0]
        value = helper.get_attribute_value(attribute)
        if attribute.name == "value":
            array = numpy_helper.to_array(value)
        elif attribute.name in ("value_float", "value_int"):
            array = np.asarray(value, dtype=np.float32 if attribute.name == "value_float"
                               else np.int64)
        elif attribute.name in ("value_floats", "value_ints"):
            array = np.asarray(list(value), dtype=np.float32 if attribute.name == "value_floats"
                               else np.int64)
        else:
            raise FormatError(f"{self.source}: Constant node {node.name!r}: attribute "
                              f"{attribute.name!r} is not supported")
        self.constants[node.output[0]] = array

    def _node(
        self, onnx_node: onnx.NodeProto, index: int, op: OpDef, mapping: OnnxMapping,
        names: set[str],
    ) -> tuple[Node, list[str], list[str]]:
        inputs = list(onnx_node.input)
        count = len(inputs) if op.variadic else op.num_inputs
        data = inputs[:count]
        while data and data[-1] == "" and not op.accepts(len(data)):
            data.pop()
        if "" in data:
            raise ValueError("an omitted input in the middle is not supported")
        extra = inputs[count:]
        constants: list[np.ndarray | None] = []
        for name in extra:
            if name == "":
                constants.append(None)
            elif name in self.constants:
                constants.append(self.constants[name])
            else:
                raise ValueError(f"input {name!r} must be a constant (an initializer or a "
                                 "Constant node), graphkit takes it as an attribute")
        onnx_attributes = {a.name: _attribute_value(a) for a in onnx_node.attribute}
        opset = self.opsets.get(mapping.domain if mapping.domain != "ai.onnx" else "", 1)
        attributes = mapping.read(onnx_attributes, constants, opset)
        attributes = self._exact_attributes(onnx_node, op, mapping, opset, attributes,
                                            constants)
        name = onnx_node.name or (onnx_node.output[0] if onnx_node.output else f"node{index}")
        while name in names:
            name = f"{name}_{index}"
        node = Node(
            name=name,
            op=OpRef(domain=op.domain, name=op.name, version=op.version),
            inputs=data,
            outputs=list(onnx_node.output),
            attributes=attributes,
        )
        return node, data, [n for n in extra if n]

    def _exact_attributes(
        self, onnx_node: onnx.NodeProto, op: OpDef, mapping: OnnxMapping, opset: int,
        read: dict[str, Any], constants: list[np.ndarray | None],
    ) -> dict[str, Any]:
        """The attributes exactly as the exporting graph wrote them, if they still export to
        this very node (ONNX stores floats in single precision: 0.01 reads back 0.00999...)."""
        props = {p.key: p.value for p in onnx_node.metadata_props}
        if props.get(OP_KEY) != str(OpRef(domain=op.domain, name=op.name, version=op.version)):
            return _canonical(op, read)
        try:
            written = json.loads(props[ATTRIBUTES_KEY])
            validated = op.attributes.model_validate(written).model_dump(mode="json")
            attributes, extra = mapping.export(validated, opset)
        except (KeyError, ValueError, TypeError):
            return _canonical(op, read)
        present = sorted(a.SerializeToString() for a in onnx_node.attribute)
        again = sorted(helper.make_attribute(k, v).SerializeToString()
                       for k, v in attributes.items())
        padded = list(constants) + [None] * (len(extra) - len(constants))
        same_constants = len(extra) == len(padded) and all(
            (a is None) == (b is None) and (a is None or np.array_equal(
                np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)))
            for a, b in zip(extra, padded, strict=True)
        )
        return written if present == again and same_constants else _canonical(op, read)

    def _value_info(self, value: onnx.ValueInfoProto, untyped: set[str]) -> ValueInfo:
        tensor_type = value.type.tensor_type
        if not value.type.HasField("tensor_type"):
            raise FormatError(f"{self.source}: value {value.name!r} is not a tensor")
        dtype = None if value.name in untyped else dtype_from_onnx(
            tensor_type.elem_type, f"{self.source}: value {value.name!r}")
        shape = None
        if tensor_type.HasField("shape"):
            shape = []
            for position, dim in enumerate(tensor_type.shape.dim):
                if dim.HasField("dim_value"):
                    shape.append(dim.dim_value)
                elif dim.HasField("dim_param"):
                    shape.append(_symbol(dim.dim_param))
                else:
                    shape.append(f"{_symbol(value.name)}_dim{position}")
        return ValueInfo(name=value.name, dtype=dtype, shape=shape)


def _canonical(op: OpDef, attributes: dict[str, Any]) -> dict[str, Any]:
    """Attributes as graphkit would write them: those at their default left out."""
    fields = op.attributes.model_fields
    values = op.attributes.model_validate(attributes).model_dump(mode="json")
    return {key: value for key, value in values.items()
            if fields[key].is_required() or fields[key].get_default() != value}


def _attribute_value(attribute: onnx.AttributeProto) -> Any:
    value = helper.get_attribute_value(attribute)
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value)
    if isinstance(value, list) and value and isinstance(value[0], bytes):
        return [v.decode("utf-8") for v in value]
    return value


def _symbol(text: str) -> str:
    """An ONNX dim_param as a graphkit symbolic dimension (an identifier)."""
    cleaned = "".join(c if c.isalnum() or c == "_" else "_" for c in text) or "dim"
    return cleaned if not cleaned[0].isdigit() else f"d{cleaned}"


def _show_op(key: tuple[str, str]) -> str:
    return f"{key[0]}::{key[1]}" if key[0] else key[1]
