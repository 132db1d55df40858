"""Every built-in op's ONNX mapping against ONNX itself.

For each mapping and each opset where ONNX's operator (or the mapping's form) changes, a
one-node ONNX model is built by hand from the mapping's export (attributes, extra constant
inputs as initializers, the output's dtype and shape as graphkit computes them): it must pass
onnx.checker and strict shape inference, and onnx.reference and onnxruntime must compute what
the op's graphkit forward computes (at every opset: onnx.reference runs the newest semantics
of some operators whatever the opset, onnxruntime keeps each version's). Then read must invert
export, through protobuf, and graphkit's attribute names and defaults must be ONNX's.
"""

from __future__ import annotations

import math
import subprocess
import sys
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from graphkit.onnxmap import OnnxMapping, mappings
from graphkit.opdef import OpDef
from graphkit.ops import BUILTIN_OPS

OPS = {op.name: op for op in BUILTIN_OPS}
LATEST = onnx.defs.onnx_opset_version()
SAMPLES = 4
FUNCTION_OPSETS = (15, 18, LATEST)
"""Default-domain opsets a model-local function (SVMHinge) is tested with."""
ORT_DOUBLE_SINCE = {"LeakyRelu": None, "Elu": None, "Clip": 12}
"""onnxruntime's CPU kernels for these take double only from this opset (None: never): below
it they run in onnxruntime in float32 only; everything else in float64 and float32."""

Case = tuple[list[np.ndarray], dict[str, Any]]


def schema_versions(op_type: str) -> set[int]:
    return {s.since_version for s in onnx.defs.get_all_schemas_with_history()
            if s.name == op_type and s.domain == ""}


def opsets_for(mapping: OnnxMapping) -> list[int]:
    """The mapping's first and last opset and every one where ONNX changed the operator: both
    sides of each boundary (ReduceSum's axes input at 13, Reshape's allowzero at 14, ...)."""
    if mapping.function is not None:
        return list(FUNCTION_OPSETS)
    top = mapping.until or LATEST
    inside = {v for v in schema_versions(mapping.op_type) if mapping.since <= v <= top}
    return sorted(inside | {mapping.since, top})


PARAMS = [
    pytest.param(op.name, index, opset, id=f"{op.name}-{mapping.op_type}-{opset}")
    for op in BUILTIN_OPS
    for index, mapping in enumerate(mappings(op.onnx))
    for opset in opsets_for(mapping)
]


def full_attributes(op: OpDef, attributes: dict[str, Any]) -> dict[str, Any]:
    return dict(op.attributes.model_validate(attributes))


