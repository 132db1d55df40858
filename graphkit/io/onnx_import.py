"""Import ONNX models: each ONNX node becomes the registered op whose mapping claims it.

Loading untrusted files is safe: the size is capped before parsing, truncated or malformed
protobuf is a FormatError, ir_version 0 (what empty bytes parse to) and unknown versions are
refused, and external data is read only from plain files inside the model's own folder.

Speed: a big graph has few distinct kinds of node (op type, attributes, graphkit's metadata),
so what a node becomes is worked out once per kind, found by the node's bytes other than its
inputs, outputs and name (`_bytes_key`), including the check that its attributes round-trip
exactly; later nodes of the kind are built without validating again (`trusted_node`), the
plain ones (every input given, names unused) in the import's loop itself (`_Kind.direct`). The
graph is validated without its nodes, which are set afterwards: each is a Node already. The
garbage collector is paused meanwhile (`graphkit.gcpause`).
"""

from __future__ import annotations

import functools
import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import helper, inliner, numpy_helper

from graphkit.errors import FormatError, GraphkitError
from graphkit.gcpause import gc_paused
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
from graphkit.model import Constant, Graph, Node, OpRef, Tensor, ValueInfo, trusted_node
from graphkit.onnxmap import OnnxMapping, mappings
from graphkit.opdef import OpDef
from graphkit.registry import Registry, default_registry

STANDARD_DOMAINS = ("", "ai.onnx")


def load_onnx(path: str | os.PathLike[str], registry: Registry | None = None) -> Graph:
    """Read an .onnx file into a graph; every problem is a FormatError naming the file."""
    source = Path(path)
    data = read_capped(source, "an ONNX model")
    with gc_paused():
        model = parse_model(data, str(source))
        reader = _ExternalReader(source.parent.resolve(), str(source))
        # the graph's own nodes are read as the import meets them (`_Kind.external`): looking
        # at every attribute of every node up front would cost as much as the import itself
        for tensor in _external_tensors(model, graph_nodes=False):
            reader.read(tensor)
        return _import(model, registry, str(source), reader)


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
    model: onnx.ModelProto, functions: bool = True, graph_nodes: bool = True
) -> Iterable[onnx.TensorProto]:
    """Tensors with external data: initializers, node attributes of the graph (unless told
    not to) and of model-local function bodies (ditto; inlining copies those into the graph)."""
    for tensor in model.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            yield tensor
    bodies = ([model.graph] if graph_nodes else []) + (list(model.functions) if functions else [])
    for node in (node for body in bodies for node in body.node):
        yield from _external_attribute_tensors(node)


def _external_attribute_tensors(node: onnx.NodeProto) -> Iterable[onnx.TensorProto]:
    for attribute in node.attribute:
        tensors = [attribute.t] if attribute.HasField("t") else []
        for tensor in [*tensors, *attribute.tensors]:
            if tensor.data_location == onnx.TensorProto.EXTERNAL:
                yield tensor


class _ExternalReader:
    """Reads external tensor data, but only from regular files inside the model's folder, and
    no more than the file size limit in all."""

    def __init__(self, folder: Path, source: str) -> None:
        self.folder = folder
        self.source = source
        self.total = 0

    def read(self, tensor: onnx.TensorProto) -> None:
        folder, source = self.folder, self.source
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
        self.total += size  # many tensors may name the same bytes: cap what is read in all
        if self.total > max_file_bytes():
            raise FormatError(f"{where}: {self.total} bytes of external data in all is over "
                              f"the limit of {max_file_bytes()}")
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
    return _import(model, registry, source, None)


def _import(
    model: onnx.ModelProto, registry: Registry | None, source: str,
    reader: _ExternalReader | None,
) -> Graph:
    try:
        with gc_paused():
            return _Importer(model, registry or default_registry(), source, reader).run()
    except GraphkitError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RuntimeError,
            OverflowError, UnicodeDecodeError, DecodeError, onnx.checker.ValidationError) as exc:
        raise FormatError(f"{source}: cannot import: {type(exc).__name__}: {exc}") from None


@dataclass
class _Kind:
    """What the nodes of one op type, domain, attribute set and metadata become: `role` is
    "op", "constant" (a Constant node), "cast_like" or "unsupported" (`shown` names the op)."""

    role: str
    op_type: str
    shown: str = ""
    op: OpDef | None = None
    mapping: OnnxMapping | None = None
    ref: OpRef | None = None
    external: bool = False
    """Some attribute tensor keeps its data in an external file (not read yet)."""
    attributes: dict[tuple[int, ...], tuple[dict[str, Any], bool, list[Any]]] = field(
        default_factory=dict)
    """By the ids of the constant inputs: the validated attributes, whether they hold no list
    or dict (so a shallow copy is a copy), and the constants (kept alive: ids stay unique)."""
    direct: tuple[int, dict[str, Any], bool] | None = None
    """Once a node of the kind without constant inputs is built (an op of fixed arity): its
    number of inputs, attributes and whether they are flat, for `_Importer.run` to build the
    kind's plain nodes (every input given, names exact and unused) without `_node`."""


