"""Compile a validated graph once into flat lists of (rule, slots); runs never look anything up.

Every value gets an integer slot. A forward step is (forward rule with its attributes bound,
input slots, output slot(s)); a backward plan, built per (output, wrt) pair and cached, lists
only the steps that lie between the requested values and the output.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from graphkit.errors import InputError
from graphkit.gcpause import gc_paused
from graphkit.graph import ResolvedGraph
from graphkit.liveness import last_uses
from graphkit.model import FLOAT_DTYPES, ValueInfo


class Step(NamedTuple):
    """One node, ready to run. `out` is a slot, or a tuple of slots for multi-output ops.

    `vjp` is one rule for all inputs, `vjps` one rule per input (exactly one of them is set,
    or neither for an op without gradients). A tuple: a plan of a million nodes makes a
    million of them, and a tuple is the cheapest record Python builds.
    """

    forward: Any
    vjp: Any
    vjps: tuple[Any, ...] | None
    ins: tuple[int, ...]
    out: Any
    node: int
    saves_inputs: bool
    saves_outputs: bool
    saving: Any = None
    """The forward rule that also returns a residual for the vjp (OpDef.forward_saving), bound."""


assert Step._fields == ("forward", "vjp", "vjps", "ins", "out", "node", "saves_inputs",
                        "saves_outputs", "saving"), "_compile builds Steps by position"


@dataclass(frozen=True, slots=True)
class BackwardPlan:
    """Which steps record what they need during the forward pass, and which inputs want grads."""

    of: int
    wrt: tuple[tuple[str, int], ...]
    record: frozenset[int]
    """Positions (in Plan.steps) of the steps the backward pass runs."""
    wants: dict[int, tuple[bool, ...]]
    """For each recorded step, whether each of its inputs needs a gradient."""
    free_after: tuple[tuple[int, ...], ...]
    """As Plan.free_after, but keeping the wrt values (a gradient takes their shape) and `of`."""
    program: list[tuple[Any, ...]] = field(default_factory=list)
    """The forward pass of this backward plan: (forward, ins, out, multi, frees, record)."""
    reverse: dict[int, tuple[Any, ...]] = field(default_factory=dict)
    """Per recorded step: (vjp, vjps, ins, out, multi, wants, gets a residual)."""


@dataclass
class Plan:
    """A graph compiled for running: build with `compile_plan`, run with `graphkit.execute`."""

    resolved: ResolvedGraph
    slots: Mapping[str, int]
    inputs: list[tuple[ValueInfo, int]]
    constants: list[tuple[str, int, np.ndarray]]
    steps: list[Step]
    outputs: list[tuple[str, int]]
    free_after: tuple[tuple[int, ...], ...]
    _backward: dict[Any, BackwardPlan] = field(default_factory=dict)
    program: list[tuple[Any, ...]] = field(default_factory=list)
    """The forward-only pass: (forward, ins, out, multi, frees, record=0) per step."""
    _compiled: dict[Any, Any] = field(default_factory=dict)
    """Per program (None: forward only; else execute's backward key): seconds spent running
    it interpreted, or its generated function once it is hot (execute._interpreted)."""

    input_names: frozenset[str] = frozenset()
    """The names `inputs` must have (derived)."""
    start: list[Any] = field(default_factory=list)
    """A run's first values (derived): constants in their slots (0-d ones as numpy scalars,
    which numpy computes with faster), None elsewhere."""
    input_dtypes: dict[int, np.dtype | None] = field(default_factory=dict)
    """Each input's declared dtype by slot (derived), None where none is declared: an array of
    exactly that dtype is taken as it is."""
    scalar_inputs: dict[int, type] = field(default_factory=dict)
    """Float inputs declared 0-d, or not declared at all (derived): slot -> numpy scalar type,
    so a Python number becomes the declared scalar in one call instead of a full coercion."""

    def __post_init__(self) -> None:
        if not self.program:
            self.program = _program(self.steps, self.free_after, {})
        self.input_names = frozenset(info.name for info, _slot in self.inputs)
        self.input_dtypes = {slot: None if info.dtype is None else np.dtype(info.dtype)
                             for info, slot in self.inputs}
        self.start = [None] * len(self.slots)
        for _name, slot, array in self.constants:
            self.start[slot] = array[()] if array.ndim == 0 else array
        self.scalar_inputs = {  # (an undeclared dtype means float64, as coerce_input says)
            slot: np.dtype(info.dtype or "float64").type for info, slot in self.inputs
            if (info.dtype is None or info.dtype in FLOAT_DTYPES)
            and (info.shape == [] or info.shape is None and info.dtype is None)
        }

    @property
    def name(self) -> str:
        return self.resolved.model.name

    def value_dtype(self, name: str) -> str | None:
        """The declared dtype of an input or constant (None for intermediates)."""
        for info, _slot in self.inputs:
            if info.name == name:
                return info.dtype
        for cname, _slot, array in self.constants:
            if cname == name:
                return str(array.dtype)
        return None

    def backward_plan(self, of: str, wrt: tuple[str, ...]) -> BackwardPlan:
        key = (of, wrt)
        cached = self._backward.get(key)
        if cached is None:
            with gc_paused():  # a big plan's sets and tuples are no garbage (gcpause.py)
                cached = self._backward[key] = self._build_backward(of, wrt)
        return cached

    def _between(self, of: str, wrt: tuple[str, ...]) -> tuple[bytearray, bytearray]:
        """Which steps (by position) and which values (by slot) lie on a path from a `wrt`
        value to `of`, as flags: one sweep down the steps marks what the wrt values reach,
        one sweep up what reaches `of`. Flags in bytearrays (a byte per slot) rather than sets
        of ints: a million-node graph's flags take 1 MB, not tens, and stay in cache."""
        steps, slots = self.steps, self.slots
        reached = bytearray(len(slots))
        for name in wrt:
            reached[slots[name]] = 1
        for step in steps:
            for slot in step.ins:
                if reached[slot]:
                    out = step.out
                    if type(out) is tuple:
                        for value in out:
                            reached[value] = 1
                    else:
                        reached[out] = 1
                    break
        needed = bytearray(len(slots))
        needed[slots[of]] = 1
        on_path = bytearray(len(steps))
        for position in range(len(steps) - 1, -1, -1):
            step = steps[position]
            out = step.out
            if needed[out] if type(out) is not tuple else any(needed[s] for s in out):
                ins = step.ins
                for slot in ins:
                    needed[slot] = 1
                for slot in ins:
                    if reached[slot]:
                        on_path[position] = 1
                        break
        both = np.frombuffer(reached, np.uint8) & np.frombuffer(needed, np.uint8)
        return on_path, bytearray(both.tobytes())

    def _build_backward(self, of: str, wrt: tuple[str, ...]) -> BackwardPlan:
        on_path, between = self._between(of, wrt)
        steps = self.steps
        wants: dict[int, tuple[bool, ...]] = {}
        for position in np.flatnonzero(np.frombuffer(on_path, np.uint8)).tolist():
            mask = tuple([between[slot] == 1 for slot in steps[position].ins])
            if True in mask:
                wants[position] = mask
        wrt_slots = {self.slots[name] for name in wrt} | {self.slots[of]}
        free_after = list(self.free_after)  # the wrt values and `of` are kept to the end
        for position, frees in enumerate(free_after):
            if frees and not wrt_slots.isdisjoint(frees):
                free_after[position] = tuple(s for s in frees if s not in wrt_slots)
        modes = {
            position: RECORD | (SAVE_INPUTS if steps[position].saves_inputs else 0)
            | (SAVE_OUTPUTS if steps[position].saves_outputs else 0)
            | (SAVE_RESIDUAL if steps[position].saving is not None else 0)
            for position in wants
        }
        reverse = {
            position: (step.vjp, step.vjps, step.ins, step.out, isinstance(step.out, tuple),
                       wants[position], step.saving is not None)
            for position in wants for step in (steps[position],)
        }
        return BackwardPlan(
            of=self.slots[of],
            wrt=tuple((name, self.slots[name]) for name in wrt),
            record=frozenset(wants),
            wants=wants,
            free_after=tuple(free_after),
            program=_program(steps, free_after, modes),
            reverse=reverse,
        )


