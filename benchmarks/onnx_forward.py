"""The 2-layer net's forward pass through ONNX: graphkit against onnxruntime on one model.

The graph of `workloads.two_layer_net` (loss included) is exported with `to_onnx` and imported
back with `from_onnx`; graphkit runs the imported graph forward, onnxruntime runs the exported
model (an InferenceSession on CPUExecutionProvider with its default options), on the same
inputs, alternately. Thread counts are recorded, not matched: see `machine.threads`.
"""

from __future__ import annotations

import numpy as np

import graphkit as gk
from benchmarks import workloads
from benchmarks.machine import ort_threads
from benchmarks.table import Row
from benchmarks.timing import compare_all, progress, steady

TARGET = 1.1


def rows(quick: bool, rounds: int) -> list[Row]:
    import onnxruntime as ort

    from graphkit.io.onnx_export import to_onnx
    from graphkit.io.onnx_import import from_onnx

    graph, inputs, params = workloads.two_layer_net()
    model = to_onnx(graph)
    plan = gk.plan_for(from_onnx(model))
    options = ort.SessionOptions()
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    ours = gk.execute(plan, inputs).outputs["loss"]
    (theirs,) = session.run(["loss"], inputs)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4)
    by_hand = workloads.numpy_two_layer_forward(inputs["X"], inputs["y"], **params)
    np.testing.assert_allclose(ours, by_hand, rtol=1e-4)
    warm = steady(lambda: gk.execute(plan, inputs), plan)
    ours_s, theirs_s, numpy_s = compare_all([
        lambda: gk.execute(plan, inputs),
        lambda: session.run(["loss"], inputs),
        lambda: workloads.numpy_two_layer_forward(inputs["X"], inputs["y"], **params),
    ], rounds)
    progress(f"onnx: 2-layer forward graphkit {ours_s * 1e3:.3f} ms, "
             f"onnxruntime {theirs_s * 1e3:.3f} ms, numpy by hand {numpy_s * 1e3:.3f} ms")
    return [Row("2-layer net forward via ONNX vs onnxruntime", ours_s, theirs_s, target=TARGET,
                note=f"numpy by hand: {numpy_s * 1e3:.3f} ms; {warm}; "
                     f"ORT threads: {ort_threads(options)}")]
