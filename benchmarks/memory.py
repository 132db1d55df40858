"""Memory: what a run holds at its peak, traced by tracemalloc (numpy reports its arrays to it).

Every measurement first runs the workload once untraced (the plan is compiled, the parameters
decoded, caches filled), then starts tracing and runs it again: the figure is the peak of
traced memory above where tracing started, so parameters, inputs and anything allocated before
the run are left out, and everything the run allocates (arrays, tape, bookkeeping) is in.

- Forward only: a 100-layer MLP (width 256, batch 64, float32, ReLU). Its peak divided by one
  layer's activation (64 x 256 float32 = 64 KiB) is the number of layers' activations held at
  once; a run that kept every value would hold 300 (a product, a sum, a ReLU per layer).
- Forward and backward: chains on a vector of 65,536 float64 (512 KiB per value), gradient of
  the input. What the gradient rules need is computed from the ops' own declarations
  (`OpDef.saves`: inputs and/or outputs) over the nodes on the gradient path, counting each
  value once and leaving out graph inputs and constants (held by the caller, not by the run).
  The figure is the peak minus that, in values: the run's working set beyond what the rules
  declared (the seed, an upstream and a local gradient, a forward temporary), which must not
  grow with the chain's length.
  - Neg then Exp, 50 times: Exp saves only its output, Neg nothing, so the rules need the 50
    Exp outputs and none of the 50 Neg outputs; keeping every value would hold 50 more.
  - Add (of a scalar constant) 100 times: Add saves nothing, so the rules need no value.
"""

from __future__ import annotations

import gc
import importlib
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

import graphkit as gk
from benchmarks.table import Row
from benchmarks.timing import progress, steady

LAYERS, WIDTH, BATCH = 100, 256, 64
VECTOR = 65_536
PAIRS = 50
ADDS = 100
LAYERS_HELD = 4
EXTRA_VALUES = 4


def traced_peak(fn: Callable[[], Any]) -> int:
    """Peak bytes traced during one call of `fn` above the traced memory at its start."""
    fn()  # warm: plans, caches, decoded constants
    gc.collect()
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
        del result
    finally:
        tracemalloc.stop()
    return peak - start


def mlp_graph(layers: int = LAYERS, width: int = WIDTH, seed: int = 0) -> gk.Graph:
    """relu(h @ W + b) `layers` times; He-initialised float32 parameters as graph constants."""
    rng = np.random.default_rng(seed)
    g = gk.GraphBuilder(f"mlp_{layers}", dtype="float32")
    h = g.input("X", shape=["N", width])
    for i in range(layers):
        W = g.parameter(f"W{i}", (rng.standard_normal((width, width)) *
                                  np.sqrt(2 / width)).astype("float32"))
        b = g.parameter(f"b{i}", np.full(width, 0.01, "float32"))
        h = (h @ W + b).relu()
    g.output(h, "out")
    return g.build()


def mlp_inputs(batch: int = BATCH, width: int = WIDTH, seed: int = 1) -> dict[str, np.ndarray]:
    return {"X": np.random.default_rng(seed).standard_normal((batch, width)).astype("float32")}


def mlp_params(graph: gk.Graph) -> list[tuple[np.ndarray, np.ndarray]]:
    params = {c.name: c.to_numpy() for c in graph.constants}
    count = sum(1 for name in params if name.startswith("W"))
    return [(params[f"W{i}"], params[f"b{i}"]) for i in range(count)]


def numpy_mlp(params: list[tuple[np.ndarray, np.ndarray]], X: np.ndarray) -> np.ndarray:
    h = X
    for W, b in params:
        h = np.maximum(h @ W + b, 0)
    return h


def neg_exp_chain(pairs: int = PAIRS, size: int = VECTOR) -> gk.Graph:
    g = gk.GraphBuilder(f"neg_exp_{pairs}")
    v = g.input("x", shape=[size])
    for _ in range(pairs):
        v = (-v).exp()
    g.output(v, "y")
    return g.build()


def add_chain(adds: int = ADDS, size: int = VECTOR) -> gk.Graph:
    g = gk.GraphBuilder(f"add_{adds}")
    v = g.input("x", shape=[size])
    step = g.constant("step", 0.001)
    for _ in range(adds):
        v = v + step
    g.output(v, "y")
    return g.build()


