"""Forward pass and backpropagation over a compiled plan.

Forward: steps in order; a value is dropped once no later step reads it. With gradients, each
step between the requested values and the output also puts on a tape what its rule reads
(inputs and/or output; the rest as shape-only `Meta`). Backward: the tape in reverse; each rule
turns the upstream gradient into one gradient per input; gradients that meet at a value add.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from graphkit.errors import ExecutionError, GraphkitError, InputError
from graphkit.graph import ResolvedGraph, validate
from graphkit.model import FLOAT_DTYPES, Graph
from graphkit.opdef import Meta
from graphkit.ops.prims import sum_to
from graphkit.plan import BackwardPlan, Plan, Step, coerce_input, compile_plan
from graphkit.registry import Registry, default_registry


@dataclass
class Result:
    """What a run returns: output values and, when asked for, gradients (numpy arrays)."""

    outputs: dict[str, np.ndarray]
    gradients: dict[str, np.ndarray] = field(default_factory=dict)


_plans: dict[int, tuple[weakref.ref[Graph], Registry | None, Plan]] = {}


def plan_for(graph: Graph | ResolvedGraph | Plan, registry: Registry | None = None) -> Plan:
    """The compiled plan of a graph, built on first use and reused while the graph lives.

    Plans are cached per (graph, registry): registering a plugin later leaves them valid, and
    a graph that named an op no plugin had yet is validated again on its next run.
    """
    if isinstance(graph, Plan):
        return graph
    if isinstance(graph, ResolvedGraph):
        return compile_plan(graph)
    registry = registry if registry is not None else default_registry()
    key = id(graph)
    cached = _plans.get(key)
    if cached is not None and cached[0]() is graph and cached[1] is registry:
        return cached[2]
    # A shallow copy: the cached plan must not keep `graph` alive, or the weakref never fires.
    plan = compile_plan(validate(graph.model_copy(), registry))
    _plans[key] = (weakref.ref(graph, lambda _ref, key=key, plans=_plans: plans.pop(key, None)),
                   registry, plan)
    return plan


def execute(
    graph: Graph | ResolvedGraph | Plan,
    inputs: Mapping[str, Any] | None = None,
    wrt: Sequence[str] | str | None = None,
    seed: Any = None,
    of: str | None = None,
    registry: Registry | None = None,
) -> Result:
    """Run `graph` on `inputs`; with `wrt` (value names, or "all"), backpropagate from `of`.

    `wrt="all"` means every float input and constant. A non-scalar output is seeded with ones
    unless `seed` is given. Gradients have the shape and dtype of the value they belong to.
    """
    plan = plan_for(graph, registry)
    values = _start(plan, inputs or {})
    if wrt is None:
        _forward(plan, values)
        return Result(_collect_outputs(plan, values))
    key = (of, wrt if isinstance(wrt, str) else tuple(wrt))
    backward = plan._backward.get(key)
    if backward is None:
        of_name = _choose_output(plan, of)
        backward = plan.backward_plan(of_name, _wrt_names(plan, wrt))
        plan._backward[key] = backward
    tape = _forward(plan, values, backward)
    gradients = _backward(plan, backward, tape, _seed(plan, backward, values, seed), values)
    return Result(_collect_outputs(plan, values), gradients)


def _start(plan: Plan, inputs: Mapping[str, Any]) -> list[Any]:
    expected = {info.name for info, _ in plan.inputs}
    unknown = sorted(set(inputs) - expected)
    if unknown:
        raise InputError(
            f"graph {plan.name!r} has no input {', '.join(map(repr, unknown))} "
            f"(inputs: {', '.join(sorted(expected)) or 'none'})"
        )
    missing = [info.name for info, _ in plan.inputs if info.name not in inputs]
    if missing:
        names = ", ".join(map(repr, missing))
        raise InputError(f"graph {plan.name!r} needs a value for input {names}")
    values: list[Any] = [None] * len(plan.slots)
    bound: dict[str, int] = {}
    for info, slot in plan.inputs:
        values[slot] = coerce_input(info, inputs[info.name], bound)
    for _name, slot, array in plan.constants:
        values[slot] = array
    return values


def _forward(
    plan: Plan, values: list[Any], backward: BackwardPlan | None = None
) -> list[tuple[int, tuple[Any, ...], Any]]:
    """Run every step; return the tape of (step position, saved inputs, saved output)."""
    tape: list[tuple[int, tuple[Any, ...], Any]] = []
    record = backward.record if backward is not None else frozenset()
    frees = backward.free_after if backward is not None else plan.free_after
    position = -1
    args: tuple[Any, ...] = ()
    try:
        for position, step in enumerate(plan.steps):
            args = tuple([values[i] for i in step.ins])
            result = step.forward(*args)
            if isinstance(step.out, tuple):
                result = tuple(result)
                if len(result) != len(step.out):
                    raise ValueError(
                        f"forward returned {len(result)} outputs, expected {len(step.out)}"
                    )
                for slot, value in zip(step.out, result, strict=True):
                    values[slot] = value
            else:
                values[step.out] = result
            if position in record:
                saved_in = args if step.saves_inputs else tuple(_meta(a) for a in args)
                saved_out = result if step.saves_outputs else _meta_of(result)
                tape.append((position, saved_in, saved_out))
            for slot in frees[position]:
                values[slot] = None
    except GraphkitError:
        raise
    except Exception as exc:
        raise _node_error(plan, plan.steps[position], args, "forward", exc) from exc
    return tape


def _meta(value: Any) -> Meta:
    try:
        return Meta(value.shape, value.dtype)
    except AttributeError:  # a Python number from a plugin's rule
        return Meta(np.shape(value), np.result_type(value))


def _meta_of(result: Any) -> Any:
    return tuple(_meta(r) for r in result) if isinstance(result, tuple) else _meta(result)


def _backward(
    plan: Plan, backward: BackwardPlan, tape: list[tuple[int, tuple[Any, ...], Any]], seed: Any,
    values: list[Any],
) -> dict[str, np.ndarray]:
    grads: list[Any] = [None] * len(plan.slots)
    grads[backward.of] = seed
    keep = {slot for _name, slot in backward.wrt}
    steps, wants = plan.steps, backward.wants
    for position, args, saved_out in reversed(tape):
        step = steps[position]
        if isinstance(step.out, tuple):
            upstream = tuple(
                grads[s] if grads[s] is not None else np.zeros(o.shape, o.dtype)
                for s, o in zip(step.out, saved_out, strict=True)
            )
            if all(grads[s] is None for s in step.out):
                continue
        else:
            upstream = grads[step.out]
            if upstream is None:
                continue
            if step.out not in keep:
                grads[step.out] = None
        want = wants[position]
        try:
            if step.vjps is not None:
                local = tuple(
                    rule(upstream, saved_out, *args) if wanted and rule is not None else None
                    for wanted, rule in zip(want, step.vjps, strict=True)
                )
            elif step.vjp is not None:
                local = step.vjp(upstream, saved_out, *args)
            else:
                local = None
            _accumulate(plan, step, want, args, local, grads)
        except GraphkitError:
            raise
        except Exception as exc:
            raise _node_error(plan, step, args, "backward", exc) from exc
    result = {}
    handed_out = {id(seed)}
    for name, slot in backward.wrt:
        grad = grads[slot]
        if grad is None:  # the value does not reach the output
            grad = np.zeros_like(values[slot])
        grad = np.asarray(grad)
        if id(grad) in handed_out:  # e.g. Add passes one array to both inputs: no aliasing
            grad = grad.copy()
        handed_out.add(id(grad))
        result[name] = grad
    return result


def _accumulate(
    plan: Plan, step: Step, wants: tuple[bool, ...], args: tuple[Any, ...], local: Any,
    grads: list[Any],
) -> None:
    if local is None:
        return
    expected = f"{len(args)} gradient{'' if len(args) == 1 else 's'} (one per input)"
    if not isinstance(local, (tuple, list)):
        raise ExecutionError(
            _where(plan, step) + f": vjp returned a {type(local).__name__}, expected a tuple of "
            + expected
        )
    if len(local) != len(args):
        raise ExecutionError(
            _where(plan, step) + f": vjp returned {len(local)} gradients, expected " + expected
        )
    for index, (wanted, slot, arg, grad) in enumerate(
        zip(wants, step.ins, args, local, strict=True)
    ):
        if not wanted or grad is None:
            continue
        grad = _conform(plan, step, grad, arg, index)
        previous = grads[slot]
        grads[slot] = grad if previous is None else previous + grad


def _conform(plan: Plan, step: Step, grad: Any, arg: Any, index: int) -> Any:
    """The gradient in its input's shape (broadcasting undone) and dtype, or an error."""
    if not isinstance(grad, (np.ndarray, np.generic)):  # a number or list from a plugin's rule
        grad = np.asarray(grad)
    shape, dtype = grad.shape, grad.dtype
    want = _meta(arg)
    if shape != want.shape:
        if _squeezed(shape) == _squeezed(want.shape):  # only axes of size 1 differ
            grad = np.reshape(grad, want.shape)
        elif _broadcasts_to(want.shape, shape):
            grad = sum_to(grad, want.shape)
        else:
            raise ExecutionError(
                _where(plan, step) + f": gradient of shape {shape} for an input of "
                f"shape {want.shape}{_which(plan, step, index)}"
            )
    if dtype != want.dtype:
        if dtype.kind != "f" or want.dtype.kind != "f":
            raise ExecutionError(
                _where(plan, step) + f": gradient of dtype {dtype} for an input of "
                f"dtype {want.dtype}{_which(plan, step, index)}"
            )
        grad = grad.astype(want.dtype)
    return grad


