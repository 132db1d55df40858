"""Models <-> networkx, and validation that reports every problem at once.

In networkx a graph is bipartite: value nodes (keyed by value name) and op nodes (keyed by
their index in `Graph.nodes`); an edge value -> op has the input position as its key and an
edge op -> value the output position, so `x * x` is two parallel edges.
"""

from __future__ import annotations

import functools
import struct
from collections import Counter
from dataclasses import dataclass
from functools import partial
from itertools import chain, compress
from operator import attrgetter, itemgetter
from typing import Any

import networkx as nx
import numpy as np
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from graphkit.errors import GraphValidationError
from graphkit.gcpause import gc_paused
from graphkit.model import Graph, Node
from graphkit.opdef import OpDef, Shape
from graphkit.ops.shapes import show
from graphkit.registry import Registry, default_registry


def to_nx(graph: Graph) -> nx.MultiDiGraph:
    """The graph as networkx; every model field is kept, so `from_nx(to_nx(g)) == g`."""
    g = nx.MultiDiGraph(model=graph.model_copy(update={"nodes": []}))
    for info in graph.inputs:
        g.add_node(info.name, kind="input", info=info)
    for constant in graph.constants:
        g.add_node(constant.name, kind="constant", info=constant)
    for index, node in enumerate(graph.nodes):
        g.add_node(index, kind="op", node=node)
        for position, value in enumerate(node.inputs):
            if value not in g:
                g.add_node(value, kind="value")
            g.add_edge(value, index, key=position)
        for position, value in enumerate(node.outputs):
            if value not in g:
                g.add_node(value, kind="value")
            g.add_edge(index, value, key=position)
    return g


def from_nx(g: nx.MultiDiGraph) -> Graph:
    """The model back from `to_nx`'s graph (op nodes in index order)."""
    ops = sorted(n for n, kind in g.nodes(data="kind") if kind == "op")
    return g.graph["model"].model_copy(update={"nodes": [g.nodes[i]["node"] for i in ops]})


@dataclass(frozen=True, eq=False)
class ResolvedGraph:
    """A graph that passed validation, with each node's op and attributes resolved once."""

    model: Graph
    order: list[int]
    """Indices of `model.nodes` in an order that runs every producer before its consumers."""
    ops: list[OpDef]
    attributes: list[dict[str, Any]]
    plugins: list[str]
    known_shapes: dict[str, Shape] | None = None
    """Inferred shapes by value name (None when `slots` and `slot_shapes` hold them)."""
    slots: dict[str, int] | None = None
    """Value name -> slot (inputs, constants, then node outputs in order), when validation
    numbered the values on its way (graphs in running order): the plan reuses the numbers
    instead of looking every name up again."""
    slot_shapes: list[Shape] | None = None
    node_slots: list[tuple[int, ...]] | None = None
    """Per node (index of `model.nodes`): the slots of its inputs. Its outputs take the next
    slots in order: the first node's the first slot after the inputs and constants."""

    def __eq__(self, other: object) -> bool:
        """Equal when they resolve the same graph alike, however validation got there."""
        if not isinstance(other, ResolvedGraph):
            return NotImplemented
        return (self.model, self.order, self.ops, self.attributes, self.plugins, self.shapes) \
            == (other.model, other.order, other.ops, other.attributes, other.plugins,
                other.shapes)

    __hash__ = None  # type: ignore[assignment]

    @functools.cached_property
    def shapes(self) -> dict[str, Shape]:
        """Inferred shapes by value name (None where unknown)."""
        if self.known_shapes is not None:
            return self.known_shapes
        assert self.slots is not None and self.slot_shapes is not None
        return dict(zip(self.slots, self.slot_shapes, strict=True))

    @functools.cached_property
    def nx(self) -> nx.MultiDiGraph:
        """The graph in networkx, built on first use (running a graph never needs it)."""
        return to_nx(self.model)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _node_label(node: Node) -> str:
    return f"node {node.name!r} ({node.op})"


def _attribute_problems(op: OpDef, node: Node) -> tuple[BaseModel | None, list[str]]:
    try:
        return op.attributes.model_validate(node.attributes), []
    except PydanticValidationError as exc:
        found = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"]) or "attributes"
            found.append(f"{_node_label(node)}: attribute {where}: {error['msg']}")
        return None, found


def _definitions(graph: Graph) -> tuple[dict[str, str], list[str]]:
    """Where each value is defined, and a problem for every value defined twice."""
    places: dict[str, list[str]] = {}
    for info in graph.inputs:
        places.setdefault(info.name, []).append("graph input")
    for constant in graph.constants:
        places.setdefault(constant.name, []).append("constant")
    for node in graph.nodes:
        for value in node.outputs:
            places.setdefault(value, []).append(f"output of node {node.name!r}")
    problems = [
        f"value {name!r} is defined {len(where)} times ({', '.join(where)})"
        for name, where in places.items()
        if len(where) > 1
    ]
    return {name: where[0] for name, where in places.items()}, problems


def _order(graph: Graph) -> tuple[list[int], list[str]]:
    """File order when it already runs producers first, else a topological order; or cycles."""
    seen = {info.name for info in graph.inputs} | {c.name for c in graph.constants}
    in_order = True
    for node in graph.nodes:
        if any(value not in seen for value in node.inputs):
            in_order = False
            break
        seen.update(node.outputs)
    if in_order:
        return list(range(len(graph.nodes))), []
    g = to_nx(graph)
    try:
        return [n for n in nx.topological_sort(g) if isinstance(n, int)], []
    except nx.NetworkXUnfeasible:
        pass
    problems = []
    for component in nx.strongly_connected_components(g):
        members = [n for n in component if isinstance(n, int)]
        if len(component) > 1 or g.has_edge(next(iter(component)), next(iter(component))):
            cycle = nx.find_cycle(g.subgraph(component))
            names = [graph.nodes[u].name for u, _v, _k in cycle if isinstance(u, int)]
            if not names:
                names = [graph.nodes[i].name for i in members]
            problems.append("nodes " + " -> ".join(names + names[:1]) + " form a cycle")
    return [], problems


