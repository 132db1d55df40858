"""Validation of a graph whose nodes are in running order, in one sweep built for a million
nodes: the common case of `graphkit.validate`. It returns None at the first thing that is not
so (a problem, another order), and `graph._validate` then checks rule by rule, naming every
problem; both give equal results on valid graphs (tests/test_load_fast_paths.py).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from functools import partial
from itertools import chain, compress
from operator import attrgetter, itemgetter
from typing import Any

import numpy as np
from pydantic import ValidationError as PydanticValidationError

from graphkit.graph import ResolvedGraph, shapes_agree
from graphkit.model import Graph, Node
from graphkit.numbering import SEQUENCE_NAMES, number_sequence
from graphkit.opdef import OpDef, Shape
from graphkit.registry import Registry

_SCALARS = (str, int, float, bool, type(None))
_pack_float = struct.Struct("<d").pack


def _frozen(value: Any) -> Any:
    """A JSON value as a hashable key that tells apart what validation may tell apart: 1, 1.0
    and True; 0.0 and -0.0 (floats by their bits)."""
    kind = type(value)
    if kind is float:
        return (float, _pack_float(value))
    if kind is list:
        return (list, tuple(_frozen(item) for item in value))
    if kind is dict:
        return (dict, tuple((key, _frozen(item)) for key, item in value.items()))
    return (kind, value)  # a str, int, bool or None (anything unhashable: TypeError)


def _attributes_key(attributes: dict[str, Any]) -> tuple[Any, ...]:
    """`_frozen` of the items of a node's attributes, with scalars done inline (most are)."""
    parts = []
    for name, value in attributes.items():
        kind = type(value)
        if kind is float:
            parts.append((name, (float, _pack_float(value))))
        elif kind is list or kind is dict:
            parts.append((name, _frozen(value)))
        else:
            parts.append((name, (kind, value)))  # (unhashable: TypeError)
    return tuple(parts)


_INFER_CACHE_LIMIT = 1 << 16
"""Distinct (op, attributes, input shapes) signatures whose inferred shapes one sweep keeps."""


def resolve_in_order(graph: Graph, registry: Registry) -> ResolvedGraph | None:
    """The resolved graph, in one sweep, if it is valid and its nodes are in running order;
    None as soon as anything is not so (`graph._validate` then finds out what).

    Built for a million nodes: what can be done for all nodes at once is (with map, zip and
    numpy, in C), and the one loop in Python, shape inference, does little per node.
    - Values are numbered (slots) in order: inputs, constants, then each node's outputs; so a
      graph in running order is one whose nodes read only slots below their first output's.
      Names are matched to slots with a dict, or, in a big sequence (each node reading inputs,
      constants and its predecessor's output), without one (numbering.py).
    - An op is looked up, and a set of attribute values validated, once per distinct one (by
      identity of the OpRef, which loaders share between nodes; by value of the attributes).
    - Shapes are inferred once per distinct signature: op, attribute values, and the identity
      of the input shapes (an inferred shape is shared by every value given it, so a chain or
      a DAG of like nodes has a handful of signatures); `infer` depends on those alone.
    """
    nodes = graph.nodes
    count = len(nodes)
    shapes: list[Shape] = [None if info.shape is None else tuple(info.shape)
                           for info in graph.inputs]
    shapes += [tuple(constant.shape) for constant in graph.constants]
    base = len(shapes)
    inputs_of = list(map(_INPUTS, nodes))
    outputs_of = list(map(_OUTPUTS, nodes))
    names = [info.name for info in graph.inputs] + [c.name for c in graph.constants]
    names += chain.from_iterable(outputs_of)
    numbered = None
    if len(names) >= SEQUENCE_NAMES:  # (numbering.py)
        numbered = number_sequence(names, base, inputs_of,
                                   np.fromiter(map(len, outputs_of), np.intp, count),
                                   [info.name for info in graph.outputs])
    slots: Mapping[str, int]
    if numbered is not None:
        slots, node_slots = numbered
    else:
        slots = dict(zip(names, range(len(names)), strict=True))
        if len(slots) != len(names):
            return None  # a value defined twice
        try:
            node_slots = list(map(tuple, map(partial(map, slots.__getitem__), inputs_of)))
        except KeyError:
            return None  # a value not defined at all
    # the op of each node, and its counts of inputs and outputs
    refs = list(map(_OP, nodes))
    ref_ids = list(map(id, refs))
    kinds: dict[int, int] = {}  # id(OpRef) -> index in `distinct`
    distinct: list[OpDef] = []
    for ref_id, ref in dict(zip(ref_ids, refs, strict=True)).items():
        found = registry.get(ref)
        if found is None:
            return None
        kinds[ref_id] = len(distinct)
        distinct.append(found)
    kind = np.fromiter(map(kinds.__getitem__, ref_ids), np.intp, count)
    in_counts = np.fromiter(map(len, node_slots), np.intp, count)
    out_counts = np.fromiter(map(len, outputs_of), np.intp, count)
    takes = np.array([op.num_inputs for op in distinct], np.intp)[kind]
    variadic = np.array([op.variadic for op in distinct], bool)[kind]
    if not (np.where(variadic, in_counts >= takes, in_counts == takes).all()
            and (out_counts == np.array([op.num_outputs for op in distinct], np.intp)[kind])
            .all()):
        return None
    firsts = base + np.cumsum(out_counts) - out_counts  # each node's first output's slot
    read = np.fromiter(chain.from_iterable(node_slots), np.intp, int(in_counts.sum()))
    if not (read < np.repeat(firsts, in_counts)).all():
        return None  # another order
    ops = list(map(distinct.__getitem__, kind.tolist()))
    attrs, tokens = _node_attributes(nodes, ops, kind, distinct)
    if attrs is None:
        return None
    node_names = list(map(_NAME, nodes))
    # Outputs are unique, so names taken from them are: only other names need checking.
    if node_names != list(map(_FIRST, outputs_of)) and len(set(node_names)) != count:
        return None
    if not _infer_in_order(shapes, node_slots, ops, attrs, tokens):
        return None
    for info in graph.outputs:
        if info.name not in slots:
            return None
        inferred = shapes[slots[info.name]]
        if info.shape is not None and inferred is not None \
                and not shapes_agree(info.shape, inferred):
            return None
    owners = [registry.owner(op) for op in distinct]
    return ResolvedGraph(
        model=graph,
        order=list(range(count)),
        ops=ops,
        attributes=attrs,
        plugins=list(map(owners.__getitem__, kind.tolist())),
        slots=slots,
        slot_shapes=shapes,
        node_slots=node_slots,
    )


