"""The 2-layer net's training step (forward and every parameter gradient) against numpy."""

from __future__ import annotations

import numpy as np

from benchmarks import workloads
from benchmarks.table import Row
from benchmarks.timing import compare, progress, steady

TARGET = 1.05


def rows(quick: bool, rounds: int) -> list[Row]:
    graph, inputs, params = workloads.two_layer_net()
    plan, step = workloads.graphkit_two_layer_step(graph, inputs)
    loss, grads = workloads.numpy_two_layer_step(inputs["X"], inputs["y"], **params)
    result = step()
    np.testing.assert_allclose(result.outputs["loss"], loss, rtol=1e-5)
    for name, grad in grads.items():  # the two must compute the same thing
        np.testing.assert_allclose(result.gradients[name], grad, rtol=1e-3, atol=1e-6)
    warm = steady(step, plan)
    ours, reference = compare(
        step, lambda: workloads.numpy_two_layer_step(inputs["X"], inputs["y"], **params), rounds
    )
    progress(f"net: step graphkit {ours * 1e3:.3f} ms, numpy {reference * 1e3:.3f} ms")
    return [Row("2-layer net step (256, 3072-100-10, f32) vs numpy", ours, reference,
                target=TARGET, note=f"forward + gradients of W1, b1, W2, b2; {warm}")]
