"""The lecture's two classifier losses over scores (N, C) and integer labels (N,), batch-averaged.

Softmax cross-entropy: L = mean_i -log softmax(s_i)[y_i];   dL/ds = (softmax(s) - onehot(y)) / N.
Multiclass SVM hinge:  L = mean_i sum_{j != y_i} max(0, s_ij - s_iy_i + margin);
                       dL/ds_ij = [margin_ij > 0] for j != y_i, and minus their count at y_i, / N.
Labels get no gradient. Both keep what their forward computed for the gradient
(`forward_saving`): the cross-entropy its exponentials and row sums, the hinge its margins.

SoftmaxCrossEntropy is ONNX's SoftmaxCrossEntropyLoss (opset 12 on) with reduction "mean", no
weights and no ignore_index: reading anything else is refused. SVMHinge has no ONNX op; it is
exported as ai.graphkit::SVMHinge with a model-local function defining it (hinge_onnx.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from graphkit.onnxmap import Exported, OnnxMapping
from graphkit.opdef import OpDef
from graphkit.ops import prims as P
from graphkit.ops import sampling as S
from graphkit.ops.hinge_onnx import DOMAIN, svm_hinge_function
from graphkit.ops.onnx_rules import Constants, no_extra_inputs, text


class HingeAttributes(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    margin: float = 1.0


def _check(scores: Any, labels: Any) -> None:
    if scores.ndim != 2 or labels.shape != scores.shape[:1]:
        raise ValueError(
            f"scores must be (N, C) and labels (N,); got {scores.shape} and {labels.shape}"
        )
    if labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be integers, got {labels.dtype}")
    # one reduction: seen as unsigned, a negative label is huge, so max() < C checks both ends
    kind = labels.dtype
    unsigned = labels.view(kind.str.replace("i", "u")) if kind.kind == "i" else labels
    if labels.size and not unsigned.max() < scores.shape[1]:
        low, high = labels.min(), labels.max()
        raise ValueError(f"labels must lie in [0, {scores.shape[1]}), got {low}..{high}")


def _cross_entropy_parts(scores: Any, labels: Any) -> tuple[Any, Any, Any]:
    """The loss, e^(s - max) and its row sums (N, 1): softmax(s) is their quotient."""
    _check(scores, labels)
    # mean of log-sum-exp minus the label's score: -log softmax without the full matrix of it
    shifted = scores - P.row_max(scores)
    exps = P.exp(shifted)
    sums = P.sum(exps, [1], keepdims=True)
    loss = (P.sum(P.log(sums)) - P.sum(P.pick(shifted, labels))) / scores.shape[0]
    return loss, exps, sums


def _cross_entropy(scores: Any, labels: Any) -> Any:
    return _cross_entropy_parts(scores, labels)[0]


def _cross_entropy_saving(scores: Any, labels: Any) -> tuple[Any, tuple[Any, Any, Any]]:
    """The loss, and what the gradient needs of the forward pass: the exponentials and their
    sums (so the softmax is not computed twice) and the labels."""
    loss, exps, sums = _cross_entropy_parts(scores, labels)
    return loss, (exps, sums, labels)


def _cross_entropy_vjp(g: Any, y: Any, scores: Any, labels: Any, *,
                       residual: tuple[Any, Any, Any]) -> tuple[Any, None]:
    """(softmax(s) - onehot(y)) g / N: the probabilities scaled in one pass, then g / N taken
    off each row's label."""
    exps, sums, labels = residual
    scale = g / scores.shape[0]
    return (P.take_at_labels(exps * (scale / sums), labels, scale), None)


def _margins(scores: Any, labels: Any, margin: float) -> tuple[Any, Any]:
    onehot = P.one_hot(labels, scores.shape[1], scores.dtype)
    correct = P.sum(scores * onehot, [1], keepdims=True)
    margins = P.where(onehot > 0, 0, np.maximum(scores - correct + margin, 0))
    return margins.astype(scores.dtype), onehot


def _hinge(scores: Any, labels: Any, margin: float) -> Any:
    return _hinge_saving(scores, labels, margin)[0]


