"""`OnnxMapping`: how one graphkit op is written as one ONNX node, and read back from one.

An op's plugin declares it on the OpDef (`OpDef(..., onnx=OnnxMapping(...))`). Attributes
map by name (bools as ints); ONNX inputs beyond the op's own inputs are constants that carry
graphkit attributes (ReduceSum's axes from opset 13, Reshape's shape, Pow's exponent): the
mapping's `export` turns attributes into ONNX attributes plus such constant inputs, and its
`read` turns them back. Nothing here imports onnx: the core runs without it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Exported = tuple[dict[str, Any], list[np.ndarray | None]]
"""ONNX attributes, and constant inputs to append after the op's own (None: left out)."""


def _plain_export(attributes: Mapping[str, Any], opset: int) -> Exported:
    return {k: (int(v) if isinstance(v, bool) else v) for k, v in attributes.items()
            if v is not None}, []


def _plain_read(
    attributes: Mapping[str, Any], constants: Sequence[np.ndarray | None], opset: int
) -> dict[str, Any]:
    return dict(attributes)


@dataclass(frozen=True)
class OnnxMapping:
    """One ONNX operator an op maps to, for opsets `since`..`until` of the ONNX `domain`.

    export(attributes, opset) -> (onnx attributes, extra constant inputs)
    read(onnx attributes, extra constant inputs, opset) -> graphkit attributes
    `function(opset)`, for an op outside the standard domains, returns the body of an ONNX
    model-local function (a FunctionProto) so other runtimes can run the op. Simpler:
    `decomposition(g, *inputs, **float_attributes)` writes that body with a GraphBuilder and
    graphkit's built-in ops (its float attributes arrive as values); graphkit builds the
    FunctionProto from it.
    """

    op_type: str
    domain: str = ""
    since: int = 1
    until: int | None = None
    export: Callable[[Mapping[str, Any], int], Exported] = _plain_export
    read: Callable[[Mapping[str, Any], Sequence[np.ndarray | None], int], dict[str, Any]] = (
        _plain_read
    )
    function: Callable[[int], Any] | None = None
    decomposition: Callable[..., Any] | None = None
    bool_attributes: frozenset[str] = field(default_factory=frozenset)
    """Graphkit attributes that are booleans, written as ONNX ints."""
    constants_like: int | None = None
    """The op input whose dtype the extra constant inputs must have (Pow's exponent and Clip's
    bounds are tensors of the base's type): `export_for` converts them; None leaves them as
    `export` made them."""

    def covers(self, opset: int) -> bool:
        return self.since <= opset and (self.until is None or opset <= self.until)

    def export_for(
        self, attributes: Mapping[str, Any], opset: int,
        input_dtypes: Sequence[Any] | None = None,
    ) -> Exported:
        """`export`, with the constant inputs in the dtype of input `constants_like`.

        `input_dtypes` are the dtypes (numpy dtypes or graphkit names) of the node's inputs;
        unknown (None) leaves the constants as `export` made them (float64 for Pow).
        """
        onnx_attributes, constants = self.export(attributes, opset)
        if self.constants_like is None or input_dtypes is None:
            return onnx_attributes, constants
        like = input_dtypes[self.constants_like]
        if like is None:
            return onnx_attributes, constants
        dtype = np.dtype(like)
        return onnx_attributes, [None if c is None else np.asarray(c).astype(dtype)
                                 for c in constants]


def mappings(onnx: OnnxMapping | Sequence[OnnxMapping] | None) -> tuple[OnnxMapping, ...]:
    """An OpDef's `onnx` field as a tuple (it may be one mapping, several, or none)."""
    if onnx is None:
        return ()
    if isinstance(onnx, OnnxMapping):
        return (onnx,)
    return tuple(onnx)


def same_name(op_type: str, since: int = 1, **kwargs: Any) -> OnnxMapping:
    """The common case: the ONNX operator of the same name, attributes as they are."""
    return OnnxMapping(op_type, since=since, **kwargs)


def attribute_as_input(
    name: str, dtype: str, since: int, *, default: Any = None, onnx_name: str | None = None,
    scalar: bool = False,
) -> tuple[Callable[..., Exported], Callable[..., dict[str, Any]]]:
    """export/read for an attribute that is an ONNX input from `since` and an attribute before.

    `default` is the graphkit value meaning "leave the input out"; `scalar` writes a 0-d tensor.
    """
    onnx_name = onnx_name or name

    def export(attributes: Mapping[str, Any], opset: int) -> Exported:
        rest, _ = _plain_export({k: v for k, v in attributes.items() if k != name}, opset)
        value = attributes.get(name, default)
        if opset < since:
            if value is not None and value != default:
                rest[onnx_name] = value
            return rest, []
        if value is None or (value == default and default is not None and not scalar):
            return rest, [None]
        array = np.asarray(value, dtype=dtype)
        return rest, [array.reshape(()) if scalar else array.reshape(-1)]

    def read(
        attributes: Mapping[str, Any], constants: Sequence[np.ndarray | None], opset: int
    ) -> dict[str, Any]:
        result = {k: v for k, v in attributes.items() if k != onnx_name}
        if opset < since:
            value = attributes.get(onnx_name)
        else:
            value = constants[0] if constants else None
        if value is not None:
            array = np.asarray(value)
            if scalar and array.size != 1:
                raise ValueError(f"{onnx_name} must be a single number here, got a tensor of "
                                 f"shape {array.shape}")
            result[name] = array.item() if scalar or array.ndim == 0 else array.tolist()
        return result

    return export, read