def floats(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.uniform(-2.0, 2.0, size=shape)


def extra_cases(name: str, opset: int, rng: np.random.Generator) -> list[Case]:
    """Variants a few random samples might miss: every dtype of Cast, Gemm without C, ..."""
    x = floats(rng, (2, 3))
    if name == "Cast":
        ints, flags = np.round(x * 3).astype(np.int64), x > 0
        return ([([x], {"to": to}) for to in ("float32", "float64", "int32", "int64", "bool")]
                + [[[ints], {"to": "float32"}], [[flags], {"to": "float64"}],
                   [[ints.astype(np.int32)], {"to": "int64"}], [[flags], {"to": "int32"}]])
    if name == "Gemm":
        b = floats(rng, (3, 4))
        return [([x, b], {}), ([x, b, floats(rng, ())], {"beta": 0.5}),
                ([x.T, b.T], {"transA": True, "transB": True, "alpha": 2.0})]
    if name == "Clip":
        return [([x], {"min": -0.5}), ([x], {"max": 0.5}), ([x], {}),
                ([x], {"min": 1.0, "max": -1.0})]  # refused before opset 11
    if name == "Squeeze":
        return [([floats(rng, (1, 3, 1))], {"axes": None}), ([floats(rng, (1, 3, 1))], {})]
    if name == "Reshape":
        y = floats(rng, (2, 3, 4))
        reshapes: list[Case] = [([y], {"shape": [0, -1]}),
                                ([y], {"shape": [0, 0, 2, 2], "allowzero": False}),
                                ([x], {"shape": [3, 2], "allowzero": True})]
        return [*reshapes, ([np.zeros((0, 3))], {"shape": [3, 0], "allowzero": True})]
    if name in ("Sum", "Mean", "ReduceMax"):
        y = floats(rng, (2, 3, 4))
        reductions: list[Case] = [([y], {"axes": None, "keepdims": True}),
                                  ([y], {"axes": [-1, 0]}), ([y], {"keepdims": False}), ([y], {})]
        if name == "ReduceMax":  # the max of nothing is the lowest value
            reductions.append(([np.zeros((2, 0, 4))], {"axes": [1]}))
        return reductions
    if name == "Div":  # integers: the quotient truncated toward zero
        a = np.array([7, -7, 7, -7, 6, -6, 0])
        b = np.array([2, 2, -2, -2, 3, 3, -5])
        return [([a, b], {}), ([a.astype(np.int32), b.astype(np.int32)], {})]
    if name == "Concat":
        return [([x], {"axis": 0}), ([x, x[:, :1], x], {"axis": -1})]
    if name == "Where":
        return [([np.array(True), x, floats(rng, (3,))], {})]
    if name in ("Equal", "Greater", "Less"):
        ints = np.round(x * 2).astype(np.int64)
        return [([ints, ints[::-1]], {}), ([x, x], {})]
    if name in ("SoftmaxCrossEntropy", "SVMHinge"):
        labels = np.array([0, 2], dtype=np.int32)
        margins = [{"margin": 0.5}, {"margin": 2.0}] if name == "SVMHinge" else [{}]
        return [([x, labels], m) for m in margins]
    if name == "Transpose":
        return [([np.array(1.5)], {"perm": []}), ([floats(rng, (2, 3, 4))], {})]
    if name in ("Softmax", "LogSoftmax"):  # not the last axis: where opset 11's 2-D rule differs
        return [([floats(rng, (2, 3, 4))], {"axis": axis}) for axis in (0, 1, -2)]
    return []


def refused(name: str, attributes: dict[str, Any], opset: int) -> bool:
    """What an opset cannot express, so export raises (tested below)."""
    if name == "Clip" and opset < 11:
        low, high = attributes.get("min"), attributes.get("max")
        return low is not None and high is not None and low > high
    if name == "Reshape" and opset < 14:
        return bool(attributes.get("allowzero")) and 0 in attributes["shape"]
    return False


def cases(op: OpDef, opset: int, seed_text: str) -> Iterator[Case]:
    rng = np.random.default_rng(zlib.crc32(seed_text.encode()))
    assert op.sample is not None
    drawn = [op.sample(rng) for _ in range(SAMPLES)]
    for arrays, attributes in [*drawn, *extra_cases(op.name, opset, rng)]:
        if not refused(op.name, attributes, opset):
            yield [np.asarray(a) for a in arrays], attributes


def onnx_model(
    op: OpDef, mapping: OnnxMapping, opset: int, arrays: list[np.ndarray],
    attributes: dict[str, Any],
) -> onnx.ModelProto:
    """One node, built by hand from the mapping's export, its output typed as graphkit's."""
    onnx_attributes, constants = mapping.export_for(attributes, opset, [a.dtype for a in arrays])
    names = [f"x{i}" for i in range(len(arrays))]
    node_inputs, initializers = list(names), []
    for position, constant in enumerate(constants):
        if constant is None:
            node_inputs.append("")
            continue
        node_inputs.append(f"c{position}")
        initializers.append(numpy_helper.from_array(np.asarray(constant), f"c{position}"))
    while node_inputs[-1] == "":
        node_inputs.pop()
    expected = np.asarray(op.forward(*arrays, **full_attributes(op, attributes)))
    node = helper.make_node(mapping.op_type, node_inputs, ["y"], domain=mapping.domain,
                            **onnx_attributes)
    graph = helper.make_graph(
        [node], op.name,
        [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
         for n, a in zip(names, arrays, strict=True)],
        [helper.make_tensor_value_info("y", helper.np_dtype_to_tensor_dtype(expected.dtype),
                                       expected.shape)],
        initializers,
    )
    imports = [helper.make_opsetid("", opset)]
    functions = []
    if mapping.function is not None:
        imports.append(helper.make_opsetid(mapping.domain, 1))
        functions.append(mapping.function(opset))
    ir_version = max(helper.find_min_ir_version_for(imports, ignore_unknown=True), 8)
    model = helper.make_model(graph, opset_imports=imports, functions=functions,
                              ir_version=ir_version)
    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    return model


def run_reference(model: onnx.ModelProto, arrays: list[np.ndarray]) -> np.ndarray:
    feeds = {f"x{i}": a for i, a in enumerate(arrays)}
    return np.asarray(ReferenceEvaluator(model).run(None, feeds)[0])


def run_onnxruntime(model: onnx.ModelProto, arrays: list[np.ndarray]) -> np.ndarray:
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(model.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {f"x{i}": a for i, a in enumerate(arrays)})[0])