def _hinge_saving(scores: Any, labels: Any, margin: float) -> tuple[Any, tuple[Any, Any]]:
    """The loss, and the margins and one-hot labels its gradient reads."""
    _check(scores, labels)
    margins, onehot = _margins(scores, labels, margin)
    return P.sum(margins) / scores.shape[0], (margins, onehot)


def _hinge_vjp(g: Any, y: Any, scores: Any, labels: Any, margin: float, *,
               residual: tuple[Any, Any]) -> tuple[Any, None]:
    margins, onehot = residual
    active = P.greater(margins, 0)
    local = active - onehot * P.sum(active, [1], keepdims=True)
    return (g * local / scores.shape[0], None)


def _infer(scores, labels, **_attributes):
    if scores is not None and len(scores) != 2:
        raise ValueError(f"scores must be (N, C), got rank {len(scores)}")
    if labels is not None and len(labels) != 1:
        raise ValueError(f"labels must be (N,), got rank {len(labels)}")
    if scores is not None and labels is not None:
        n, m = scores[0], labels[0]
        if isinstance(n, int) and isinstance(m, int) and n != m:
            raise ValueError(f"scores have {n} rows but labels {m}")
    return [()]


def _sample(rng: np.random.Generator) -> S.Sample:
    n, c = int(rng.integers(1, 6)), int(rng.integers(2, 6))
    return [S.values(rng, (n, c)), rng.integers(0, c, size=n)], {}


def _hinge_sample(rng: np.random.Generator) -> S.Sample:
    (scores, labels), _ = _sample(rng)
    # keep every margin away from its kink at 0 so central differences see a smooth function
    scores = np.round(scores * 4) / 4 + rng.uniform(-0.05, 0.05, size=scores.shape)
    return [scores, labels], {"margin": 1.0}


def _cross_entropy_export(attributes: Mapping[str, Any], opset: int) -> Exported:
    return {"reduction": "mean"}, []


def _cross_entropy_read(
    attributes: Mapping[str, Any], constants: Constants, opset: int
) -> dict[str, Any]:
    reduction = text(attributes.get("reduction", "mean"))
    if reduction != "mean":
        raise ValueError(f"ONNX SoftmaxCrossEntropyLoss with reduction {reduction!r} is not "
                         "supported: graphkit's SoftmaxCrossEntropy is the batch mean")
    if "ignore_index" in attributes:
        raise ValueError("ONNX SoftmaxCrossEntropyLoss with ignore_index is not supported")
    if any(c is not None for c in constants):
        raise ValueError("ONNX SoftmaxCrossEntropyLoss with class weights is not supported")
    return {k: v for k, v in attributes.items() if k != "reduction"}


def _hinge_export(attributes: Mapping[str, Any], opset: int) -> Exported:
    """margin always written: the function declares it without a default."""
    return {"margin": float(attributes.get("margin", 1.0))}, []


def _hinge_read(attributes: Mapping[str, Any], constants: Constants, opset: int
                ) -> dict[str, Any]:
    no_extra_inputs("SVMHinge", constants)
    return dict(attributes)


OPS = [
    OpDef("SoftmaxCrossEntropy", _cross_entropy, _cross_entropy_vjp, num_inputs=2,
          saves=frozenset(), forward_saving=_cross_entropy_saving, infer=_infer,
          sample=_sample,
          onnx=OnnxMapping("SoftmaxCrossEntropyLoss", since=12, export=_cross_entropy_export,
                           read=_cross_entropy_read),
          doc="mean softmax cross-entropy of scores (N, C) against integer labels (N,)"),
    OpDef("SVMHinge", _hinge, _hinge_vjp, num_inputs=2, attributes=HingeAttributes,
          saves=frozenset(), forward_saving=_hinge_saving, infer=_infer,
          sample=_hinge_sample,
          onnx=OnnxMapping("SVMHinge", domain=DOMAIN, export=_hinge_export, read=_hinge_read,
                           function=svm_hinge_function),
          doc="mean multiclass SVM hinge loss of scores (N, C) against integer labels (N,)"),
]
