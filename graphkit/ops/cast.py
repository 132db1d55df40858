"""Cast: a value in another dtype. Float to float passes the gradient back in the input's dtype;
to or from an integer or bool there is none (the function is piecewise constant there).

ONNX's `to` is a TensorProto enum; graphkit's is a dtype name. The conversion needs onnx, so
it is imported inside the mapping's functions only: graphkit runs without onnx installed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, get_args

import numpy as np
from pydantic import BaseModel, ConfigDict

from graphkit.model import FLOAT_DTYPES, DType
from graphkit.onnxmap import Exported, OnnxMapping
from graphkit.opdef import OpDef, Shape
from graphkit.ops import prims as P
from graphkit.ops import sampling as S
from graphkit.ops.onnx_rules import Constants, no_extra_inputs

FLOAT_KINDS = {np.dtype(name) for name in FLOAT_DTYPES}


class CastAttributes(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    to: DType
    """The dtype of the output, by name: one of graphkit's dtypes."""


def _cast_vjp(g: Any, y: Any, x: Any, to: str) -> tuple[Any]:
    if np.dtype(x.dtype) in FLOAT_KINDS and np.dtype(y.dtype) in FLOAT_KINDS:
        return (P.cast(g, x.dtype),)
    return (None,)


def _infer(shape: Shape, to: str) -> list[Shape]:
    return [shape]


def _sample(rng: np.random.Generator) -> S.Sample:
    """Float, integer or bool inputs to float64: the casts a float64 gradient check can see."""
    x = S.values(rng, S.random_shape(rng))
    kind = rng.random()
    if kind < 0.2:
        x = np.round(x).astype(np.int64)
    elif kind < 0.3:
        x = x > 0
    return [x], {"to": "float64"}


# Cast-6 on: `to` is an int (TensorProto enum); saturate/round_mode act on float8 only.
IGNORED = ("saturate", "round_mode")


def _export(attributes: Mapping[str, Any], opset: int) -> Exported:
    from onnx.helper import np_dtype_to_tensor_dtype

    return {"to": int(np_dtype_to_tensor_dtype(np.dtype(attributes["to"])))}, []


def _read(attributes: Mapping[str, Any], constants: Constants, opset: int) -> dict[str, Any]:
    from onnx.helper import tensor_dtype_to_np_dtype

    no_extra_inputs("Cast", constants)
    result = {k: v for k, v in attributes.items() if k not in IGNORED}
    if "to" in attributes:
        try:
            name = str(np.dtype(tensor_dtype_to_np_dtype(int(attributes["to"]))))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"ONNX Cast to type {attributes['to']!r} is unknown") from exc
        if name not in get_args(DType):
            raise ValueError(f"ONNX Cast to {name} is not supported: graphkit's dtypes are "
                             + ", ".join(get_args(DType)))
        result["to"] = name
    return result


OPS = [
    OpDef("Cast", lambda x, to: P.cast(x, to), _cast_vjp, attributes=CastAttributes,
          saves=frozenset(), infer=_infer, sample=_sample,
          onnx=OnnxMapping("Cast", since=6, export=_export, read=_read),
          doc="x as dtype `to`; gradient cast back for float to float, none otherwise"),
]