_INPUTS, _OUTPUTS, _OP, _NAME = (attrgetter(name) for name in ("inputs", "outputs", "op", "name"))
_ATTRIBUTES = attrgetter("attributes")
_FIRST = itemgetter(0)


def _node_attributes(
    nodes: list[Node], ops: list[OpDef], kind: np.ndarray, distinct: list[OpDef]
) -> tuple[list[dict[str, Any]], list[int | None]] | tuple[None, None]:
    """Each node's attributes validated (new dicts) and their tokens (`_validated_token`), or
    (None, None) if some are not valid. Nodes without attributes copy their op's defaults."""
    validated: dict[Any, dict[str, Any]] = {}
    defaults = [_validated_token(op, {}, validated) for op in distinct]
    given = list(map(_ATTRIBUTES, nodes))
    attrs: list[dict[str, Any]]
    tokens: list[int | None]
    if all(token is not None for _values, token in defaults):
        kinds = kind.tolist()
        values_of = [values for values, _token in defaults]
        tokens_of = [token for _values, token in defaults]
        attrs = list(map(dict.copy, map(values_of.__getitem__, kinds)))  # type: ignore[arg-type]
        tokens = list(map(tokens_of.__getitem__, kinds))
        todo = compress(range(len(nodes)), given)  # (nodes with attributes of their own)
    else:
        attrs, tokens, todo = [{}] * len(nodes), [None] * len(nodes), range(len(nodes))
    for index in todo:
        values, token = _validated_token(ops[index], given[index], validated)
        if values is None:
            return None, None
        attrs[index], tokens[index] = values, token
    return attrs, tokens


def _infer_in_order(
    shapes: list[Shape], node_slots: list[tuple[int, ...]], ops: list[OpDef],
    attrs: list[dict[str, Any]], tokens: list[int | None],
) -> bool:
    """Append each node's inferred output shapes to `shapes` (by slot), in order; False if an
    inference refuses its inputs (ValueError) or gives fewer shapes than the op has outputs.

    Signatures are keyed by the identity of the input shapes, so inferred shapes are shared:
    each is replaced by the first equal one (`_shared`), and the next node like this one finds
    the same signature."""
    by_signature: dict[tuple[int, ...], list[Shape]] = {}
    by_value: dict[Any, Shape] = {}
    shape_of = shapes.__getitem__
    append = shapes.append
    for ins, op, attributes, token in zip(node_slots, ops, attrs, tokens, strict=True):
        infer, count = op.infer, op.num_outputs
        if infer is None:
            shapes += [None] * count
            continue
        key = None if token is None else (token, *map(id, map(shape_of, ins)))
        result = None if key is None else by_signature.get(key)
        if result is None:
            try:
                result = list(infer(*map(shape_of, ins), **attributes))
            except ValueError:
                return False
            if len(result) < count:
                return False
            if key is not None and len(by_signature) < _INFER_CACHE_LIMIT:
                shared = [_shared(shape, by_value) for shape in result]
                if all(shape is not _UNSHARED for shape in shared):
                    result = by_signature[key] = shared
        if count == 1:
            append(result[0])
        else:
            shapes += result[:count]
    return True


_UNSHARED = object()
_DIMS = (int, str, type(None))


def _shared(shape: Shape, by_value: dict[Any, Shape]) -> Any:
    """The first shape seen equal to this one, or this one; `_UNSHARED` unless it is None or a
    tuple of ints, strings and Nones (immutable, and equal only if alike: not so 1 and True)."""
    if shape is None:
        return None
    if type(shape) is not tuple or not all(type(dim) in _DIMS for dim in shape):
        return _UNSHARED
    return by_value.setdefault(shape, shape)


def _validated_token(
    op: OpDef, attributes: dict[str, Any], cache: dict[Any, dict[str, Any]]
) -> tuple[dict[str, Any] | None, int | None]:
    """The node's attributes validated by its op (a new dict), or None if they are not valid;
    and a token that stands for the op and these values (None if they are not cached).

    Validated once per op and distinct values when the result holds only immutable scalars, so
    that a shallow copy is a copy; the token is the id of the cached dict (kept alive there)."""
    try:
        key = (id(op), _attributes_key(attributes))
        found = cache.get(key)
    except TypeError:  # an unhashable value
        key, found = None, None
    if found is not None:
        return found.copy(), id(found)
    try:
        values = dict(op.attributes.model_validate(attributes))
    except PydanticValidationError:
        return None, None
    if key is not None and all(type(value) in _SCALARS for value in values.values()):
        cache[key] = values
        return values.copy(), id(values)
    return values, None
