"""ONNX export/read rules the built-in ops share (booleans, reductions, refusals).

Each rule is a plain function of attributes, as `graphkit.onnxmap.OnnxMapping` expects; nothing
here imports onnx, so the built-in ops load without it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from graphkit.onnxmap import Exported, OnnxMapping

Constants = Sequence[np.ndarray | None]


def text(value: Any) -> Any:
    """An ONNX string attribute as str (onnx.helper gives bytes)."""
    return value.decode() if isinstance(value, bytes) else value


def int_list(value: Any) -> list[int]:
    return [int(v) for v in np.asarray(value).reshape(-1)]


def plain_export(attributes: Mapping[str, Any], opset: int) -> Exported:
    """Attributes as they are, bools as ints, None (the graphkit default) left out."""
    return {k: (int(v) if isinstance(v, bool) else v) for k, v in attributes.items()
            if v is not None}, []


def no_extra_inputs(op_type: str, constants: Constants) -> None:
    if any(c is not None for c in constants):
        raise ValueError(f"ONNX {op_type} with extra inputs is not supported")


def same_name(
    op_type: str, since: int = 1, until: int | None = None, *, bools: Sequence[str] = (),
    constants_like: int | None = None,
) -> OnnxMapping:
    """The ONNX operator of the same name; `bools` are graphkit bools written as ONNX 0/1."""
    names = frozenset(bools)

    def read(attributes: Mapping[str, Any], constants: Constants, opset: int) -> dict[str, Any]:
        no_extra_inputs(op_type, constants)
        return {k: (bool(v) if k in names else text(v)) for k, v in attributes.items()}

    return OnnxMapping(op_type, since=since, until=until, export=plain_export, read=read,
                       bool_attributes=names, constants_like=constants_like)


def reduction(
    op_type: str, axes_input_since: int, keepdims_default: bool, since: int = 11
) -> OnnxMapping:
    """Sum/Mean/ReduceMax <-> ReduceSum/ReduceMean/ReduceMax.

    `axes` is an attribute before `axes_input_since` and an int64 input from it. keepdims is
    always written: ONNX's default (1) is not graphkit's Sum/Mean default (False); a missing
    ONNX keepdims reads as True. ONNX reduces every axis for absent or empty axes, graphkit's
    `axes=[]` reduces none: that cannot be written (ValueError), and noop_with_empty_axes=1
    is refused on read.
    """

    def export(attributes: Mapping[str, Any], opset: int) -> Exported:
        axes = attributes.get("axes")
        keepdims = attributes.get("keepdims", keepdims_default)
        if axes is not None and len(axes) == 0:
            raise ValueError(f"{op_type}: axes=[] (reduce nothing) has no ONNX form; "
                             "ONNX reduces every axis when axes are empty")
        onnx_attributes: dict[str, Any] = {"keepdims": int(bool(keepdims))}
        if opset < axes_input_since:
            if axes is not None:
                onnx_attributes["axes"] = [int(a) for a in axes]
            return onnx_attributes, []
        return onnx_attributes, [None if axes is None else np.asarray(axes, np.int64)]

    def read(attributes: Mapping[str, Any], constants: Constants, opset: int) -> dict[str, Any]:
        if attributes.get("noop_with_empty_axes", 0):
            raise ValueError(f"ONNX {op_type} with noop_with_empty_axes=1 is not supported: "
                             "graphkit reduces every axis when axes are absent")
        result = {k: v for k, v in attributes.items()
                  if k not in ("axes", "keepdims", "noop_with_empty_axes")}
        if opset < axes_input_since:
            axes = attributes.get("axes")
        else:
            if len(constants) > 1:
                no_extra_inputs(op_type, constants[1:])
            axes = constants[0] if constants else None
        listed = None if axes is None else int_list(axes)
        result["axes"] = listed or None  # empty: ONNX reduces every axis
        result["keepdims"] = bool(attributes.get("keepdims", 1))
        return result

    return OnnxMapping(op_type, since=since, export=export, read=read,
                       bool_attributes=frozenset({"keepdims"}))
