"""Every gate exports as a node of ai.graphkit.activations plus a model-local function: the
model passes onnx.checker (full check), onnxruntime runs it with graphkit's outputs, in float32
and float64, and it imports back to an equal graph (and, without the plugin, inlined)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import graphkit
import numpy as np
import onnx
import onnxruntime
import pytest
from _support import ATTRIBUTE_CASES, DOMAIN, OPS, one_op_graph, one_op_inputs, ref
from graphkit.io.onnx_export import ExportError, default_opset, to_onnx
from graphkit.io.onnx_import import from_onnx

# onnxruntime's float32 Sigmoid/Tanh kernels are approximations, ~1e-7 absolute: times |x|
# (Swish is x sigmoid(beta x)) that is ~1e-7 |x| absolute where the values are near 0;
# everything else agrees to a few units of rounding
RTOL = {"float32": 1e-5, "float64": 1e-7}
ATOL = {"float32": 2e-7, "float64": 1e-13}
RANGES = {"moderate": (-6.0, 6.0), "wide": (-50.0, 50.0)}

CASES = [(name, attributes) for name, cases in ATTRIBUTE_CASES.items() for attributes in cases]
CASE_IDS = [f"{name}-{'-'.join(f'{k}{v}' for k, v in a.items()) or 'defaults'}"
            for name, a in CASES]


def run_onnxruntime(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> np.ndarray:
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    return session.run(["y"], feeds)[0]


@pytest.mark.parametrize(("name", "attributes"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_exports_runs_in_onnxruntime_and_imports_back(
    name: str, attributes: dict, dtype: str, registry: graphkit.Registry
) -> None:
    graph = one_op_graph(name, dtype, attributes)
    model = to_onnx(graph, registry=registry)
    onnx.checker.check_model(model, full_check=True)
    assert (DOMAIN, 1) in {(o.domain, o.version) for o in model.opset_import}
    assert [(f.domain, f.name) for f in model.functions] == [(DOMAIN, name)]
    (node,) = model.graph.node
    assert (node.domain, node.op_type) == (DOMAIN, name)
    written = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert written == pytest.approx(OPS[name].attributes(**attributes).model_dump())
    for label, (low, high) in RANGES.items():
        feeds = one_op_inputs(name, dtype, np.random.default_rng(len(label)), low, high)
        theirs = run_onnxruntime(model, feeds)  # onnxruntime alone: no graphkit code runs
        ours = graphkit.execute(graph, feeds, registry=registry).outputs["y"]
        assert theirs.dtype == ours.dtype == np.dtype(dtype)
        np.testing.assert_allclose(theirs, ours, rtol=RTOL[dtype], atol=ATOL[dtype] * high,
                                   err_msg=label)
    assert from_onnx(model, registry) == graph


@pytest.mark.parametrize(("name", "attributes"), CASES, ids=CASE_IDS)
def test_without_the_plugin_graphkit_runs_the_inlined_function(
    name: str, attributes: dict, registry: graphkit.Registry
) -> None:
    graph = one_op_graph(name, "float64", attributes)
    model = to_onnx(graph, registry=registry)
    inlined = from_onnx(model, graphkit.builtin_registry())
    assert not {n.op.domain for n in inlined.nodes} - {""}
    feeds = one_op_inputs(name, "float64", np.random.default_rng(3), -50.0, 50.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        builtins_only = graphkit.execute(inlined, feeds, registry=graphkit.builtin_registry())
    ours = graphkit.execute(graph, feeds, registry=registry).outputs["y"]
    # built-in Sigmoid is 0.5 (1 + tanh(x / 2)): near 0 (the negative tails) it is exact to
    # ~1e-16 absolute, not relative
    np.testing.assert_allclose(builtins_only.outputs["y"], ours, rtol=1e-9, atol=1e-13)


def test_one_function_serves_every_attribute_value(registry: graphkit.Registry) -> None:
    g = graphkit.GraphBuilder("two_betas", dtype="float32")
    x = g.input("x", shape=["N", 3])
    a = g.op(ref("Swish"), x) + g.op(ref("Swish"), x, beta=2.0)
    b = g.op(ref("Softplus"), x, beta=2.0, threshold=1.0) * g.op(ref("Softplus"), x)
    g.output(a - b, "y")
    graph = g.build()
    model = to_onnx(graph, registry=registry)
    assert sorted(f.name for f in model.functions) == ["Softplus", "Swish"]
    feeds = {"x": np.random.default_rng(0).uniform(-4, 4, (6, 3)).astype(np.float32)}
    np.testing.assert_allclose(run_onnxruntime(model, feeds),
                               graphkit.execute(graph, feeds, registry=registry).outputs["y"],
                               rtol=RTOL["float32"], atol=ATOL["float32"] * 4)
    assert from_onnx(model, registry) == graph


def _all_ops_graph(dtype: str) -> graphkit.Graph:
    """A small net using every gate: Maxout layer, then each activation, summed."""
    g = graphkit.GraphBuilder(f"all_{dtype}", dtype=dtype)
    x = g.input("x", shape=["N", 4])
    rng = np.random.default_rng(1)
    params = [g.parameter(n, rng.standard_normal(s).astype(dtype)) for n, s in
              (("w1", (4, 3)), ("b1", (3,)), ("w2", (4, 3)), ("b2", (3,)))]
    h = g.op(ref("Maxout"), x, *params)
    total = g.op(ref("GELU"), h) + g.op(ref("Mish"), h) + g.op(ref("SiLU"), h)
    total = total + g.op(ref("Swish"), h, beta=1.5) + g.op(ref("Softplus"), h, beta=2.0)
    g.output(total, "y")
    return g.build()


RUN_WITHOUT_GRAPHKIT = """
import json, sys
import numpy as np
import onnxruntime
model, feeds, out = sys.argv[1:]
x = np.load(feeds)
session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
np.save(out, session.run(["y"], {"x": x})[0])
print(json.dumps(sorted(m for m in sys.modules
                        if m.split(".")[0] in ("graphkit", "graphkit_activations"))))
