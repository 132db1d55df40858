"""`GraphBuilder`: write graphs in Python with operators; it produces the same models as JSON.

    g = GraphBuilder("f")
    x, y, z = g.inputs("x", "y", "z")
    g.output((x + y) * z, "f")
    graph = g.build()
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from graphkit.model import Constant, DType, Graph, JsonValue, Node, OpRef, Tensor, ValueInfo


class Value:
    """A named value inside a builder; arithmetic on it adds nodes to the builder's graph."""

    __slots__ = ("builder", "name")
    __array_ufunc__ = None  # make numpy defer to our operators: array + Value builds a node

    def __init__(self, builder: GraphBuilder, name: str) -> None:
        self.builder = builder
        self.name = name

    def __repr__(self) -> str:
        return f"Value({self.name!r})"

    def _op(self, op: str, *others: Any, **attributes: Any) -> Value:
        return self.builder.op(op, self, *others, **attributes)

    def _rop(self, op: str, other: Any) -> Value:
        return self.builder.op(op, other, self)

    def __add__(self, other: Any) -> Value: return self._op("Add", other)
    def __radd__(self, other: Any) -> Value: return self._rop("Add", other)
    def __sub__(self, other: Any) -> Value: return self._op("Sub", other)
    def __rsub__(self, other: Any) -> Value: return self._rop("Sub", other)
    def __mul__(self, other: Any) -> Value: return self._op("Mul", other)
    def __rmul__(self, other: Any) -> Value: return self._rop("Mul", other)
    def __truediv__(self, other: Any) -> Value: return self._op("Div", other)
    def __rtruediv__(self, other: Any) -> Value: return self._rop("Div", other)
    def __matmul__(self, other: Any) -> Value: return self._op("MatMul", other)
    def __rmatmul__(self, other: Any) -> Value: return self._rop("MatMul", other)
    def __neg__(self) -> Value: return self._op("Neg")

    def __pow__(self, exponent: float) -> Value:
        if not isinstance(exponent, (int, float)):
            raise TypeError("Pow takes a constant exponent (a number)")
        return self._op("Pow", exponent=float(exponent))

    def exp(self) -> Value: return self._op("Exp")
    def log(self) -> Value: return self._op("Log")
    def sqrt(self) -> Value: return self._op("Sqrt")
    def reciprocal(self) -> Value: return self._op("Reciprocal")
    def relu(self) -> Value: return self._op("Relu")
    def sigmoid(self) -> Value: return self._op("Sigmoid")
    def tanh(self) -> Value: return self._op("Tanh")
    def identity(self) -> Value: return self._op("Identity")

    def sum(self, axes: Sequence[int] | int | None = None, keepdims: bool = False) -> Value:
        return self._op("Sum", **_reduce_attributes(axes, keepdims))

    def mean(self, axes: Sequence[int] | int | None = None, keepdims: bool = False) -> Value:
        return self._op("Mean", **_reduce_attributes(axes, keepdims))

    def reshape(self, *shape: int) -> Value:
        nested = len(shape) == 1 and isinstance(shape[0], (list, tuple))
        flat = list(shape[0]) if nested else list(shape)  # reshape(2, 3) or reshape((2, 3))
        return self._op("Reshape", shape=flat)

    def transpose(self, perm: Sequence[int] | None = None) -> Value:
        return self._op("Transpose", **({} if perm is None else {"perm": list(perm)}))

    @property
    def T(self) -> Value:  # noqa: N802 - numpy's name
        return self.transpose()


def _reduce_attributes(axes: Sequence[int] | int | None, keepdims: bool) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    if axes is not None:
        attributes["axes"] = [axes] if isinstance(axes, int) else list(axes)
    if keepdims:
        attributes["keepdims"] = True
    return attributes