def _squeezed(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(size for size in shape if size != 1)


def _broadcasts_to(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    """Whether numpy broadcasting takes `shape` to `target`: then sum_to undoes it."""
    return len(target) >= len(shape) and all(
        size in (1, wanted) for size, wanted in zip(reversed(shape), reversed(target), strict=False)
    )


def _which(plan: Plan, step: Step, index: int) -> str:
    """` (input 2 of 2, 'b')`: which of the node's inputs a gradient was for."""
    names = [name for name, slot in plan.slots.items() if slot == step.ins[index]]
    value = f", {names[0]!r}" if names else ""
    return f" (input {index + 1} of {len(step.ins)}{value})"


def _where(plan: Plan, step: Step) -> str:
    node = plan.resolved.model.nodes[step.node]
    plugin = plan.resolved.plugins[step.node]
    return f'{node.op} "{node.name}" (plugin {plugin})'


def _node_error(
    plan: Plan, step: Step, args: tuple[Any, ...], phase: str, exc: Exception
) -> ExecutionError:
    shapes = ", ".join(
        f"{tuple(np.shape(a))} {a.dtype if isinstance(a, Meta) else np.result_type(a)}"
        if a is not None else "?" for a in args
    )
    message = str(exc) or type(exc).__name__
    return ExecutionError(f"{_where(plan, step)} {phase}: inputs {shapes}: {message}")


def _choose_output(plan: Plan, of: str | None) -> str:
    names = [name for name, _ in plan.outputs]
    if of is None:
        if len(names) > 1:
            raise InputError(
                f"graph {plan.name!r} has {len(names)} outputs ({', '.join(names)}); "
                "say which to differentiate with of="
            )
        return names[0]
    if of not in plan.slots:
        raise InputError(f"graph {plan.name!r} has no value {of!r} to differentiate")
    return of


def _wrt_names(plan: Plan, wrt: Sequence[str] | str) -> tuple[str, ...]:
    if wrt == "all":
        candidates = [info.name for info, _ in plan.inputs] + [n for n, _, _ in plan.constants]
        return tuple(n for n in candidates if _is_float(plan, n))
    names = (wrt,) if isinstance(wrt, str) else tuple(wrt)
    for name in names:
        if name not in plan.slots:
            raise InputError(f"graph {plan.name!r} has no value {name!r} to take a gradient for")
        dtype = plan.value_dtype(name)
        if dtype is not None and dtype not in FLOAT_DTYPES:
            raise InputError(f"{name!r} is {dtype}: gradients exist only for float values")
    return tuple(dict.fromkeys(names))


def _is_float(plan: Plan, name: str) -> bool:
    dtype = plan.value_dtype(name)
    return dtype is None or dtype in FLOAT_DTYPES


def _seed(plan: Plan, backward: BackwardPlan, values: list[Any], seed: Any) -> Any:
    output = values[backward.of]
    of = next(name for name, slot in plan.slots.items() if slot == backward.of) \
        if seed is not None or np.result_type(output).kind != "f" else ""
    if np.result_type(output).kind != "f":
        raise InputError(f"{of!r} is {np.result_type(output)}: only float values have gradients")
    if seed is None:
        return np.ones_like(output)
    seed = np.asarray(seed, dtype=np.result_type(output))
    if seed.shape != np.shape(output):
        raise InputError(f"seed has shape {seed.shape}, {of!r} has {np.shape(output)}")
    return seed


def _collect_outputs(plan: Plan, values: list[Any]) -> dict[str, np.ndarray]:
    return {name: np.asarray(values[slot]) for name, slot in plan.outputs}
