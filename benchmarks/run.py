"""Run every benchmark and print a table: workload, graphkit, reference, ratio, target, met.

    python -m benchmarks.run            (or: make bench)
"""

from __future__ import annotations

import argparse
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import graphkit as gk
from benchmarks import workloads
from benchmarks.timing import compare, per_call

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@dataclass
class Row:
    workload: str
    ours: float
    reference: float | None
    reference_name: str
    target: float | None

    @property
    def ratio(self) -> float | None:
        return None if self.reference is None else self.ours / self.reference

    @property
    def met(self) -> str:
        if self.target is None or self.ratio is None:
            return "-"
        return "yes" if self.ratio <= self.target else "NO"


def two_layer_net(rounds: int) -> Row:
    graph, inputs, params = workloads.two_layer_net()
    step = workloads.graphkit_two_layer_step(graph, inputs)
    loss, grads = workloads.numpy_two_layer_step(inputs["X"], inputs["y"], **params)
    result = step()
    for name, grad in grads.items():  # the two must compute the same thing
        np.testing.assert_allclose(result.gradients[name], grad, rtol=1e-3, atol=1e-6)
    ours, reference = compare(
        step, lambda: workloads.numpy_two_layer_step(inputs["X"], inputs["y"], **params), rounds
    )
    return Row("2-layer net step (256, 3072-100-10, f32)", ours, reference,
               "hand-written numpy", 1.2)


def sigmoid_neuron(rounds: int) -> Row:
    graph = gk.load(EXAMPLES / "sigmoid_neuron.json")
    inputs = {"w0": 2.0, "x0": -1.0, "w1": -3.0, "x1": -2.0, "w2": -3.0}
    plan = gk.plan_for(graph)
    seconds = per_call(lambda: gk.execute(plan, inputs, wrt="all"), 0.2)
    return Row("sigmoid neuron (8 gates) forward+backward", seconds, None, "-", None)


def show(rows: list[Row]) -> str:
    head = (f"{'workload':44} {'graphkit':>11} {'reference':>11} {'ratio':>6} {'target':>7} "
            f"{'met':>4}")
    lines = [head, "-" * len(head)]
    for row in rows:
        ref = "-" if row.reference is None else _time(row.reference)
        ratio = "-" if row.ratio is None else f"{row.ratio:.3f}"
        target = "-" if row.target is None else f"<={row.target}"
        lines.append(f"{row.workload:44} {_time(row.ours):>11} {ref:>11} {ratio:>6} {target:>7} "
                     f"{row.met:>4}")
    return "\n".join(lines)


def _time(seconds: float) -> str:
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3f} ms"
    return f"{seconds * 1e6:.1f} us"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds per workload")
    args = parser.parse_args(argv)
    print(f"graphkit benchmarks: python {platform.python_version()}, numpy {np.__version__}, "
          f"{platform.machine()}, {platform.system()}")
    rows = [two_layer_net(args.rounds), sigmoid_neuron(args.rounds)]
    print(show(rows))
    return 0 if all(row.met != "NO" for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
