"""Compiled plans (codegen.py): the same numbers as the interpreter, bit for bit; the same
errors; compiled only once hot; plugin results that are not numpy handled."""

from __future__ import annotations

import importlib
import threading
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from plugin_helpers import with_ops

import graphkit
from graphkit import ExecutionError, GraphBuilder, OpDef, execute
from graphkit.codegen import Compiled
from graphkit.gradcheck import single_node_graph

executor = importlib.import_module("graphkit.execute")  # the module, not the function

BUILTIN = graphkit.builtin_registry(strict=True)
OPS = sorted({op.name: op for op in BUILTIN.ops() if op.sample is not None}.values(),
             key=lambda op: op.name)


def run_in(mode: str, monkeypatch: pytest.MonkeyPatch, plan: Any, inputs: dict[str, Any],
           **kwargs: Any) -> graphkit.Result:
    monkeypatch.setattr(executor, "COMPILE", mode)
    return execute(plan, inputs, **kwargs)


def assert_same(a: graphkit.Result, b: graphkit.Result) -> None:
    assert a.outputs.keys() == b.outputs.keys() and a.gradients.keys() == b.gradients.keys()
    for name in a.outputs:
        np.testing.assert_array_equal(a.outputs[name], b.outputs[name], strict=True)
    for name in a.gradients:
        np.testing.assert_array_equal(a.gradients[name], b.gradients[name], strict=True)


@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
@given(seed=st.integers(0, 2**32 - 1))
def test_every_builtin_op_compiled_equals_interpreted(op: OpDef, seed: int) -> None:
    arrays, attributes = op.sample(np.random.default_rng(seed))
    graph, inputs = single_node_graph(op, arrays, attributes)
    plan = graphkit.plan_for(graph, BUILTIN)
    with pytest.MonkeyPatch.context() as mp:
        floats = [n for n, a in inputs.items() if np.asarray(a).dtype.kind == "f"]
        differentiable = op.vjp is not None and floats
        for wrt in (None, floats) if differentiable else (None,):
            interpreted = run_in("never", mp, plan, inputs, wrt=wrt)
            compiled = run_in("always", mp, plan, inputs, wrt=wrt)
            assert type(plan._compiled[None if wrt is None else (None, tuple(wrt))]) is Compiled
            assert_same(interpreted, compiled)


def test_two_layer_net_compiled_equals_interpreted(monkeypatch: pytest.MonkeyPatch) -> None:
    graph = graphkit.load("examples/two_layer_net.json")
    rng = np.random.default_rng(0)
    inputs = {"X": rng.standard_normal((5, 4)), "y": rng.integers(0, 3, 5)}
    plan = graphkit.plan_for(graph)
    interpreted = run_in("never", monkeypatch, plan, inputs, wrt="all", of="loss")
    compiled = run_in("always", monkeypatch, plan, inputs, wrt="all", of="loss")
    assert_same(interpreted, compiled)
    assert compiled.gradients  # the comparison covered real gradients


def test_fan_out_and_seed_compiled(monkeypatch: pytest.MonkeyPatch) -> None:
    b = GraphBuilder("fan")
    x, a = b.inputs("x", "a")
    b.output((x * a) * (x + 1.0) + x.exp(), "f")
    plan = graphkit.plan_for(b.build(), BUILTIN)
    inputs = {"x": np.array([0.5, -1.0]), "a": np.array([3.0, 2.0])}
    seed = np.array([1.0, 10.0])
    interpreted = run_in("never", monkeypatch, plan, inputs, wrt=["x", "a"], seed=seed)
    compiled = run_in("always", monkeypatch, plan, inputs, wrt=["x", "a"], seed=seed)
    assert_same(interpreted, compiled)
    x_, a_ = inputs["x"], inputs["a"]
    np.testing.assert_allclose(compiled.gradients["x"],
                               seed * (a_ * (x_ + 1) + a_ * x_ + np.exp(x_)))


