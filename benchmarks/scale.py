"""Scale: time per node of each stage, from 1,000 to 1,000,000 nodes, for a chain and a DAG.

Stages: load JSON (`graphkit.load` of a saved .json), load ONNX (`graphkit.load` of a file saved
by `to_onnx`), validate, plan (`compile_plan`), first run (forward and backward on a new plan,
which also plans the backward pass) and run (forward and backward again). A stage is flat when
its largest time per node is within 1.5x of its smallest across sizes.

Graphs:
- chain: `scalar.chain_graph(n)`, scalar add, mul, tanh alternating (two shared constants);
- dag: each node is Gemm(previous value, two earlier values drawn uniformly, alpha=beta=0.5) on
  1x1 matrices, so 3 edges into every node, every node on the path to the output, and values
  bounded in (0, 1]; inputs x0, x1, x2; a fixed seed.

Also: loading the 100,000-node chain's ONNX file plus its first (forward) run, against
onnxruntime's session creation plus first run on the same file.

Files are generated once, each in a child process, into benchmarks/.cache/ and reused.
"""

from __future__ import annotations

import functools
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import graphkit as gk
from benchmarks.scalar import chain_graph
from benchmarks.table import Row, show_seconds
from benchmarks.timing import Timeout, once, progress
from graphkit.model import Graph, Node, ValueInfo
from graphkit.plan import compile_plan

SIZES = (1_000, 10_000, 100_000, 1_000_000)
QUICK_SIZES = SIZES[:3]
SHAPES = ("chain", "dag")
STAGES = ("load JSON", "load ONNX", "validate", "plan", "first run", "run")
FLAT = 1.5
VERSUS_ORT = 0.1
ORT_NODES = 100_000
SEED = 0
GENERATOR = 1
"""Bump when a graph generator changes: cached files carry it in their names."""
CACHE = Path(__file__).resolve().parent / ".cache"
STAGE_LIMIT = 240.0
"""Seconds one stage may take at one size before it is reported as a timeout."""


def dag_graph(n: int, seed: int = SEED) -> Graph:
    rng = np.random.default_rng(seed)
    names = ["x0", "x1", "x2"]
    draws = rng.random((n, 2))
    nodes = []
    for i in range(n):
        out = "y" if i == n - 1 else f"v{i + 1}"
        b, c = (names[int(u * len(names))] for u in draws[i])
        nodes.append(Node(name=out, op="Gemm", inputs=[names[-1], b, c], outputs=[out],
                          attributes={"alpha": 0.5, "beta": 0.5}))
        names.append(out)
    return Graph(
        name=f"dag_{n}",
        inputs=[ValueInfo(name=x, dtype="float64", shape=[1, 1]) for x in names[:3]],
        outputs=[ValueInfo(name="y", dtype="float64", shape=[1, 1])],
        nodes=nodes,
    )


def build(shape: str, n: int) -> Graph:
    return chain_graph(n) if shape == "chain" else dag_graph(n)


def inputs_for(shape: str) -> dict[str, Any]:
    if shape == "chain":
        return {"x": np.float64(0.3)}
    return {f"x{i}": np.full((1, 1), value) for i, value in enumerate((0.3, 0.6, 0.9))}


def files(shape: str, n: int) -> tuple[Path, Path]:
    stem = CACHE / f"{shape}-g{GENERATOR}-{n}"
    return stem.with_suffix(".json"), stem.with_suffix(".onnx")


def generate(shape: str, n: int) -> None:
    """Write the graph's .json and .onnx files into the cache (run in a child process)."""
    from graphkit.io.onnx_export import save_onnx

    CACHE.mkdir(exist_ok=True)
    (CACHE / ".gitignore").write_text("*\n")
    json_path, onnx_path = files(shape, n)
    graph = build(shape, n)
    gk.save(graph, json_path)
    save_onnx(graph, onnx_path)


def ensure_files(shape: str, n: int) -> tuple[Path, Path]:
    json_path, onnx_path = files(shape, n)
    if not (json_path.exists() and onnx_path.exists()):
        progress(f"scale: generating the {n:,}-node {shape} into {CACHE} (once)")
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "benchmarks.scale", shape, str(n)], check=True,
                       cwd=Path(__file__).resolve().parent.parent)
        progress(f"scale: generated in {time.perf_counter() - start:.0f} s")
    return json_path, onnx_path


def repeats(n: int) -> int:
    """Calls per stage, their median reported: at least 3 at every size, so that every size
    is a median of calls the allocator has warmed alike (a single call at the big sizes was
    a cold one, paying for fresh memory from the kernel that the small sizes' repeats reuse)."""
    return 7 if n <= 1_000 else 5 if n <= 10_000 else 3


@dataclass
class Measured:
    """Seconds per node of each stage at each size; a stage that could not run has a reason."""

    per_node: dict[str, dict[int, float]] = field(default_factory=dict)
    missing: dict[str, dict[int, str]] = field(default_factory=dict)

    def add(self, stage: str, n: int, seconds: list[float]) -> None:
        self.per_node.setdefault(stage, {})[n] = statistics.median(seconds) / n

    def miss(self, stage: str, n: int, why: str) -> None:
        self.missing.setdefault(stage, {})[n] = why


def _timed(fn: Callable[[], Any], count: int, limit: float) -> tuple[list[float], Any]:
    seconds, result = [], None
    for _ in range(count):
        result = None  # free the previous result before the next call
        elapsed, result = once(fn, limit)
        seconds.append(elapsed)
    return seconds, result