class GraphBuilder:
    """Collects inputs, constants and nodes; `build()` returns the `Graph` model.

    Python numbers used in arithmetic become constants of the builder's `dtype`.
    """

    def __init__(self, name: str, dtype: DType = "float64") -> None:
        self.name = name
        self.dtype = dtype
        self._inputs: list[ValueInfo] = []
        self._constants: list[Constant] = []
        self._nodes: list[Node] = []
        self._outputs: list[ValueInfo] = []
        self._used: set[str] = set()
        self._counts: dict[str, int] = {}
        self.metadata: dict[str, JsonValue] = {}

    def _fresh(self, stem: str) -> str:
        while True:
            self._counts[stem] = self._counts.get(stem, 0) + 1
            name = f"{stem}{self._counts[stem]}"
            if name not in self._used:
                return name

    def _claim(self, name: str) -> str:
        if name in self._used:
            raise ValueError(f"graph {self.name!r} already has a value named {name!r}")
        self._used.add(name)
        return name

    def input(
        self, name: str, shape: Sequence[int | str] | None = None, dtype: DType | None = None
    ) -> Value:
        """Declare a graph input (dtype defaults to the builder's)."""
        self._inputs.append(ValueInfo(
            name=self._claim(name), dtype=dtype or self.dtype,
            shape=None if shape is None else list(shape),
        ))
        return Value(self, name)

    def inputs(self, *names: str) -> list[Value]:
        return [self.input(name) for name in names]

    def constant(
        self, name: str | None, value: Any, trainable: bool = False, dtype: DType | None = None
    ) -> Value:
        """A named tensor stored in the graph; `trainable=True` marks a parameter."""
        name = self._claim(name) if name else self._claim(self._fresh("c"))
        tensor = Tensor.from_numpy(value, dtype=dtype or _default_dtype(value, self.dtype))
        payload = tensor.model_dump(exclude_none=True)
        self._constants.append(Constant(name=name, trainable=trainable, **payload))
        return Value(self, name)

    def parameter(self, name: str, value: Any, dtype: DType | None = None) -> Value:
        return self.constant(name, value, trainable=True, dtype=dtype)

    def _as_value(self, value: Any) -> Value:
        if isinstance(value, Value):
            if value.builder is not self:
                raise ValueError(f"value {value.name!r} belongs to another GraphBuilder")
            return value
        return self.constant(None, value)

    def op(self, op: str | OpRef, *inputs: Any, name: str | None = None, outputs: int = 1,
           **attributes: Any) -> Any:
        """Add a node running `op` (e.g. "Mul" or "my.domain::Swish@2"); returns its output(s)."""
        ref = op if isinstance(op, OpRef) else OpRef.model_validate(op)
        args = [self._as_value(v).name for v in inputs]
        node_name = self._claim(name) if name else self._claim(self._fresh(ref.name.lower()))
        outs = [node_name]
        if outputs != 1:
            outs = [self._claim(f"{node_name}.{i}") for i in range(outputs)]
        self._nodes.append(Node(name=node_name, op=ref, inputs=args, outputs=outs,
                                attributes=attributes))
        values = [Value(self, o) for o in outs]
        return values[0] if outputs == 1 else values

    # ops that read better as functions than as methods
    def max(self, a: Any, b: Any) -> Value: return self.op("Max", a, b)
    def min(self, a: Any, b: Any) -> Value: return self.op("Min", a, b)

    def softmax_cross_entropy(self, scores: Value, labels: Value) -> Value:
        return self.op("SoftmaxCrossEntropy", scores, labels)

    def svm_hinge(self, scores: Value, labels: Value, margin: float = 1.0) -> Value:
        return self.op("SVMHinge", scores, labels, **({} if margin == 1.0 else {"margin": margin}))

    def output(self, value: Value, name: str | None = None) -> Value:
        """Mark `value` as a graph output, renaming the node that computes it to `name`."""
        value = self._as_value(value)
        if name is not None and name != value.name:
            value = self._rename(value, name)
        self._outputs.append(ValueInfo(name=value.name))
        return value

    def _rename(self, value: Value, name: str) -> Value:
        for index, node in enumerate(self._nodes):
            if node.outputs == [value.name] and not any(
                value.name in n.inputs for n in self._nodes
            ) and value.name not in {o.name for o in self._outputs}:
                self._claim(name)
                self._used.discard(value.name)
                self._nodes[index] = node.model_copy(update={"name": name, "outputs": [name]})
                return Value(self, name)
        return self.op("Identity", value, name=name)

    def build(self) -> Graph:
        return Graph(
            name=self.name, inputs=self._inputs, outputs=self._outputs,
            constants=self._constants, nodes=self._nodes, metadata=self.metadata,
        )


def _default_dtype(value: Any, fallback: DType) -> str:
    if isinstance(value, np.ndarray) and value.dtype.kind in "iub":
        return str(value.dtype)
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return str(value.dtype)
    return fallback