TOLERANCE = {np.dtype(np.float64): (1e-5, 1e-8), np.dtype(np.float32): (1e-4, 1e-5)}
"""rtol, atol by the inputs' float type (exact dtypes, bool and int outputs, compare equal)."""


def assert_same(actual: np.ndarray, expected: np.ndarray, dtype: np.dtype) -> None:
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    rtol, atol = TOLERANCE[np.dtype(dtype)]
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def in_dtype(arrays: list[np.ndarray], dtype: type) -> list[np.ndarray]:
    return [a.astype(dtype) if a.dtype.kind == "f" else a for a in arrays]


def ort_has_double(name: str, opset: int) -> bool:
    return name not in ORT_DOUBLE_SINCE or opset >= (ORT_DOUBLE_SINCE[name] or LATEST + 1)


@pytest.mark.parametrize(("name", "index", "opset"), PARAMS)
def test_onnx_computes_what_the_op_computes(name: str, index: int, opset: int) -> None:
    """In float64 and float32 (where Pow's exponent and Clip's bounds follow the input's type)."""
    op = OPS[name]
    mapping = mappings(op.onnx)[index]
    for case, attributes in cases(op, opset, f"{name}-{index}-{opset}"):
        for dtype in (np.float64, np.float32):
            arrays = in_dtype(case, dtype)
            expected = np.asarray(op.forward(*arrays, **full_attributes(op, attributes)))
            model = onnx_model(op, mapping, opset, arrays, attributes)
            assert_same(run_reference(model, arrays), expected, np.dtype(dtype))
            if dtype == np.float32 or ort_has_double(name, opset):
                assert_same(run_onnxruntime(model, arrays), expected, np.dtype(dtype))


# -- read inverts export -----------------------------------------------------------------------


def through_protobuf(
    onnx_attributes: dict[str, Any], constants: list[np.ndarray | None]
) -> tuple[dict[str, Any], list[np.ndarray | None]]:
    """What an importer sees: attributes and constants after a trip through ONNX's protobuf
    (floats become 32-bit, strings bytes)."""
    attributes = {k: helper.get_attribute_value(helper.make_attribute(k, v))
                  for k, v in onnx_attributes.items()}
    arrays = [None if c is None else numpy_helper.to_array(numpy_helper.from_array(np.asarray(c)))
              for c in constants]
    return attributes, arrays


def normalised(name: str, attributes: dict[str, Any], opset: int) -> dict[str, Any]:
    """The documented normalisations of a round trip (equal meaning, other spelling)."""
    result = dict(attributes)
    if name == "Reshape" and opset < 14 and 0 not in result["shape"]:
        result["allowzero"] = False  # without a 0 in shape, allowzero changes nothing
    if name == "Transpose" and result.get("perm") == []:
        result["perm"] = None  # a 0-d input: both mean "no axes to move"
    return result


def same(a: Any, b: Any) -> bool:
    """Equal, floats to ONNX's 32-bit float attribute precision."""
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-12)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@pytest.mark.parametrize(("name", "index", "opset"), PARAMS)
def test_read_inverts_export(name: str, index: int, opset: int) -> None:
    op = OPS[name]
    mapping = mappings(op.onnx)[index]
    for _arrays, attributes in cases(op, opset, f"read-{name}-{index}-{opset}"):
        written = full_attributes(op, attributes)
        onnx_attributes, constants = through_protobuf(*mapping.export(written, opset))
        read = full_attributes(op, mapping.read(onnx_attributes, constants, opset))
        want = full_attributes(op, normalised(name, written, opset))
        assert set(read) == set(want)
        assert all(same(read[k], want[k]) for k in want), (read, want)


# -- every op, every mapping -------------------------------------------------------------------

