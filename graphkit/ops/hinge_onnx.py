"""SVMHinge as an ONNX model-local function (domain ai.graphkit): ONNX has no hinge-loss op,
so an exported graph carries the loss's definition in standard ops for any runtime to run.

    mask    = Equal(Unsqueeze(Cast(labels, int64), [1]), Range(0, C, 1))      (N, C) one-hot
    correct = ReduceSum(Where(mask, scores, 0), [1], keepdims=1)              (N, 1)
    loss    = ReduceMean(ReduceSum(Where(mask, 0, Relu(scores - correct + margin)), [1]))

`margin` is the function's attribute (a float, so a float32 Constant, CastLike'd to the
scores' type). CastLike needs opset 15: older opsets are refused.
"""

from __future__ import annotations

from typing import Any

DOMAIN = "ai.graphkit"
MIN_OPSET = 15


def svm_hinge_function(opset: int) -> Any:
    """The FunctionProto of ai.graphkit::SVMHinge(scores, labels) -> loss, for `opset`."""
    if opset < MIN_OPSET:
        raise ValueError(f"SVMHinge's ONNX function needs opset >= {MIN_OPSET} (CastLike), "
                         f"got {opset}")
    from onnx import AttributeProto, TensorProto, helper

    def const(name: str, values: list[int]) -> Any:
        tensor = helper.make_tensor(name, TensorProto.INT64, [len(values)], values)
        return helper.make_node("Constant", [], [name], value=tensor)

    def scalar(name: str, value: int) -> Any:
        return helper.make_node("Constant", [], [name],
                                value=helper.make_tensor(name, TensorProto.INT64, [], [value]))

    margin = helper.make_node("Constant", [], ["margin_f"])
    reference = helper.make_attribute_ref("value_float", AttributeProto.FLOAT)
    reference.ref_attr_name = "margin"  # set here: older onnx has no ref_attr_name= keyword
    margin.attribute.append(reference)
    nodes = [
        margin,
        helper.make_node("CastLike", ["margin_f", "scores"], ["margin"]),
        helper.make_node("Constant", [], ["zero_f"], value_float=0.0),
        helper.make_node("CastLike", ["zero_f", "scores"], ["zero"]),
        scalar("i0", 0), scalar("i1", 1), const("axis1", [1]),
        helper.make_node("Shape", ["scores"], ["shape"]),
        helper.make_node("Gather", ["shape", "i1"], ["classes"]),
        helper.make_node("Range", ["i0", "classes", "i1"], ["range"]),
        helper.make_node("Cast", ["labels"], ["labels64"], to=TensorProto.INT64),
        helper.make_node("Unsqueeze", ["labels64", "axis1"], ["column"]),
        helper.make_node("Equal", ["column", "range"], ["mask"]),
        helper.make_node("Where", ["mask", "scores", "zero"], ["picked"]),
        helper.make_node("ReduceSum", ["picked", "axis1"], ["correct"], keepdims=1),
        helper.make_node("Sub", ["scores", "correct"], ["diff"]),
        helper.make_node("Add", ["diff", "margin"], ["shifted"]),
        helper.make_node("Relu", ["shifted"], ["hinge"]),
        helper.make_node("Where", ["mask", "zero", "hinge"], ["margins"]),
        helper.make_node("ReduceSum", ["margins", "axis1"], ["rows"], keepdims=0),
        helper.make_node("ReduceMean", ["rows"], ["loss"], keepdims=0),
    ]
    return helper.make_function(
        DOMAIN, "SVMHinge", ["scores", "labels"], ["loss"], nodes,
        [helper.make_opsetid("", opset)], attributes=["margin"],
        doc_string="mean multiclass SVM hinge loss of scores (N, C) for labels (N,)",
    )