def vector_input(size: int = VECTOR, seed: int = 2) -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(seed).uniform(0.1, 0.9, size)}


def declared_values(graph: gk.Graph) -> list[str]:
    """The values the gradient rules of a chain declare they read (`saves`), each once, less
    graph inputs and constants. Every node of these chains lies on the gradient path."""
    resolved = gk.validate(graph)
    outside = {i.name for i in graph.inputs} | {c.name for c in graph.constants}
    saved: dict[str, None] = {}
    for node, op in zip(graph.nodes, resolved.ops, strict=True):
        if "inputs" in op.saves:
            saved.update(dict.fromkeys(node.inputs))
        if "outputs" in op.saves:
            saved.update(dict.fromkeys(node.outputs))
    return [name for name in saved if name not in outside]


def both_peaks(
    run: Callable[[], Any], plan: Any, unit: int, unit_name: str, minus: int = 0
) -> tuple[int, str]:
    """The larger of the traced peaks of an interpreted and a compiled run (both must meet
    the target), and a note giving each. The compiled run is measured once the plan is
    compiled (`steady`): compiling allocates too, once, and is not what a run keeps."""
    executor = importlib.import_module("graphkit.execute")
    mode, executor.COMPILE = executor.COMPILE, "never"
    try:
        interpreted = traced_peak(run)
    finally:
        executor.COMPILE = mode
    steady(run, plan)
    compiled = traced_peak(run)
    note = (f"interpreted {(interpreted - minus) / unit:.2f}, compiled "
            f"{(compiled - minus) / unit:.2f} {unit_name}")
    return max(interpreted, compiled), note


def mlp_row() -> Row:
    graph, inputs = mlp_graph(), mlp_inputs()
    plan = gk.plan_for(graph)
    layer = BATCH * WIDTH * 4
    params = mlp_params(graph)
    expected = numpy_mlp(params, inputs["X"])
    got = gk.execute(plan, inputs).outputs["out"]
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-5)
    if not np.any(got):
        raise AssertionError("the MLP's output is all zeros: the measurement would be vacuous")
    ours, modes = both_peaks(lambda: gk.execute(plan, inputs), plan, layer, "layers")
    by_hand = traced_peak(lambda: numpy_mlp(params, inputs["X"]))
    progress(f"memory: MLP forward peak {ours / layer:.2f} layers (numpy {by_hand / layer:.2f})")
    return Row(f"MLP {LAYERS} layers forward: activations held", ours, layer, unit="B",
               target=LAYERS_HELD, ratio_unit="layers",
               note=f"{modes}; reference: one layer's activation; hand-written numpy holds "
                    f"{by_hand / layer:.2f}; keeping every value: {3 * LAYERS}")


def retention_row(name: str, graph: gk.Graph, keep_all: int) -> Row:
    plan = gk.plan_for(graph)
    inputs = vector_input()
    value = VECTOR * 8
    declared = len(declared_values(graph)) * value
    result = gk.execute(plan, inputs, wrt=["x"])
    if not np.all(np.isfinite(result.gradients["x"])) or not np.any(result.gradients["x"]):
        raise AssertionError(f"{name}: the gradient is {result.gradients['x']}")
    del result
    peak, modes = both_peaks(lambda: gk.execute(plan, inputs, wrt=["x"]), plan, value,
                             "values", declared)
    extra = (peak - declared) / value
    progress(f"memory: {name}: peak {peak / value:.2f} values, declared {declared / value:.0f}")
    return Row(f"{name} fwd+bwd: values held beyond saves", peak, declared, unit="B",
               ratio=extra, target=EXTRA_VALUES, ratio_unit="values",
               note=f"{modes}; reference: the values the rules declared ({declared // value}); "
                    f"keeping "
                    f"every value: {keep_all} beyond")


def rows(quick: bool, rounds: int) -> list[Row]:
    return [
        mlp_row(),
        retention_row(f"Neg-Exp chain ({PAIRS} pairs)", neg_exp_chain(), PAIRS),
        retention_row(f"Add chain ({ADDS} ops)", add_chain(), ADDS),
    ]
