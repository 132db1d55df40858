"""Forward pass and backpropagation over a compiled plan.

Forward: steps in order; a value is dropped once no later step reads it. With gradients, each
step between the requested values and the output also puts on a tape what its rule reads
(inputs and/or output; the rest as shape-only `Meta`). Backward: the tape in reverse; each rule
turns the upstream gradient into one gradient per input; gradients that meet at a value add.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from graphkit.codegen import Compiled, compile_run
from graphkit.errors import ExecutionError, GraphkitError, InputError
from graphkit.gcpause import gc_paused
from graphkit.graph import ResolvedGraph, validate
from graphkit.model import FLOAT_DTYPES, Graph
from graphkit.opdef import Meta
from graphkit.ops.prims import sum_to
from graphkit.plan import (
    SAVE_INPUTS,
    SAVE_OUTPUTS,
    SAVE_RESIDUAL,
    BackwardPlan,
    Plan,
    Step,
    check_shape,
    coerce_input,
    compile_plan,
)
from graphkit.registry import Registry, default_registry
from graphkit.tape import light, outputs_of, upstream, with_residual


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
        compiled = _compiled(plan, None, None)
        if compiled is not None:
            _run_compiled(plan, compiled, values, None)
        else:
            start = time.perf_counter()
            _forward(plan, values)
            _interpreted(plan, None, None, time.perf_counter() - start)
        return Result(_collect_outputs(plan, values))
    key = (of, wrt if isinstance(wrt, str) else tuple(wrt))
    backward = plan._backward.get(key)
    if backward is None:
        of_name = _choose_output(plan, of)
        backward = plan.backward_plan(of_name, _wrt_names(plan, wrt))
        plan._backward[key] = backward
    seeds: list[Any] = []

    def first_gradient(output: Any) -> Any:
        seeds.append(_seed(plan, backward, output, seed))
        return seeds[-1]

    compiled = _compiled(plan, key, backward)
    if compiled is not None:
        totals = _run_compiled(plan, compiled, values, first_gradient)
    else:
        start = time.perf_counter()
        with gc_paused() if len(plan.steps) > PAUSE_GC_STEPS else nullcontext():
            tape = _forward(plan, values, backward)
            totals = _backward(plan, backward, tape, first_gradient(values[backward.of]))
        _interpreted(plan, key, backward, time.perf_counter() - start)
    return Result(_collect_outputs(plan, values),
                  _gradients(backward, totals, values, seeds[0]))


PAUSE_GC_STEPS = 10_000
"""Runs of bigger plans pause the cyclic garbage collector: their tape holds a tuple per step,
none of them garbage, and full collections would traverse them all again and again."""

COMPILE = os.environ.get("GRAPHKIT_COMPILE", "auto")
"""When runs use a plan's generated code (codegen.py): "auto" once the plan is hot (see
`_interpreted`), "always" from the first run, "never" (always the interpreter)."""

COMPILE_SECONDS_PER_STEP = 2e-4
"""About what generating and compiling one step's code costs (codegen.py; measured: 0.15-0.25
ms per step of a scalar chain)."""

COMPILE_MAX_STEPS = 20_000
"""Bigger programs stay interpreted: compiling a huge function is slow and memory-hungry, and
per step the interpreter's overhead is small next to loading and planning such a graph."""


def _compiled(plan: Plan, key: Any, backward: BackwardPlan | None) -> Compiled | None:
    """The program's generated code, if it is compiled (or must be: GRAPHKIT_COMPILE=always)."""
    state = plan._compiled.get(key)
    if type(state) is Compiled:
        return state
    return _compile(plan, key, backward) if COMPILE == "always" else None


def _interpreted(plan: Plan, key: Any, backward: BackwardPlan | None, seconds: float) -> None:
    """Count an interpreted run's time; compile the program once the time spent interpreting
    it reaches what compiling would cost (the ski-rental rule: never more than twice the
    better of the two choices made in hindsight). A plan run a few times, from the CLI or a
    check, never pays for compiling; a training loop soon runs compiled code."""
    steps = len(plan.steps)
    with _counting:  # threads sharing a plan: never overwrite compiled code with a count
        state = plan._compiled.get(key, 0.0)
        if type(state) is not float:
            return
        spent = state + seconds
        plan._compiled[key] = spent
        if COMPILE != "auto" or steps > COMPILE_MAX_STEPS or \
                spent < COMPILE_SECONDS_PER_STEP * steps:
            return
        plan._compiled[key] = _COMPILING  # one thread compiles; others keep interpreting
    try:
        _compile(plan, key, backward)
    except Exception as exc:  # pragma: no cover - a codegen bug must not fail a user's run
        warnings.warn(f"graphkit: plan {plan.name!r} stays interpreted, compiling it failed: "
                      f"{exc}", RuntimeWarning, stacklevel=3)


