"""Models <-> networkx, and validation that reports every problem at once.

In networkx a graph is bipartite: value nodes (keyed by value name) and op nodes (keyed by
their index in `Graph.nodes`); an edge value -> op has the input position as its key and an
edge op -> value the output position, so `x * x` is two parallel edges.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from graphkit.errors import GraphValidationError
from graphkit.gcpause import gc_paused
from graphkit.model import Graph, Node
from graphkit.opdef import OpDef, Shape
from graphkit.ops.shapes import show
from graphkit.registry import Registry, default_registry

if TYPE_CHECKING:
    import networkx as nx


def to_nx(graph: Graph) -> nx.MultiDiGraph:
    """The graph as networkx; every model field is kept, so `from_nx(to_nx(g)) == g`."""
    import networkx as nx  # (here: loading, validating and running never need it; 0.1 s)

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
    slots: Mapping[str, int] | None = None
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
    import networkx as nx

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
        if info.shape is not None and inferred is not None \
                and not shapes_agree(info.shape, inferred):
            problems.append(
                f"output {info.name!r} is declared {show(tuple(info.shape))} "
                f"but computes {show(inferred)}"
            )
    return shapes, problems


def shapes_agree(declared: list[Any], inferred: tuple[Any, ...]) -> bool:
    if len(declared) != len(inferred):
        return False
    return all(
        not (isinstance(a, int) and isinstance(b, int)) or a == b
        for a, b in zip(declared, inferred, strict=True)
    )


def validate(graph: Graph, registry: Registry | None = None) -> ResolvedGraph:
    """Check every rule and resolve every op; raise GraphValidationError listing all problems.

    A graph that is valid and in running order (the common case) passes one linear sweep,
    `graphkit.sweep`; anything else (a problem, another order) is then checked rule by rule,
    `_validate`, which names every problem. The garbage collector is paused meanwhile
    (`graphkit.gcpause`).
    """
    from graphkit.sweep import resolve_in_order  # (it builds this module's ResolvedGraph)

    registry = registry or default_registry()
    with gc_paused():
        resolved = resolve_in_order(graph, registry)
        return resolved if resolved is not None else _validate(graph, registry)


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