def test_a_plan_is_compiled_once_hot_and_not_before(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(executor, "COMPILE", "auto")
    plan = graphkit.plan_for(graphkit.load("examples/sigmoid_neuron.json"), BUILTIN)
    inputs = {"w0": 2.0, "x0": -1.0, "w1": -3.0, "x1": -2.0, "w2": -3.0}
    key = (None, "all")
    execute(plan, inputs, wrt="all")
    assert isinstance(plan._compiled[key], float)  # one run: interpreted, its time counted
    budget = executor.COMPILE_SECONDS_PER_STEP * len(plan.steps)
    runs = 1
    while not isinstance(plan._compiled[key], Compiled):
        execute(plan, inputs, wrt="all")
        runs += 1
        assert runs < 100_000
    # compiled once the interpreted runs had cost what compiling is estimated to
    assert runs >= 2
    first = execute(plan, inputs, wrt="all")
    assert first.gradients["w0"] == pytest.approx(-0.19661193, abs=1e-8)
    assert budget > 0


def test_threads_sharing_a_plan_while_it_is_compiled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(executor, "COMPILE", "auto")
    monkeypatch.setattr(executor, "COMPILE_SECONDS_PER_STEP", 1e-6)
    plan = graphkit.plan_for(graphkit.load("examples/sigmoid_neuron.json"), BUILTIN)
    inputs = {"w0": 2.0, "x0": -1.0, "w1": -3.0, "x1": -2.0, "w2": -3.0}
    expected = execute(plan, inputs, wrt="all").gradients
    plan._compiled.clear()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(200):
                got = execute(plan, inputs, wrt="all").gradients
                assert all(float(got[k]) == float(expected[k]) for k in expected)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert isinstance(plan._compiled[(None, "all")], Compiled)


def test_never_keeps_the_interpreter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(executor, "COMPILE", "never")
    monkeypatch.setattr(executor, "COMPILE_SECONDS_PER_STEP", 0.0)
    plan = graphkit.plan_for(graphkit.load("examples/add_mul.json"), BUILTIN)
    for _ in range(5):
        execute(plan, {"x": -2.0, "y": 5.0, "z": -4.0}, wrt="all")
    assert not any(isinstance(state, Compiled) for state in plan._compiled.values())


def test_huge_plans_stay_interpreted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(executor, "COMPILE", "auto")
    monkeypatch.setattr(executor, "COMPILE_SECONDS_PER_STEP", 0.0)
    monkeypatch.setattr(executor, "COMPILE_MAX_STEPS", 2)
    plan = graphkit.plan_for(graphkit.load("examples/sigmoid_neuron.json"), BUILTIN)
    for _ in range(3):
        execute(plan, {"w0": 2.0, "x0": -1.0, "w1": -3.0, "x1": -2.0, "w2": -3.0}, wrt="all")
    assert not any(isinstance(state, Compiled) for state in plan._compiled.values())


def test_plugin_results_that_are_python_numbers_work_compiled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry = with_ops(OpDef(
        "Half", lambda x: float(x) / 2, lambda g, y, x: [float(g) / 2], domain="test"))
    b = GraphBuilder("g")
    b.output(b.op("test::Half", b.input("x")) * 3.0, "f")
    plan = graphkit.plan_for(b.build(), registry)
    interpreted = run_in("never", monkeypatch, plan, {"x": 4.0}, wrt=["x"])
    compiled = run_in("always", monkeypatch, plan, {"x": 4.0}, wrt=["x"])
    assert float(compiled.outputs["f"]) == float(interpreted.outputs["f"]) == 6.0
    assert float(compiled.gradients["x"]) == float(interpreted.gradients["x"]) == 1.5


def broken_rule(g: Any, y: Any, x: Any) -> Any:
    raise RuntimeError("the rule failed")


@pytest.mark.parametrize(("forward", "vjp", "phase", "text"), [
    (lambda x: x @ np.ones((7, 2)), lambda g, y, x: (g,), "forward", "matmul"),
    (lambda x: x * 1.0, broken_rule, "backward", "the rule failed"),
    (lambda x: x * 1.0, lambda g, y, x: (np.ones(7),), "", "shape (7,)"),
    (lambda x: x * 1.0, lambda g, y, x: (g, g), "", "returned 2"),
])
def test_compiled_errors_name_the_node_as_the_interpreter_does(
    forward: Any, vjp: Any, phase: str, text: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry = with_ops(OpDef("Fragile", forward, vjp, domain="test"))
    b = GraphBuilder("g")
    b.output(b.op("test::Fragile", b.input("x"), name="fragile").sum(), "f")
    plan = graphkit.plan_for(b.build(), registry)
    messages = []
    for mode in ("never", "always"):
        with pytest.raises(ExecutionError) as info:
            run_in(mode, monkeypatch, plan, {"x": np.ones((2, 3))}, wrt=["x"])
        messages.append(str(info.value))
    assert messages[0] == messages[1]
    assert '"fragile"' in messages[1] and "test::Fragile" in messages[1] and text in messages[1]
    assert phase in messages[1]