_counting = threading.Lock()
_COMPILING = "compiling"


def _compile(plan: Plan, key: Any, backward: BackwardPlan | None) -> Compiled:
    compiled = plan._compiled[key] = compile_run(
        plan, backward,
        lambda position, index, grad, arg: _conform(plan, plan.steps[position], grad, arg, index),
        lambda position, local, count: _check_count(plan, plan.steps[position], local, count),
    )
    return compiled


def _run_compiled(
    plan: Plan, compiled: Compiled, values: list[Any], seed: Callable[[Any], Any] | None
) -> list[Any]:
    try:
        return compiled.run(values, seed)
    except GraphkitError:
        raise
    except Exception as exc:
        failed = compiled.failed_step(exc.__traceback__)
        if failed is None:
            raise
        position, phase, args = failed
        raise _node_error(plan, plan.steps[position], args, phase, exc) from exc


def _start(plan: Plan, inputs: Mapping[str, Any]) -> list[Any]:
    """The run's values: inputs coerced to their declared dtype and shape, and constants."""
    if inputs.keys() != plan.input_names:
        _check_names(plan, inputs)
    values = plan.start.copy()
    bound: dict[str, int] = {}
    scalars = plan.scalar_inputs
    for info, slot in plan.inputs:
        value = inputs[info.name]
        kind = scalars.get(slot)
        if kind is not None and (type(value) is float or type(value) is int
                                 or type(value) is kind):
            try:
                values[slot] = kind(value)  # a Python number into a declared 0-d float input
                continue
            except OverflowError:  # an int beyond float range: the full coercion says so
                pass
        if type(value) is np.ndarray and value.ndim and value.dtype is plan.input_dtypes[slot]:
            check_shape(info, value, bound)  # already what was declared: no coercion
            values[slot] = value
            continue
        value = coerce_input(info, value, bound)
        values[slot] = value[()] if value.ndim == 0 else value  # scalars: numpy's fast path
    return values


def _check_names(plan: Plan, inputs: Mapping[str, Any]) -> None:
    expected = plan.input_names
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


def _forward(
    plan: Plan, values: list[Any], backward: BackwardPlan | None = None
) -> list[tuple[Any, ...]]:
    """Run every step; return the tape of (step position, saved inputs, saved output,
    residual: what forward_saving returned beside the output, else None)."""
    tape: list[tuple[Any, ...]] = []
    record_step = tape.append
    program = plan.program if backward is None else backward.program
    position = -1
    args: list[Any] = []
    try:
        for position, (forward, ins, out, multi, frees, record) in enumerate(program):
            args = [values[i] for i in ins]
            result = forward(*args)
            residual = None
            if record >= SAVE_RESIDUAL:
                result, residual = with_residual(result)
            if multi:
                result = outputs_of(result, len(out))
                for slot, value in zip(out, result, strict=True):
                    values[slot] = value
            else:
                values[out] = result
            if record:
                record_step((
                    position,
                    args if record & SAVE_INPUTS else [light(a) for a in args],
                    result if record & SAVE_OUTPUTS else _light_result(result, multi),
                    residual,
                ))
            for slot in frees:
                values[slot] = None
    except GraphkitError:
        raise
    except Exception as exc:
        raise _node_error(plan, plan.steps[position], tuple(args), "forward", exc) from exc
    return tape


def _light_result(result: Any, multi: bool) -> Any:
    return tuple(light(r) for r in result) if multi else light(result)


def _backward(
    plan: Plan, backward: BackwardPlan, tape: list[tuple[Any, ...]], seed: Any
) -> list[Any]:
    """Run the tape in reverse; the total gradient of each wrt value (None: no path)."""
    grads: list[Any] = [None] * len(plan.slots)
    grads[backward.of] = seed
    keep = {slot for _name, slot in backward.wrt}
    reverse = backward.reverse
    position, args = -1, []
    try:
        for position, args, saved_out, residual in reversed(tape):
            vjp, vjps, ins, out, multi, want, gets_residual = reverse[position]
            if multi:
                up = upstream(tuple(grads[s] for s in out), saved_out)
                if up is None:
                    continue
            else:
                up = grads[out]
                if up is None:
                    continue
                if out not in keep:
                    grads[out] = None
            if vjps is not None:
                for index, rule in enumerate(vjps):
                    if want[index] and rule is not None:
                        grad = rule(up, saved_out, *args, residual=residual) \
                            if gets_residual else rule(up, saved_out, *args)
                        if grad is not None:
                            _add(plan, position, grads, ins[index], grad, args[index], index)
            elif vjp is not None:
                local = vjp(up, saved_out, *args, residual=residual) \
                    if gets_residual else vjp(up, saved_out, *args)
                if local is None:
                    continue
                if type(local) is not tuple or len(local) != len(args):
                    _check_count(plan, plan.steps[position], local, len(args))
                for index, grad in enumerate(local):
                    if want[index] and grad is not None:
                        _add(plan, position, grads, ins[index], grad, args[index], index)
    except GraphkitError:
        raise
    except Exception as exc:
        raise _node_error(plan, plan.steps[position], tuple(args), "backward", exc) from exc
    return [grads[slot] for _name, slot in backward.wrt]