SAME_NAME = [op.name for op in BUILTIN_OPS
             if any(m.op_type == op.name and m.domain == "" for m in mappings(op.onnx))]
AS_INPUTS = {("Pow", "exponent"): "Y"}
"""Graphkit attributes that are ONNX inputs under another name."""
SINCE = {("Reshape", "allowzero"): 14}
"""Graphkit attributes ONNX gained later (before, export takes only their default's meaning)."""
UNBOUNDED = {("Clip", "min"), ("Clip", "max")}
"""None (unbounded) where Clip-6's defaults are -+FLT_MAX: the same for float32 data."""


def onnx_default(attribute: onnx.defs.OpSchema.Attribute) -> Any:
    if attribute.default_value.type == onnx.AttributeProto.UNDEFINED:
        return None
    return helper.get_attribute_value(attribute.default_value)


@pytest.mark.parametrize("name", SAME_NAME)
def test_attribute_names_requiredness_and_defaults_are_onnxs(name: str) -> None:
    op = OPS[name]
    for mapping in mappings(op.onnx):
        for opset in opsets_for(mapping):
            schema = onnx.defs.get_schema(mapping.op_type, opset, "")
            inputs = {i.name for i in schema.inputs}
            for field, info in op.attributes.model_fields.items():
                if opset < SINCE.get((name, field), 0):
                    continue
                if field not in schema.attributes:
                    assert AS_INPUTS.get((name, field), field) in inputs, (name, field, opset)
                    continue
                attribute = schema.attributes[field]
                assert info.is_required() == attribute.required, (name, field, opset)
                if attribute.required or (name, field) in UNBOUNDED:
                    continue
                ours, theirs = info.get_default(), onnx_default(attribute)
                if isinstance(ours, bool):
                    ours = int(ours)
                assert same(float(ours) if isinstance(theirs, float) else ours, theirs), \
                    (name, field, opset, ours, theirs)



def test_every_builtin_op_has_an_onnx_mapping_with_disjoint_opsets() -> None:
    for op in BUILTIN_OPS:
        found = mappings(op.onnx)
        assert found, f"{op.name} has no ONNX mapping"
        for first, second in zip(found, found[1:], strict=False):
            assert first.until is not None and first.until < second.since, op.name
        for mapping in found:
            if mapping.domain == "":
                assert schema_versions(mapping.op_type), f"{mapping.op_type} is not ONNX"
                assert mapping.function is None
            else:
                assert mapping.function is not None, f"{op.name}: a custom op needs its function"


def test_the_tested_opsets_include_both_sides_of_each_form_change() -> None:
    tested = {(p.values[0], p.values[2]) for p in PARAMS}
    for name, opsets in {"Sum": (11, 13), "Mean": (13, 18), "ReduceMax": (13, 18),
                         "Unsqueeze": (11, 13), "Squeeze": (11, 13), "Reshape": (13, 14),
                         "Clip": (6, 11), "Softmax": (13,), "Pow": (7, 12)}.items():
        for opset in opsets:
            assert (name, opset) in tested, (name, opset)


# -- reductions: axes, keepdims, refusals ------------------------------------------------------