def _infer_shapes(
    graph: Graph, order: list[int], ops: list[OpDef | None], attrs: list[dict[str, Any] | None]
) -> tuple[dict[str, Shape], list[str]]:
    shapes: dict[str, Shape] = {}
    for info in graph.inputs:
        shapes[info.name] = None if info.shape is None else tuple(info.shape)
    for constant in graph.constants:
        shapes[constant.name] = tuple(constant.shape)
    problems = []
    for index in order:
        node, op, attributes = graph.nodes[index], ops[index], attrs[index]
        result: list[Shape] = [None] * len(node.outputs)
        # (a node with the wrong number of inputs is a problem already: its infer cannot run)
        if (op is not None and op.infer is not None and attributes is not None
                and op.accepts(len(node.inputs))):
            args = [shapes.get(v) for v in node.inputs]
            try:
                result = list(op.infer(*args, **attributes))
            except ValueError as exc:
                shown = ", ".join(show(s) for s in args)
                problems.append(f"{_node_label(node)}: inputs {shown}: {exc}")
                result = [None] * len(node.outputs)
        for value, shape in zip(node.outputs, result, strict=False):
            shapes[value] = shape
    for info in graph.outputs:
        inferred = shapes.get(info.name)
        if info.shape is not None and inferred is not None and not _agree(info.shape, inferred):
            problems.append(
                f"output {info.name!r} is declared {show(tuple(info.shape))} "
                f"but computes {show(inferred)}"
            )
    return shapes, problems


def _agree(declared: list[Any], inferred: tuple[Any, ...]) -> bool:
    if len(declared) != len(inferred):
        return False
    return all(
        not (isinstance(a, int) and isinstance(b, int)) or a == b
        for a, b in zip(declared, inferred, strict=True)
    )


def validate(graph: Graph, registry: Registry | None = None) -> ResolvedGraph:
    """Check every rule and resolve every op; raise GraphValidationError listing all problems.

    A graph that is valid and in running order (the common case) passes one linear sweep,
    `_resolve_in_order`; anything else (a problem, another order) is then checked rule by rule,
    `_validate`, which names every problem. The garbage collector is paused meanwhile
    (`graphkit.gcpause`).
    """
    registry = registry or default_registry()
    with gc_paused():
        resolved = _resolve_in_order(graph, registry)
        return resolved if resolved is not None else _validate(graph, registry)


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


def _resolve_in_order(graph: Graph, registry: Registry) -> ResolvedGraph | None:
    """The resolved graph, in one sweep, if it is valid and its nodes are in running order;
    None as soon as anything is not so (`_validate` then finds out what).

    Built for a million nodes: what can be done for all nodes at once is (with map, zip and
    numpy, in C), and the one loop in Python, shape inference, does little per node.
    - Values are numbered (slots) in order: inputs, constants, then each node's outputs; so a
      graph in running order is one whose nodes read only slots below their first output's.
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
        if info.shape is not None and inferred is not None and not _agree(info.shape, inferred):
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


def _validated(
    op: OpDef, attributes: dict[str, Any], cache: dict[Any, dict[str, Any]]
) -> dict[str, Any] | None:
    """The node's attributes validated by its op (a new dict), or None if they are not valid."""
    return _validated_token(op, attributes, cache)[0]


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


def _validate(graph: Graph, registry: Registry) -> ResolvedGraph:
    """Check rule by rule, in any order of the nodes, naming every problem."""
    problems: list[str] = []
    for name, count in Counter(node.name for node in graph.nodes).items():
        if count > 1:
            problems.append(f"node name {name!r} is used by {count} nodes")
    defined, duplicates = _definitions(graph)
    problems += duplicates
    ops: list[OpDef | None] = []
    attrs: list[dict[str, Any] | None] = []
    for node in graph.nodes:
        op = registry.get(node.op)
        ops.append(op)
        attrs.append(None)
        if op is None:
            problems.append(f"{_node_label(node)}: {registry.unknown_message(node.op)}")
        else:
            if not op.accepts(len(node.inputs)):
                problems.append(
                    f"{_node_label(node)}: takes {op.arity}, got {len(node.inputs)}"
                )
            if len(node.outputs) != op.num_outputs:
                problems.append(
                    f"{_node_label(node)}: has {_count(op.num_outputs, 'output')}, "
                    f"got {len(node.outputs)}"
                )
            model, found = _attribute_problems(op, node)
            problems += found
            if model is not None:
                attrs[-1] = dict(model)
        for value in node.inputs:
            if value not in defined:
                problems.append(f"{_node_label(node)}: input {value!r} is not defined")
    for info in graph.outputs:
        if info.name not in defined:
            problems.append(f"output {info.name!r} is not computed by any node")
    order, cycles = _order(graph)
    problems += cycles
    shapes: dict[str, Shape] = {}
    if not cycles:
        shapes, shape_problems = _infer_shapes(graph, order, ops, attrs)
        problems += shape_problems
    if problems:
        raise GraphValidationError(graph.name, problems)
    return ResolvedGraph(
        model=graph,
        order=order,
        ops=[op for op in ops if op is not None],
        attributes=[a if a is not None else {} for a in attrs],
        plugins=[registry.owner(op) for op in ops if op is not None],
        known_shapes=shapes,
    )
