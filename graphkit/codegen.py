"""A hot plan as one generated Python function: values in local variables, one line per step.

The interpreter in execute.py pays, per step, for unpacking a program tuple, a list of
arguments, a tape entry and a loop over frees; per gradient, for a call that checks and adds
it. For a scalar graph that bookkeeping costs several times the arithmetic. The function
generated here runs the same rules in the same order with the same checks (so its results
are bitwise those of the interpreter) but keeps every value, tape entry and gradient in a
local variable and checks a gradient inline. It costs about 10-30 us per step to compile,
so execute.py compiles a plan only once it has proved hot (see `COMPILE_AFTER`).

A failure inside the function is mapped back to its step through the line it happened on,
and the failing step's arguments are read from the function's frame, so errors name the
node exactly as the interpreter's do.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import numpy as np

from graphkit.plan import SAVE_INPUTS, SAVE_OUTPUTS, SAVE_RESIDUAL, BackwardPlan, Plan
from graphkit.registry import BUILTIN_PLUGIN
from graphkit.tape import light, outputs_of, upstream, with_residual

SCALAR_TYPES = frozenset(t for t in np.sctypeDict.values()
                         if isinstance(t, type) and issubclass(t, np.generic) and t is not np.void)
"""numpy scalar classes whose class alone fixes the dtype (and the shape, ())."""

NUMPY_TYPES = SCALAR_TYPES | {np.ndarray}
"""Results kept as they are; a plugin's other results become numpy (`_normalised`)."""

_serial = itertools.count()


@dataclass(frozen=True)
class Compiled:
    """A generated run function and the map from its lines back to the plan's steps."""

    run: Callable[..., list[Any]]
    filename: str
    lines: dict[int, tuple[int, str, tuple[str, ...]]]
    """Line number -> (step position, "forward" or "backward", the step's argument locals)."""

    def failed_step(self, tb: TracebackType | None) -> tuple[int, str, tuple[Any, ...]] | None:
        """(position, phase, arguments) of the step a traceback went through, if any."""
        found = None
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == self.filename:
                found = tb
            tb = tb.tb_next
        if found is None or found.tb_lineno not in self.lines:
            return None
        position, phase, names = self.lines[found.tb_lineno]
        local = found.tb_frame.f_locals
        return position, phase, tuple(local.get(name) for name in names)


def _normalised(value: Any) -> Any:
    """A plugin's result as numpy (a 0-d one as a numpy scalar), so inline checks can read
    `.shape` and `.dtype` of every value."""
    if type(value) in NUMPY_TYPES:
        return value
    array = np.asarray(value)
    return array[()] if array.ndim == 0 else array


def _unpacked(result: Any, count: int, normalise: bool) -> tuple[Any, ...]:
    result = outputs_of(result, count)
    return tuple(_normalised(r) for r in result) if normalise else result


class _Writer:
    """Collects source lines, remembering which step each belongs to."""

    def __init__(self) -> None:
        self.source: list[str] = []
        self.lines: dict[int, tuple[int, str, tuple[str, ...]]] = {}
        self.light: set[str] = set()
        """Tape locals holding `light(value)`: a Meta, or a small numpy value itself."""

    def emit(self, text: str, step: tuple[int, str, tuple[str, ...]] | None = None) -> None:
        self.source.append(text)
        if step is not None:
            self.lines[len(self.source)] = step


def compile_run(
    plan: Plan,
    backward: BackwardPlan | None,
    conform: Callable[[int, int, Any, Any], Any],
    check_count: Callable[[int, Any, int], None],
) -> Compiled:
    """Generate `run(values, seed) -> gradients` for the forward-only program (backward None)
    or for a backward plan's forward and backward passes.

    `values` holds the inputs and constants in their slots; the run writes back the values
    execute reads afterwards (outputs, the differentiated output, the wrt values). `seed(out)`
    turns the output into the first upstream gradient. `conform(position, index, grad, arg)`
    and `check_count(position, local, count)` are execute's checks, called only when a
    gradient fails the inline check.
    """
    program = plan.program if backward is None else backward.program
    namespace: dict[str, Any] = {
        "light": light, "norm": _normalised, "unpack": _unpacked, "up": upstream,
        "split": with_residual,
        "SCALARS": SCALAR_TYPES, "ND": np.ndarray, "conform": conform, "count": check_count,
    }
    w = _Writer()
    w.emit("def run(values, seed):")
    produced = {s for _f, _i, out, multi, _fr, _r in program
                for s in (out if multi else (out,))}
    for slot in sorted(set(plan.slots.values()) - produced):
        w.emit(f"    v{slot} = values[{slot}]")
    held = _held(plan, program)
    for position, (forward, ins, out, multi, frees, record) in enumerate(program):
        namespace[f"f{position}"] = forward
        plugin_made = plan.resolved.plugins[plan.steps[position].node] != BUILTIN_PLUGIN
        args = ", ".join(f"v{i}" for i in ins)
        where = (position, "forward", tuple(f"v{i}" for i in ins))
        call = f"f{position}({args})"
        if record >= SAVE_RESIDUAL:  # forward_saving: (output, residual)
            w.emit(f"    t, r{position} = split({call})", where)
            call = "t"
        if multi:
            targets = "".join(f"v{s}, " for s in out)
            w.emit(f"    {targets}= unpack({call}, {len(out)}, {plugin_made})", where)
        elif plugin_made:
            w.emit(f"    v{out} = norm({call})", where)
        else:
            w.emit(f"    v{out} = {call}", where)
        if record:
            keep_in = record & SAVE_INPUTS
            for k, slot in enumerate(ins):
                kept = keep_in or slot in held
                w.emit(f"    a{position}_{k} = " + (f"v{slot}" if kept else f"light(v{slot})"),
                       where)
                if not kept:
                    w.light.add(f"a{position}_{k}")
            outs = out if multi else (out,)
            saved = [f"v{s}" if record & SAVE_OUTPUTS or s in held else f"light(v{s})"
                     for s in outs]
            w.emit(f"    y{position} = " + (f"({', '.join(saved)},)" if multi else saved[0]),
                   where)
        if frees:
            w.emit("    " + " = ".join(f"v{s}" for s in frees) + " = None")
    written = {s for _n, s in plan.outputs}
    if backward is not None:
        written |= {backward.of} | {s for _n, s in backward.wrt}
    for slot in sorted(written):
        w.emit(f"    values[{slot}] = v{slot}")
    if backward is None:
        w.emit("    return None")
    else:
        _emit_backward(w, plan, backward, namespace)
    filename = f"<graphkit plan {next(_serial)}: {plan.name}>"
    code = compile("\n".join(w.source) + "\n", filename, "exec")
    exec(code, namespace)  # noqa: S102 - our own generated source, from the plan's structure
    return Compiled(namespace["run"], filename, w.lines)