REDUCTIONS = {"Sum": ("ReduceSum", 13), "Mean": ("ReduceMean", 18), "ReduceMax": ("ReduceMax", 18)}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_reductions_always_write_keepdims_and_read_its_absence_as_true(name: str) -> None:
    op = OPS[name]
    (mapping,) = mappings(op.onnx)
    boundary = REDUCTIONS[name][1]
    for opset in (boundary - 1, boundary):
        for keepdims in (False, True):
            attributes, _ = mapping.export({"axes": [0], "keepdims": keepdims}, opset)
            assert attributes["keepdims"] == int(keepdims)
        attributes, constants = mapping.export({"axes": None}, opset)
        assert attributes == {"keepdims": int(op.attributes().keepdims)}
        axes = [1] if opset < boundary else []
        read = mapping.read({"axes": axes} if axes else {},
                            [] if axes else [np.array([1], np.int64)], opset)
        assert read == {"axes": [1], "keepdims": True}  # ONNX's default, not graphkit's


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_reductions_place_axes_by_opset(name: str) -> None:
    (mapping,) = mappings(OPS[name].onnx)
    boundary = REDUCTIONS[name][1]
    before = mapping.export({"axes": [0, -1], "keepdims": False}, boundary - 1)
    after_attributes, after_constants = mapping.export({"axes": [0, -1], "keepdims": False},
                                                       boundary)
    assert before == ({"axes": [0, -1], "keepdims": 0}, [])
    assert after_attributes == {"keepdims": 0}
    (axes,) = after_constants
    assert axes is not None and axes.dtype == np.int64 and axes.tolist() == [0, -1]
    assert mapping.export({"axes": None}, boundary)[1] == [None]


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_noop_with_empty_axes_is_refused_on_read(name: str) -> None:
    (mapping,) = mappings(OPS[name].onnx)
    with pytest.raises(ValueError, match="noop_with_empty_axes=1 is not supported"):
        mapping.read({"noop_with_empty_axes": 1, "keepdims": 0}, [], 18)
    assert mapping.read({"noop_with_empty_axes": 0}, [], 18)["axes"] is None


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_empty_axes_reduce_nothing_in_graphkit_so_they_cannot_be_exported(name: str) -> None:
    (mapping,) = mappings(OPS[name].onnx)
    x = np.arange(6.0).reshape(2, 3)
    assert OPS[name].forward(x, axes=[], keepdims=False).shape == (2, 3)
    with pytest.raises(ValueError, match="axes=\\[\\]"):
        mapping.export({"axes": [], "keepdims": False}, 18)
    # and ONNX's empty axes (reduce everything) read as graphkit's None
    assert mapping.read({"keepdims": 0}, [np.zeros(0, np.int64)], 18)["axes"] is None
    assert mapping.read({"axes": [], "keepdims": 0}, [], 11)["axes"] is None


# -- refusals and conversions of single ops ----------------------------------------------------


def cross_entropy_mapping() -> OnnxMapping:
    (mapping,) = mappings(OPS["SoftmaxCrossEntropy"].onnx)
    return mapping


