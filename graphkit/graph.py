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
from typing import Any

import networkx as nx
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

    Per node: one lookup of its op, count checks, shape inference. An op is looked up, and a
    set of attribute values validated, once per distinct one (by identity of the OpRef, which
    loaders share between nodes; by value of the attributes): a big graph has few distinct ones.
    Shapes are inferred once per distinct signature, by identity of the input shapes (an
    inferred shape is shared by every value given it, so a chain or a DAG of like nodes has
    a handful of signatures), op and attribute values: `infer` is a function of those alone.
    """
    nodes = graph.nodes
    slots: dict[str, int] = {}
    shapes: list[Shape] = []
    for info in graph.inputs:
        slots[info.name] = len(shapes)
        shapes.append(None if info.shape is None else tuple(info.shape))
    for constant in graph.constants:
        slots[constant.name] = len(shapes)
        shapes.append(tuple(constant.shape))
    if len(slots) != len(shapes):
        return None
    renamed = False  # some node is not named after its first output
    # id(OpRef) -> the OpRef (kept alive, so ids stay unique), its op, the op's counts, and its
    # attributes validated from {} if valid and all scalars (else None: see `_validated`)
    by_ref: dict[int, tuple[Any, OpDef, int, bool, int, dict[str, Any] | None]] = {}
    validated: dict[Any, dict[str, Any]] = {}
    by_signature: dict[tuple[int, ...], list[Shape]] = {}
    ops: list[OpDef] = []
    attrs: list[dict[str, Any]] = []
    node_slots: list[tuple[int, ...]] = []
    slot_of = slots.__getitem__
    shape_of = shapes.__getitem__
    for node in nodes:
        ref = node.op
        hit = by_ref.get(id(ref))
        if hit is None:
            found = registry.get(ref)
            if found is None:
                return None
            _validated(found, {}, validated)
            hit = by_ref[id(ref)] = (ref, found, found.num_inputs, found.variadic,
                                     found.num_outputs, validated.get((id(found), ())))
        _ref, op, num_inputs, variadic, num_outputs, bare = hit
        inputs, outputs = node.inputs, node.outputs
        count = len(inputs)
        if (count < num_inputs if variadic else count != num_inputs) \
                or len(outputs) != num_outputs:
            return None
        given = node.attributes
        if given or bare is None:
            attributes, token = _validated_token(op, given, validated)
            if attributes is None:
                return None
        else:
            attributes, token = bare.copy(), id(bare)
        try:
            ins = tuple(map(slot_of, inputs))
        except KeyError:
            return None  # not defined yet: another order, or not at all
        infer = op.infer
        if infer is None:
            result: list[Shape] = [None] * num_outputs
        else:
            key = None if token is None else (token, *map(id, map(shape_of, ins)))
            result = None if key is None else by_signature.get(key)
            if result is None:
                try:
                    result = list(infer(*map(shape_of, ins), **attributes))
                except ValueError:
                    return None
                if len(result) < num_outputs:
                    return None
                if key is not None and len(by_signature) < _INFER_CACHE_LIMIT and all(
                        shape is None or type(shape) is tuple for shape in result):
                    by_signature[key] = result  # (immutable shapes only: they are shared)
        if num_outputs == 1:
            slots[outputs[0]] = len(shapes)
            shapes.append(result[0])
        else:
            for value, shape in zip(outputs, result, strict=False):
                slots[value] = len(shapes)
                shapes.append(shape)
        if len(slots) != len(shapes):
            return None  # defined twice
        node_slots.append(ins)
        if node.name != outputs[0]:
            renamed = True
        ops.append(op)
        attrs.append(attributes)
    # Outputs are unique, so names taken from them are: only other names need checking.
    if renamed and len({node.name for node in nodes}) != len(nodes):
        return None
    for info in graph.outputs:
        if info.name not in slots:
            return None
        inferred = shapes[slots[info.name]]
        if info.shape is not None and inferred is not None and not _agree(info.shape, inferred):
            return None
    owners = {id(op): registry.owner(op) for op in {id(op): op for op in ops}.values()}
    return ResolvedGraph(
        model=graph,
        order=list(range(len(nodes))),
        ops=ops,
        attributes=attrs,
        plugins=[owners[id(op)] for op in ops],
        slots=slots,
        slot_shapes=shapes,
        node_slots=node_slots,
    )


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