RECORD, SAVE_INPUTS, SAVE_OUTPUTS, SAVE_RESIDUAL = 1, 2, 4, 8
"""Bits of a program step's `record`: put it on the tape, keeping its inputs, its output, the
residual its forward_saving returns (the highest bit: `record >= SAVE_RESIDUAL` tests it)."""


def _program(
    steps: list[Step], free_after: tuple[tuple[int, ...], ...], modes: dict[int, int]
) -> list[tuple[Any, ...]]:
    """The steps as flat tuples, so the run loop unpacks instead of looking attributes up."""
    program = []
    for position, step in enumerate(steps):
        mode = modes.get(position, 0)
        forward = step.saving if mode & SAVE_RESIDUAL else step.forward
        program.append((forward, step.ins, step.out, isinstance(step.out, tuple),
                        free_after[position], mode))
    return program


def _bind(rule: Any, attributes: dict[str, Any]) -> Any:
    """The rule with the node's attributes bound once, so runs pass only arrays."""
    if rule is None or not attributes:
        return rule
    return functools.partial(rule, **attributes)


def compile_plan(resolved: ResolvedGraph) -> Plan:
    """Turn a validated graph into a plan; done once per graph, reused by every run."""
    with gc_paused():  # millions of steps and tuples, none of them garbage (gcpause.py)
        return _compile(resolved)