def _gradients(
    backward: BackwardPlan, totals: list[Any], values: list[Any], seed: Any
) -> dict[str, np.ndarray]:
    """The wrt values' gradients as arrays: zeros where no path reached, never two aliases."""
    result = {}
    handed_out = {id(seed)}
    for (name, slot), grad in zip(backward.wrt, totals, strict=True):
        if grad is None:  # the value does not reach the output
            grad = np.zeros_like(values[slot])
        if grad.__class__ is not np.ndarray:
            grad = np.asarray(grad)
        if id(grad) in handed_out:  # e.g. Add passes one array to both inputs: no aliasing
            grad = grad.copy()
        handed_out.add(id(grad))
        result[name] = grad
    return result


def _add(
    plan: Plan, position: int, grads: list[Any], slot: int, grad: Any, arg: Any, index: int
) -> None:
    """Add one gradient contribution to a value's total (fan-out adds), after checking it."""
    if type(grad) is not np.ndarray and not isinstance(grad, np.generic):
        grad = np.asarray(grad)  # a number or list from a plugin's rule
    try:
        same = grad.shape == arg.shape and grad.dtype == arg.dtype
    except AttributeError:  # the input is a Python number from a plugin's rule
        same = False
    if not same:
        grad = _conform(plan, plan.steps[position], grad, arg, index)
    previous = grads[slot]
    grads[slot] = grad if previous is None else previous + grad


def _check_count(plan: Plan, step: Step, local: Any, count: int) -> None:
    expected = f"{count} gradient{'' if count == 1 else 's'} (one per input)"
    if not isinstance(local, (tuple, list)):
        raise ExecutionError(
            _where(plan, step) + f": vjp returned a {type(local).__name__}, expected a tuple of "
            + expected
        )
    if len(local) != count:
        raise ExecutionError(
            _where(plan, step) + f": vjp returned {len(local)} gradients, expected " + expected
        )


def _conform(plan: Plan, step: Step, grad: Any, arg: Any, index: int) -> Any:
    """The gradient in its input's shape (broadcasting undone) and dtype, or an error."""
    if grad.__class__ is np.ndarray and arg.__class__ in _SHAPED and grad.dtype is arg.dtype \
            and grad.shape[1:] == arg.shape and grad.ndim == len(arg.shape) + 1:
        return np.add.reduce(grad, axis=0)  # a bias's: broadcast over the batch axis
    if not isinstance(grad, (np.ndarray, np.generic)):  # a number or list from a plugin's rule
        grad = np.asarray(grad)
    shape, dtype = grad.shape, grad.dtype
    want = arg if hasattr(arg, "dtype") else Meta(np.shape(arg), np.result_type(arg))
    if shape != want.shape:
        lead = len(shape) - len(want.shape)
        if lead > 0 and shape[lead:] == want.shape:  # broadcast over leading axes (a bias)
            grad = np.add.reduce(grad, axis=tuple(range(lead)))
        elif _squeezed(shape) == _squeezed(want.shape):  # only axes of size 1 differ
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


_SHAPED = (np.ndarray, Meta)


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


def _seed(plan: Plan, backward: BackwardPlan, output: Any, seed: Any) -> Any:
    """The first upstream gradient: ones like the output, or the caller's seed checked."""
    if seed is None and output.__class__ in FLOAT_SCALARS:
        return output.__class__(1)
    kind = np.result_type(output).kind
    of = next(name for name, slot in plan.slots.items() if slot == backward.of) \
        if seed is not None or kind != "f" else ""
    if kind != "f":
        raise InputError(f"{of!r} is {np.result_type(output)}: only float values have gradients")
    if seed is None:
        return np.ones_like(output)
    seed = np.asarray(seed, dtype=np.result_type(output))
    if seed.shape != np.shape(output):
        raise InputError(f"seed has shape {seed.shape}, {of!r} has {np.shape(output)}")
    return seed


FLOAT_SCALARS = frozenset({np.float16, np.float32, np.float64})


def _collect_outputs(plan: Plan, values: list[Any]) -> dict[str, np.ndarray]:
    return {name: np.asarray(values[slot]) for name, slot in plan.outputs}