def _held(plan: Plan, program: list[tuple[Any, ...]]) -> set[int]:
    """Slots the run holds anyway: inputs, constants and values a rule saves whole. A step
    whose rule reads only the shape of such a value gets the value itself, which costs no
    memory and saves making its `Meta`."""
    held = {slot for _info, slot in plan.inputs} | {slot for _n, slot, _a in plan.constants}
    for _forward, ins, out, multi, _frees, record in program:
        if record & SAVE_INPUTS:
            held.update(ins)
        if record & SAVE_OUTPUTS:
            held.update(out if multi else (out,))
    return held


def _emit_backward(
    w: _Writer, plan: Plan, backward: BackwardPlan, namespace: dict[str, Any]
) -> None:
    keep = {slot for _name, slot in backward.wrt}
    receivers = sorted({backward.of} | keep | {
        slot for r in backward.reverse.values()
        for slot in (*r[2], *(r[3] if r[4] else (r[3],)))
    })
    for chunk in range(0, len(receivers), 64):
        w.emit("    " + " = ".join(f"g{s}" for s in receivers[chunk:chunk + 64]) + " = None")
    w.emit(f"    g{backward.of} = seed(v{backward.of})")
    for position in sorted(backward.reverse, reverse=True):
        vjp, vjps, ins, out, multi, want, gets_residual = backward.reverse[position]
        tape = tuple(f"a{position}_{k}" for k in range(len(ins)))
        where = (position, "backward", tape)
        rule_args = ", ".join((f"y{position}", *tape))
        if gets_residual:
            rule_args += f", residual=r{position}"
            tape += (f"r{position}",)
        if multi:
            w.emit(f"    u = up(({''.join(f'g{s}, ' for s in out)}), y{position})", where)
        else:
            w.emit(f"    u = g{out}", where)
        w.emit("    if u is not None:", where)
        if not multi and out not in keep:
            w.emit(f"        g{out} = None", where)
        if vjps is not None:
            for index, rule in enumerate(vjps):
                if want[index] and rule is not None:
                    namespace[f"b{position}_{index}"] = rule
                    w.emit(f"        x = b{position}_{index}(u, {rule_args})", where)
                    _emit_add(w, position, index, ins[index], "        ", where)
        elif vjp is not None:
            namespace[f"b{position}"] = vjp
            w.emit(f"        t = b{position}(u, {rule_args})", where)
            w.emit("        if t is not None:", where)
            w.emit(f"            if t.__class__ is not tuple or len(t) != {len(ins)}: "
                   f"count({position}, t, {len(ins)})", where)
            for index in range(len(ins)):
                if want[index]:
                    w.emit(f"            x = t[{index}]", where)
                    _emit_add(w, position, index, ins[index], "            ", where)
        w.emit("    " + " = ".join((*tape, f"y{position}")) + " = None")
    w.emit("    return [" + ", ".join(f"g{slot}" for _name, slot in backward.wrt) + "]")


def _emit_add(
    w: _Writer, position: int, index: int, slot: int, indent: str,
    where: tuple[int, str, tuple[str, ...]],
) -> None:
    """Check one gradient against its input and add it to the total. Two numpy scalars of one
    class have one dtype and shape (), so for them one identity test is the whole check;
    arrays compare shape and dtype (with the input's `Meta` when the tape keeps only that);
    anything else goes to execute's `conform`."""
    arg = f"a{position}_{index}"
    mismatch = (f"(c is not ND or x.shape != {arg}.shape or x.dtype is not {arg}.dtype and "
                f"x.dtype != {arg}.dtype)")
    w.emit(f"{indent}if x is not None:", where)
    w.emit(f"{indent}    c = x.__class__", where)
    if arg in w.light:  # a Meta or a small numpy value: both have .shape and .dtype
        test = f"(c is not {arg}.__class__ or c not in SCALARS) and {mismatch}"
    else:
        test = f"c is not {arg}.__class__ or c not in SCALARS and {mismatch}"
    w.emit(f"{indent}    if {test}: x = conform({position}, {index}, x, {arg})", where)
    w.emit(f"{indent}    g{slot} = x if g{slot} is None else g{slot} + x", where)