def measure_size(shape: str, n: int, measured: Measured, limit: float) -> None:
    json_path, onnx_path = ensure_files(shape, n)
    count = repeats(n)
    inputs = inputs_for(shape)
    wrt = list(inputs)
    stage = "load JSON"
    try:
        seconds, graph = _timed(lambda: gk.load(json_path), count, limit)
        measured.add(stage, n, seconds)
        stage = "load ONNX"
        seconds, imported = _timed(lambda: gk.load(onnx_path), count, limit)
        measured.add(stage, n, seconds)
        if n <= 100_000 and imported != graph:  # (comparing 1,000,000 nodes takes long)
            raise AssertionError(f"{onnx_path} does not import as the graph {json_path} holds")
        del imported
        stage = "validate"
        # a shallow copy per call: a new graph object, in case validation learns to cache
        seconds, resolved = _timed(lambda: gk.validate(graph.model_copy()), count, limit)
        measured.add(stage, n, seconds)
        # a new plan per call of the first run: its first run also plans the backward pass
        stage = "plan"
        plan_seconds, first_seconds = [], []
        for _ in range(count):
            stage = "plan"
            plan = result = None
            elapsed, plan = once(lambda: compile_plan(resolved), limit)
            plan_seconds.append(elapsed)
            stage = "first run"
            elapsed, result = once(functools.partial(gk.execute, plan, inputs, wrt=wrt), limit)
            first_seconds.append(elapsed)
        measured.add("plan", n, plan_seconds)
        measured.add("first run", n, first_seconds)
        _check(shape, n, result)
        stage = "run"
        run = functools.partial(gk.execute, plan, inputs, wrt=wrt)
        seconds, _ = _timed(run, count, limit)
        measured.add(stage, n, seconds)
    except Timeout as exc:
        for later in STAGES[STAGES.index(stage):]:
            measured.miss(later, n, "timeout" if later == stage else "not run")
        progress(f"scale: {shape} {n:,} {stage}: timeout ({exc})")
        return
    shown = ", ".join(f"{s} {measured.per_node[s][n] * 1e6:.2f}" for s in STAGES)
    progress(f"scale: {shape} {n:,}: us/node {shown}")


def _check(shape: str, n: int, result: gk.Result) -> None:
    """The run computed finite values. (Gradients through a long chain of tanh underflow to
    0, as micrograd's do: d tanh shrinks the gradient about 0.4x every 3 ops.)"""
    for name, grad in [*result.outputs.items(), *result.gradients.items()]:
        if not np.all(np.isfinite(grad)):
            raise AssertionError(f"{shape} {n}: {name} is {grad}")


def shape_rows(shape: str, sizes: tuple[int, ...], limit: float) -> list[Row]:
    measured = Measured()
    for n in sizes:
        measure_size(shape, n, measured, limit)
    rows = []
    for stage in STAGES:
        found = measured.per_node.get(stage, {})
        missing = measured.missing.get(stage, {})
        parts = [f"{_size(n)} {found[n] * 1e6:.2f}" if n in found else
                 f"{_size(n)} {missing.get(n, '-')}" for n in sizes]
        note = "us/node: " + ", ".join(parts)
        largest = max(found.values()) if found else None
        smallest = min(found.values()) if found else None
        rows.append(Row(f"scale {shape}: {stage}, per node", largest, smallest,
                        target=FLAT, failed=bool(missing) or len(found) < 2, note=note))
    return rows


def _size(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1_000}k"


def versus_onnxruntime(rounds: int) -> Row:
    """Loading the chain's ONNX file plus a first forward run: graphkit against onnxruntime."""
    import onnxruntime as ort

    _json_path, onnx_path = ensure_files("chain", ORT_NODES)
    inputs = inputs_for("chain")
    feed = {"x": np.asarray(inputs["x"])}

    def ours() -> Any:
        return gk.execute(gk.load(onnx_path), inputs).outputs["y"]

    def theirs() -> Any:
        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        return session.run(None, feed)[0]

    times: tuple[list[float], list[float]] = ([], [])
    values = []
    for _ in range(rounds):
        for side, fn in enumerate((ours, theirs)):
            elapsed, value = once(fn)
            times[side].append(elapsed)
            values.append(value)
    np.testing.assert_allclose(values[0], values[1], rtol=1e-9)
    ours_s, theirs_s = statistics.median(times[0]), statistics.median(times[1])
    progress(f"scale: chain {ORT_NODES:,} load + first run: graphkit {show_seconds(ours_s)}, "
             f"onnxruntime {show_seconds(theirs_s)}")
    return Row(f"chain {ORT_NODES // 1000}k: load ONNX + first run vs onnxruntime", ours_s,
               theirs_s, target=VERSUS_ORT,
               note="graphkit: load, validate, plan, forward; ORT: InferenceSession, run")


def rows(quick: bool, rounds: int) -> list[Row]:
    sizes = QUICK_SIZES if quick else SIZES
    found = []
    for shape in SHAPES:
        found += shape_rows(shape, sizes, STAGE_LIMIT)
    found.append(versus_onnxruntime(1 if quick else 2))
    return found


if __name__ == "__main__":  # python -m benchmarks.scale SHAPE N: write the cached files
    generate(sys.argv[1], int(sys.argv[2]))