@pytest.mark.parametrize(("attributes", "constants", "message"), [
    ({"reduction": b"sum"}, [], "reduction 'sum'"),
    ({"reduction": "none"}, [], "reduction 'none'"),
    ({"ignore_index": 0}, [], "ignore_index"),
    ({"reduction": b"mean"}, [np.ones(3)], "weights"),
])
def test_softmax_cross_entropy_refuses_what_graphkit_cannot_compute(
    attributes: dict[str, Any], constants: list[np.ndarray], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        cross_entropy_mapping().read(attributes, constants, 13)


def test_softmax_cross_entropy_writes_mean_and_reads_its_default() -> None:
    mapping = cross_entropy_mapping()
    assert mapping.export({}, 12) == ({"reduction": "mean"}, [])
    assert mapping.read({}, [], 12) == {}
    assert mapping.read({"reduction": b"mean"}, [None], 13) == {}


def test_cast_converts_dtype_names_and_refuses_what_graphkit_lacks() -> None:
    (mapping,) = mappings(OPS["Cast"].onnx)
    for name in ("float32", "float64", "int32", "int64", "bool"):
        attributes, _ = mapping.export({"to": name}, 13)
        assert attributes["to"] == helper.np_dtype_to_tensor_dtype(np.dtype(name))
        assert mapping.read(attributes, [], 13) == {"to": name}
    assert mapping.read({"to": onnx.TensorProto.FLOAT, "saturate": 1}, [], 19) == \
        {"to": "float32"}
    with pytest.raises(ValueError, match="float16 is not supported"):
        mapping.read({"to": onnx.TensorProto.FLOAT16}, [], 13)


def test_reshape_allowzero_needs_opset_14_only_when_shape_has_a_zero() -> None:
    (mapping,) = mappings(OPS["Reshape"].onnx)
    with pytest.raises(ValueError, match="opset 14"):
        mapping.export({"shape": [0, 3], "allowzero": True}, 13)
    attributes, (shape,) = mapping.export({"shape": [3, 2], "allowzero": True}, 13)
    assert attributes == {} and shape is not None and shape.tolist() == [3, 2]
    assert mapping.export({"shape": [0, 3], "allowzero": True}, 14)[0] == {"allowzero": 1}
    assert mapping.read({}, [np.array([0, -1])], 14) == {"shape": [0, -1], "allowzero": False}
    with pytest.raises(ValueError, match="must be a constant"):
        mapping.read({}, [None], 14)


@pytest.mark.parametrize(("name", "attributes", "opset"), [
    ("Clip", {"min": 1.0, "max": -1.0}, 10), ("Reshape", {"shape": [3, 0], "allowzero": True}, 13),
])
def test_export_refuses_what_the_opset_cannot_express(
    name: str, attributes: dict[str, Any], opset: int
) -> None:
    assert refused(name, attributes, opset) and not refused(name, attributes, opset + 1)
    mapping = next(m for m in mappings(OPS[name].onnx) if m.covers(opset))
    with pytest.raises(ValueError, match="needs ONNX opset"):
        mapping.export(attributes, opset)


def test_reshape_zero_copies_the_dim_unless_allowzero_as_onnx() -> None:
    reshape = OPS["Reshape"].forward
    x = np.zeros((2, 3, 4))
    assert reshape(x, shape=[0, -1], allowzero=False).shape == (2, 12)
    assert reshape(x, shape=[0, 0, 2, 2], allowzero=False).shape == (2, 3, 2, 2)
    assert reshape(np.zeros((0, 3)), shape=[3, 0], allowzero=True).shape == (3, 0)
    with pytest.raises(ValueError, match="both 0 and -1"):
        reshape(x, shape=[0, -1], allowzero=True)


@pytest.mark.parametrize(("name", "attributes", "opset"), [
    ("Pow", {"exponent": 2.0}, 7), ("Pow", {"exponent": 0.5}, 13),
    ("Clip", {"min": -0.5, "max": 0.25}, 11), ("Clip", {"max": 0.25}, 13),
])
def test_constant_inputs_take_the_float32_type_of_the_input(
    name: str, attributes: dict[str, Any], opset: int
) -> None:
    """Pow-7 and Clip-11 need the exponent and bounds in the base's type: export_for casts."""
    op = OPS[name]
    mapping = next(m for m in mappings(op.onnx) if m.covers(opset))
    x = np.linspace(0.25, 2.0, 8, dtype=np.float32).reshape(2, 4)
    _, constants = mapping.export_for(attributes, opset, [x.dtype])
    assert all(c is None or c.dtype == np.float32 for c in constants)
    _, default = mapping.export(attributes, opset)
    assert all(c is None or c.dtype == np.float64 for c in default)
    model = onnx_model(op, mapping, opset, [x], attributes)
    expected = op.forward(x, **full_attributes(op, attributes))
    assert_same(run_onnxruntime(model, [x]), expected, x.dtype)


def test_svm_hinge_function_declares_and_references_margin() -> None:
    (mapping,) = mappings(OPS["SVMHinge"].onnx)
    assert (mapping.op_type, mapping.domain) == ("SVMHinge", "ai.graphkit")
    assert mapping.export({}, 1) == ({"margin": 1.0}, [])
    function = mapping.function(18)
    assert isinstance(function, onnx.FunctionProto)
    assert (function.domain, function.name) == ("ai.graphkit", "SVMHinge")
    assert list(function.attribute) == ["margin"]
    references = [a.ref_attr_name for n in function.node for a in n.attribute if a.ref_attr_name]
    assert references == ["margin"]
    assert {n.domain for n in function.node} == {""}
    with pytest.raises(ValueError, match="opset >= 15"):
        mapping.function(14)


def test_graphkit_and_its_ops_import_and_run_without_onnx() -> None:
    code = "\n".join([
        "import sys",
        "sys.modules['onnx'] = None  # any import of onnx now fails",
        "import numpy as np, graphkit",
        "from graphkit.onnxmap import mappings",
        "registry = graphkit.builtin_registry(strict=True)",
        "assert all(mappings(op.onnx) for op in registry.ops())",
        "g = graphkit.GraphBuilder('g')",
        "x = g.input('x')",
        "g.output(x.relu(), 'y')",
        "r = graphkit.execute(g.build(), {'x': np.array([-1.0, 2.0])}, registry=registry)",
        "assert r.outputs['y'].tolist() == [0.0, 2.0]",
        "(cast,) = mappings(registry.lookup('Cast').onnx)",
        "try:",
        "    cast.export({'to': 'float32'}, 13)",
        "except ImportError:",
        "    pass",
        "else:",
        "    raise AssertionError('Cast export should need onnx')",
    ])
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