_TAG_NAME = 0x1A  # NodeProto field 3 (name), length-delimited
_KEY_LIMIT = 4096
"""Nodes whose other fields take more bytes than this (tensors, long metadata) are not looked
up among earlier ones: the keys would hold a copy of their data while the import runs."""


def _bytes_key(
    onnx_node: onnx.NodeProto, inputs: list[str], outputs: list[str], name: str
) -> bytes | None:
    """The node's serialized bytes after its inputs, outputs and name, i.e. exactly the
    encoding of everything else (op type, attributes, domain, metadata, unknown fields); or
    None unless every name is an ASCII string under 128 characters.

    Serialization writes fields in field-number order (checked once, `_serialization_is_
    ordered`) and inputs, outputs and name are fields 1 to 3, each such string taking its
    length plus 2 bytes (a tag, a one-byte length): so the encoding of the rest starts at a
    known offset. Cheaper than reading the attributes and metadata field by field.
    """
    try:
        joined = "".join(inputs) + "".join(outputs) + name
    except TypeError:  # a string that is not valid UTF-8 arrives as bytes
        return None
    if not joined.isascii():
        return None
    if len(joined) >= 128 and any(len(s) >= 128 for s in (*inputs, *outputs, name)):
        return None
    strings = len(inputs) + len(outputs) + (1 if name or onnx_node.HasField("name") else 0)
    start = len(joined) + 2 * strings
    data = onnx_node.SerializeToString()
    if len(data) < start or name and (data[start - len(name) - 2] != _TAG_NAME
                 or data[start - len(name):start] != name.encode("ascii")):
        return None  # not laid out as expected: no shortcut
    return data[start:]


def _fields_key(onnx_node: onnx.NodeProto) -> tuple[Any, ...]:
    """Everything but inputs, outputs and name that the import of a node depends on."""
    return (onnx_node.domain, onnx_node.op_type,
            tuple(a.SerializeToString() for a in onnx_node.attribute),
            tuple((p.key, p.value) for p in onnx_node.metadata_props))


@functools.cache
def _serialization_is_ordered() -> bool:
    """Whether this protobuf writes a parsed NodeProto's fields in field-number order, as
    protobuf implementations do (the order is not part of the wire format's contract)."""
    def field_bytes(tag: int, text: bytes) -> bytes:
        return bytes([tag, len(text)]) + text

    scrambled = (field_bytes(0x22, b"Add") + field_bytes(0x1A, b"n") + field_bytes(0x12, b"o")
                 + field_bytes(0x0A, b"i") + field_bytes(0x3A, b"d") + field_bytes(0x0A, b"j"))
    node = onnx.NodeProto()
    node.ParseFromString(scrambled)
    expected = (field_bytes(0x0A, b"i") + field_bytes(0x0A, b"j") + field_bytes(0x12, b"o")
                + field_bytes(0x1A, b"n") + field_bytes(0x22, b"Add") + field_bytes(0x3A, b"d"))
    return node.SerializeToString() == expected


def _copy_json(value: Any) -> Any:
    """A copy of a JSON value (dicts and lists new, the rest immutable)."""
    if isinstance(value, dict):
        return {key: _copy_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy_json(item) for item in value]
    return value


