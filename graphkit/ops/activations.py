"""Activation gates with a parameter (LeakyRelu, Elu, Clip) and the softmax normalizers.

Kinks follow the max gate's tie policy (the whole gradient to the *first* tied argument):
- LeakyRelu(x) = max(alpha x, x): at x == 0 the gradient is alpha (alpha = 0 gives Relu's 0).
- Elu: at x == 0 the x <= 0 branch, alpha e^x = alpha (equal to 1 only when alpha == 1).
- Clip(x) = min(max(x, min), max): the gradient passes where min <= x <= max, bounds included,
  and is 0 elsewhere (also everywhere when min > max, where ONNX outputs max).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from graphkit.onnxmap import Exported, OnnxMapping
from graphkit.opdef import OpDef, Shape
from graphkit.ops import prims as P
from graphkit.ops import sampling as S
from graphkit.ops import shapes
from graphkit.ops.onnx_rules import Constants, no_extra_inputs, plain_export, same_name

IN = frozenset({"inputs"})
OUT = frozenset({"outputs"})


class AlphaAttributes(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    alpha: float


class LeakyReluAttributes(AlphaAttributes):
    alpha: float = 0.01


class EluAttributes(AlphaAttributes):
    alpha: float = 1.0


class ClipAttributes(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    min: float | None = None
    """Lower bound; None: unbounded."""
    max: float | None = None
    """Upper bound; None: unbounded."""


class AxisAttributes(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    axis: int = -1


def _leaky_relu(x: Any, alpha: float) -> Any:
    return P.where(x > 0, x, alpha * x)


def _elu(x: Any, alpha: float) -> Any:
    return P.where(x > 0, x, alpha * (P.exp(np.minimum(x, 0)) - 1))  # no exp overflow for x > 0


def _elu_vjp(g: Any, y: Any, x: Any, alpha: float) -> tuple[Any]:
    return (g * P.where(x > 0, 1, alpha * P.exp(np.minimum(x, 0))),)


def _clip(x: Any, min: float | None, max: float | None) -> Any:  # ONNX's names
    if min is not None:
        x = np.maximum(x, np.asarray(min, dtype=x.dtype))
    if max is not None:
        x = np.minimum(x, np.asarray(max, dtype=x.dtype))
    return x


def _clip_vjp(g: Any, y: Any, x: Any, min: float | None, max: float | None) -> tuple[Any]:
    inside = np.ones(x.shape, dtype=bool)
    if min is not None:
        inside = inside & (x >= min)
    if max is not None:
        inside = inside & (x <= max)
    return (P.where(inside, g, 0),)


def _softmax_vjp(g: Any, y: Any, x: Any, axis: int) -> tuple[Any]:
    """dx = y (g - <g, y>) along axis: the softmax Jacobian, never built."""
    return (y * (g - P.sum(g * y, [axis], keepdims=True)),)


def _log_softmax_vjp(g: Any, y: Any, x: Any, axis: int) -> tuple[Any]:
    """dx = g - softmax(x) sum(g) along axis, softmax(x) = e^y."""
    return (g - P.exp(y) * P.sum(g, [axis], keepdims=True),)


def _axis_infer(shape: Shape, axis: int) -> list[Shape]:
    if shape is not None and not -len(shape) <= axis < len(shape):
        raise ValueError(f"axis {axis} is out of range for rank {len(shape)}")
    return [shape]


def _alpha_sample(default: float):
    def sample(rng: np.random.Generator) -> S.Sample:
        x = S.away_from_ties(S.values(rng, S.random_shape(rng)))
        alpha = default if rng.random() < 0.3 else float(rng.choice([0.0, 0.1, 0.5, 2.0]))
        return [x], {"alpha": alpha}

    return sample


def _clip_sample(rng: np.random.Generator) -> S.Sample:
    """Values k + 0.25 (+ jitter), bounds on the integers or absent: never at a bound."""
    shape = S.random_shape(rng)
    x = rng.integers(-3, 3, size=shape) + 0.25 + rng.uniform(-0.1, 0.1, size=shape)
    low, high = sorted(float(b) for b in rng.integers(-3, 4, size=2))
    if rng.random() < 0.1:
        low, high = high + 1, low  # min > max: ONNX outputs max everywhere
    attributes = {"min": None if rng.random() < 0.25 else low,
                  "max": None if rng.random() < 0.25 else high}
    return [x], attributes


def _softmax_sample(rng: np.random.Generator) -> S.Sample:
    shape = S.random_shape(rng)
    shape = shape or (int(rng.integers(1, 5)),)
    axis = int(rng.integers(-len(shape), len(shape)))
    return [S.values(rng, shape, -3.0, 3.0)], {"axis": axis}


# Clip: ONNX attributes min/max (default +-FLT_MAX) for opsets 6..10, optional inputs from 11.
def _clip6_export(attributes: dict[str, Any], opset: int) -> Exported:
    low, high = attributes.get("min"), attributes.get("max")
    if low is not None and high is not None and low > high:
        raise ValueError("Clip with min > max needs ONNX opset 11 (Clip-6 leaves it undefined)")
    return plain_export(attributes, opset)


def _clip_export(attributes: dict[str, Any], opset: int) -> Exported:
    bounds = [attributes.get("min"), attributes.get("max")]
    return {}, [None if b is None else np.asarray(b, np.float64) for b in bounds]


def _clip_read(attributes: dict[str, Any], constants: Constants, opset: int) -> dict[str, Any]:
    if len(constants) > 2:
        no_extra_inputs("Clip", constants[2:])
    bounds = [None if c is None else float(np.asarray(c).item()) for c in constants[:2]]
    bounds += [None] * (2 - len(bounds))
    return {**attributes, "min": bounds[0], "max": bounds[1]}


CLIP_ONNX = (
    OnnxMapping("Clip", since=6, until=10, export=_clip6_export,
                read=same_name("Clip").read),
    OnnxMapping("Clip", since=11, export=_clip_export, read=_clip_read, constants_like=0),
)

OPS = [
    OpDef("LeakyRelu", _leaky_relu,
          lambda g, y, x, alpha: (g * P.where(x > 0, 1, alpha),),
          attributes=LeakyReluAttributes, saves=IN, infer=shapes.same,
          sample=_alpha_sample(0.01), onnx=same_name("LeakyRelu", since=6),
          doc="x if x > 0 else alpha x; gradient alpha at x == 0 (max(alpha x, x), ties first)"),
    OpDef("Elu", _elu, _elu_vjp, attributes=EluAttributes, saves=IN, infer=shapes.same,
          sample=_alpha_sample(1.0), onnx=same_name("Elu", since=6),
          doc="x if x > 0 else alpha (e^x - 1); gradient alpha at x == 0"),
    OpDef("Clip", _clip, _clip_vjp, attributes=ClipAttributes, saves=IN, infer=shapes.same,
          sample=_clip_sample, onnx=CLIP_ONNX,
          doc="min(max(x, min), max), None unbounded; gradient passes for min <= x <= max"),
    OpDef("Softmax", lambda x, axis: P.softmax(x, axis), _softmax_vjp,
          attributes=AxisAttributes, saves=OUT, infer=_axis_infer, sample=_softmax_sample,
          onnx=same_name("Softmax", since=13),  # before 13 ONNX flattens to 2-D at axis
          doc="e^x / sum e^x along axis (ONNX 13 semantics)"),
    OpDef("LogSoftmax", lambda x, axis: P.log_softmax(x, axis), _log_softmax_vjp,
          attributes=AxisAttributes, saves=OUT, infer=_axis_infer, sample=_softmax_sample,
          onnx=same_name("LogSoftmax", since=13),
          doc="x - log sum e^x along axis (ONNX 13 semantics)"),
]