"""


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_process_without_graphkit_runs_the_export(dtype: str, tmp_path: Path,
                                                    registry: graphkit.Registry) -> None:
    graph = _all_ops_graph(dtype)
    model = to_onnx(graph, registry=registry)
    assert {f.name for f in model.functions} == set(OPS)
    onnx.save(model, tmp_path / "all.onnx")
    x = np.random.default_rng(2).uniform(-6, 6, (9, 4)).astype(dtype)
    np.save(tmp_path / "x.npy", x)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-I", "-c", RUN_WITHOUT_GRAPHKIT, str(tmp_path / "all.onnx"),
         str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
        capture_output=True, text=True, env=env, cwd=tmp_path, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
    theirs = np.load(tmp_path / "y.npy")
    ours = graphkit.execute(graph, {"x": x}, registry=registry).outputs["y"]
    assert theirs.dtype == np.dtype(dtype)
    np.testing.assert_allclose(theirs, ours, rtol=RTOL[dtype], atol=ATOL[dtype] * 20)
    assert from_onnx(model, registry) == graph


def test_export_at_older_opsets(registry: graphkit.Registry) -> None:
    """The bodies use CastLike (opset 15); from there every opset up to the default works."""
    graph = one_op_graph("Softplus", "float32", {"beta": 2.0})
    feeds = {"x": np.linspace(-5, 15, 20, dtype=np.float32).reshape(4, 5)}
    ours = graphkit.execute(graph, feeds, registry=registry).outputs["y"]
    for opset in (15, default_opset()):
        model = to_onnx(graph, opset=opset, registry=registry)
        assert {(o.domain, o.version) for o in model.opset_import} >= {("", opset)}
        np.testing.assert_allclose(run_onnxruntime(model, feeds), ours, rtol=1e-5, atol=1e-6)
    with pytest.raises(ExportError, match="15"):
        to_onnx(graph, opset=13, registry=registry)