class _Importer:
    """One import: ONNX model in, graphkit Graph out."""

    def __init__(
        self, model: onnx.ModelProto, registry: Registry, source: str,
        reader: _ExternalReader | None = None,
    ) -> None:
        self.source = source
        self.reader = reader
        self.registry = registry
        self.table = _table(registry)
        self.props = {p.key: p.value for p in model.metadata_props}
        known = {key for key in self.table}
        unknown_functions = [(f.domain, f.name) for f in model.functions
                             if (f.domain, f.name) not in known]
        if unknown_functions:
            model = inliner.inline_selected_functions(model, unknown_functions)
        for tensor in _external_tensors(model, functions=False, graph_nodes=False):
            self._unread(tensor)  # (the graph's nodes: as `run` meets them)
        self.model = model
        self.opsets = {("" if o.domain == "ai.onnx" else o.domain): o.version
                       for o in model.opset_import}
        self.constants: dict[str, np.ndarray] = {}
        self._types: dict[str, int] | None = None

    def _unread(self, tensor: onnx.TensorProto) -> None:
        # onnx would read it relative to the working directory: only load_onnx reads external
        # data, and only from inside the model's folder
        raise FormatError(f"{self.source}: tensor {tensor.name!r} keeps its data in an external "
                          "file that was not read; load the model from its file (load_onnx)")

    def _read_external(self, onnx_node: onnx.NodeProto) -> _Kind:
        """Read the node's external tensors (load_onnx) or refuse them; its kind afterwards."""
        for tensor in list(_external_attribute_tensors(onnx_node)):
            if self.reader is None:
                self._unread(tensor)
            else:
                self.reader.read(tensor)
        return self._kind(onnx_node)

    def _json_prop(self, key: str, default: Any) -> Any:
        raw = self.props.get(key)
        if raw is None:
            return default
        try:
            return json.loads(raw)
        except ValueError:
            raise FormatError(f"{self.source}: metadata {key!r} is not valid JSON") from None

    def run(self) -> Graph:
        """Each node's kind looked up by its bytes (`by_bytes`), else by its fields
        (`by_fields`: names not ASCII or long, or other bytes in it such as a doc string),
        else worked out (`_kind`)."""
        graph = self.model.graph
        initializer_names = {t.name for t in graph.initializer}
        for tensor in graph.initializer:
            self.constants[tensor.name] = numpy_helper.to_array(tensor)
        untyped = set(self._json_prop(UNTYPED_KEY, []))
        unshaped = set(self._json_prop(UNSHAPED_KEY, []))
        nodes: list[Node] = []
        problems: list[str] = []
        unsupported: Counter[str] = Counter()
        attribute_inputs: set[str] = set()
        names: set[str] = set()
        ordered = _serialization_is_ordered()
        by_bytes: dict[bytes, _Kind] = {}
        by_fields: dict[tuple[Any, ...], _Kind] = {}
        for index, onnx_node in enumerate(graph.node):
            inputs = onnx_node.input[:]
            outputs = onnx_node.output[:]
            given_name = onnx_node.name
            key = _bytes_key(onnx_node, inputs, outputs, given_name) if ordered else None
            kind = by_bytes.get(key) if key is not None else None
            if kind is None:
                size = len(key) if key is not None else onnx_node.ByteSize()
                if size > _KEY_LIMIT:
                    kind = self._kind(onnx_node)  # a tensor in it, most likely: not shared
                else:
                    fields = _fields_key(onnx_node)
                    kind = by_fields.get(fields)
                    if kind is None:
                        kind = by_fields[fields] = self._kind(onnx_node)
                    if key is not None:
                        by_bytes[key] = kind
            if kind.external:
                kind, key = self._read_external(onnx_node), None
            if kind.role != "op":
                if kind.role == "constant":
                    self._constant_node(onnx_node)
                elif kind.role == "cast_like":
                    self._slow_node(self._cast_like(onnx_node), index, nodes, problems,
                                    unsupported, attribute_inputs, names)
                else:
                    unsupported[kind.shown] += 1
                continue
            direct = kind.direct if key is not None else None
            if direct is not None and len(inputs) == direct[0] and "" not in inputs \
                    and outputs and "" not in outputs:
                # what `_node` does for such a node; names from `_bytes_key` are under 128
                name = outputs[0] if not given_name or given_name == outputs[0] else given_name
                if name not in names:
                    names.add(name)
                    nodes.append(trusted_node(name, kind.ref, inputs, outputs, direct[1].copy()
                                              if direct[2] else _copy_json(direct[1])))
                    continue
            try:
                node, extra = self._node(onnx_node, index, kind, inputs, outputs, given_name,
                                         names, exact_names=key is not None)
            except ValueError as exc:
                problems.append(f"node {given_name or index!r} ({kind.op_type}): {exc}")
                continue
            names.add(node.name)
            nodes.append(node)
            if extra:
                attribute_inputs.update(extra)
            elif kind.direct is None and not kind.external and () in kind.attributes:
                op = kind.op
                assert op is not None
                if not op.variadic:
                    attributes, flat, _constants = kind.attributes[()]
                    kind.direct = (op.num_inputs, attributes, flat)
        if unsupported:
            listed = ", ".join(f"{op} ({count} node{'s' if count > 1 else ''})"
                               for op, count in sorted(unsupported.items()))
            raise FormatError(f"{self.source}: unsupported ONNX ops: {listed}")
        if problems:
            raise FormatError(f"{self.source}: " + "; ".join(problems))
        declared_extra = set(self._json_prop(EXTRA_KEY, []))
        drop: set[str] = set()
        if attribute_inputs or declared_extra:
            used_as_data = {name for node in nodes for name in node.inputs}
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
        # The nodes are set after validation: each is a Node already (validated, or built by
        # `trusted_node` from checked parts), and pydantic would walk all of them again.
        shell = Graph(
            name=graph.name or "onnx_model",
            inputs=inputs,
            outputs=outputs,
            constants=constants,
            nodes=[],
            metadata=metadata,
        )
        return shell.model_copy(update={"nodes": nodes})

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

    def _kind(self, onnx_node: onnx.NodeProto, special: bool = True) -> _Kind:
        """What every node with this op type, domain, attributes and metadata becomes;
        `special`: Constant and CastLike nodes are handled apart."""
        domain, op_type = onnx_node.domain, onnx_node.op_type
        external = any(True for _ in _external_attribute_tensors(onnx_node))
        if special and domain in STANDARD_DOMAINS and op_type in ("Constant", "CastLike"):
            return _Kind("constant" if op_type == "Constant" else "cast_like", op_type,
                         external=external)
        key = ("" if domain == "ai.onnx" else domain, op_type)
        chosen = self._choose(key)
        if chosen is None:
            return _Kind("unsupported", op_type, _show_op(key), external=external)
        op, mapping = chosen
        return _Kind("op", op_type, op=op, mapping=mapping,
                     ref=OpRef(domain=op.domain, name=op.name, version=op.version),
                     external=external)

    def _slow_node(
        self, onnx_node: onnx.NodeProto, index: int, nodes: list[Node], problems: list[str],
        unsupported: Counter[str], attribute_inputs: set[str],
        names: set[str],
    ) -> None:
        """A node whose meaning depends on more than its own fields (CastLike made a Cast)."""
        kind = self._kind(onnx_node, special=False)
        if kind.role != "op":
            unsupported[kind.shown] += 1
            return
        try:
            node, extra = self._node(onnx_node, index, kind, onnx_node.input[:],
                                     onnx_node.output[:], onnx_node.name, names,
                                     exact_names=False)
        except ValueError as exc:
            problems.append(f"node {onnx_node.name or index!r} ({onnx_node.op_type}): {exc}")
            return
        names.add(node.name)
        nodes.append(node)
        attribute_inputs.update(extra)

    def _node(
        self, onnx_node: onnx.NodeProto, index: int, kind: _Kind, inputs: list[str],
        outputs: list[str], given_name: str, names: set[str], exact_names: bool,
    ) -> tuple[Node, list[str]]:
        """The node, and the names of its inputs that carry attributes.

        Its attributes are worked out (read, and checked to round-trip exactly) once per
        distinct kind and constant inputs, then copied: a big graph has few distinct ones.
        `exact_names` says every name is ASCII and under 128 characters (checked by
        `_bytes_key`), so the node can be built without validating it again.
        """
        op, mapping = kind.op, kind.mapping
        assert op is not None and mapping is not None
        count = len(inputs) if op.variadic else op.num_inputs
        data, extra = (inputs, []) if len(inputs) <= count else (inputs[:count], inputs[count:])
        while data and data[-1] == "" and not op.accepts(len(data)):
            data.pop()
        if "" in data:
            raise ValueError("an omitted input in the middle is not supported")
        constants: list[np.ndarray | None] = []
        for name in extra:
            if name == "":
                constants.append(None)
            elif name in self.constants:
                constants.append(self.constants[name])
            else:
                raise ValueError(f"input {name!r} must be a constant (an initializer or a "
                                 "Constant node), graphkit takes it as an attribute")
        if outputs and (not given_name or given_name == outputs[0]):
            name = outputs[0]  # (one string object for both)
        else:
            name = given_name or f"node{index}"
        while name in names:
            name = f"{name}_{index}"
        # (the arrays themselves are kept in the cache: an id is unique while its object lives)
        identity = tuple(map(id, constants)) if constants else ()
        cached = kind.attributes.get(identity)
        if cached is None:
            node = Node(name=name, op=kind.ref, inputs=data, outputs=outputs,
                        attributes=self._attributes(onnx_node, op, mapping, constants))
            attributes = node.attributes
            flat = not any(isinstance(v, (dict, list)) for v in attributes.values())
            kind.attributes[identity] = (attributes, flat, constants)
        elif exact_names and outputs and "" not in outputs and len(name) <= 256:
            attributes = cached[0].copy() if cached[1] else _copy_json(cached[0])
            node = trusted_node(name, kind.ref, data, outputs, attributes)
        else:
            node = Node(name=name, op=kind.ref, inputs=data, outputs=outputs,
                        attributes=cached[0])
        return node, [n for n in extra if n] if extra else extra

    def _attributes(
        self, onnx_node: onnx.NodeProto, op: OpDef, mapping: OnnxMapping,
        constants: list[np.ndarray | None],
    ) -> dict[str, Any]:
        onnx_attributes = {a.name: _attribute_value(a) for a in onnx_node.attribute}
        opset = self.opsets.get(mapping.domain if mapping.domain != "ai.onnx" else "", 1)
        attributes = mapping.read(onnx_attributes, constants, opset)
        return self._exact_attributes(onnx_node, op, mapping, opset, attributes, constants)

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