def _compile(resolved: ResolvedGraph) -> Plan:
    model = resolved.model
    # validation's numbering when it made one (inputs, constants, then outputs in order):
    # shared, not copied (at a million names, copying a dict costs a tenth of the plan)
    slots: Mapping[str, int]
    if resolved.slots is not None:
        slots = resolved.slots
        slot = slots.__getitem__
    else:
        numbering: dict[str, int] = {}
        slots = numbering

        def slot(name: str) -> int:
            if name not in numbering:
                numbering[name] = len(numbering)
            return numbering[name]

    inputs = [(info, slot(info.name)) for info in model.inputs]
    constants = []
    for constant in model.constants:
        array = constant.to_numpy()
        array.flags.writeable = False
        constants.append((constant.name, slot(constant.name), array))
    steps: list[Step] = []
    append = steps.append
    known = slots.get
    unbound: dict[int, tuple[Any, ...]] = {}  # the rules of ops used without attributes
    nodes, ops, attributes = model.nodes, resolved.ops, resolved.attributes
    numbered = resolved.node_slots  # validation's slots: no name looked up again
    following = len(inputs) + len(constants)  # (numbered) the first output's slot
    # Steps built as the tuples they are: a NamedTuple's generated __new__ is a Python call
    # per step. The fields in Step's order (checked where Step is defined).
    new = tuple.__new__
    for index in resolved.order:
        op, bound = ops[index], attributes[index]
        if bound:
            rules = _rules(op, bound)
        else:
            rules = unbound.get(id(op))
            if rules is None:
                rules = unbound[id(op)] = _rules(op, {})
        forward, vjp, vjps, multi, saves_inputs, saves_outputs, saving = rules
        if numbered is not None:
            ins = numbered[index]
            if multi:
                count = len(nodes[index].outputs)
                out = tuple(range(following, following + count))
                following += count
            else:
                out = following
                following += 1
        else:
            node = nodes[index]
            ins = tuple([s if (s := known(v)) is not None else slot(v) for v in node.inputs])
            out = tuple([slot(v) for v in node.outputs]) if multi else slot(node.outputs[0])
        append(new(Step, (forward, vjp, vjps, ins, out, index, saves_inputs, saves_outputs,
                          saving)))
    outputs = [(info.name, slots[info.name]) for info in model.outputs]
    keep = {s for _n, s in outputs} | {s for _n, s, _a in constants}
    return Plan(
        resolved=resolved,
        slots=slots,
        inputs=inputs,
        constants=constants,
        steps=steps,
        outputs=outputs,
        free_after=last_uses(steps, keep, len(slots)),
    )


def _rules(op: Any, attributes: dict[str, Any]) -> tuple[Any, ...]:
    """An op's rules with a node's attributes bound: (forward, vjp, vjps, multi-output,
    saves inputs, saves outputs, forward_saving)."""
    forward = functools.partial(op.forward, **attributes) if attributes else op.forward
    vjp = vjps = None
    if isinstance(op.vjp, tuple):
        vjps = tuple(_bind(rule, attributes) for rule in op.vjp)
    elif op.vjp is not None:
        vjp = _bind(op.vjp, attributes)
    saving = None if op.vjp is None else _bind(op.forward_saving, attributes)
    return (forward, vjp, vjps, op.num_outputs > 1, "inputs" in op.saves,
            "outputs" in op.saves, saving)


def coerce_input(info: ValueInfo, value: Any, bound: dict[str, int]) -> np.ndarray:
    """An input value as an array of the declared dtype, checked against the declared shape."""
    try:
        if info.dtype is not None:
            array = np.asarray(value)
            if info.dtype not in FLOAT_DTYPES and array.dtype.kind == "f":
                if not np.all(np.mod(array, 1) == 0):
                    raise InputError(
                        f"input {info.name!r} is {info.dtype} but was given non-integer values"
                    )
            array = array.astype(info.dtype, copy=False)
        elif isinstance(value, np.ndarray):
            array = value
        else:
            array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"input {info.name!r}: {exc}") from None
    check_shape(info, array, bound)
    return array


def check_shape(info: ValueInfo, array: np.ndarray, bound: dict[str, int]) -> None:
    """That an input's array has the declared shape; `bound` holds the symbolic dims (N) seen
    so far in the run, which every input must agree on."""
    if info.shape is not None:
        if array.ndim != len(info.shape):
            raise InputError(
                f"input {info.name!r} must have shape {_show(info.shape)}, got {array.shape}"
            )
        for declared, actual in zip(info.shape, array.shape, strict=True):
            if isinstance(declared, int) and declared != actual:
                raise InputError(
                    f"input {info.name!r} must have shape {_show(info.shape)}, got {array.shape}"
                )
            if isinstance(declared, str):
                seen = bound.setdefault(declared, actual)
                if seen != actual:
                    raise InputError(
                        f"input {info.name!r} has {declared} = {actual}, "
                        f"but another input has {declared} = {seen}"
                    )


def _show(shape: list[Any]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
