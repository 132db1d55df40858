"""`OpDef`: everything graphkit knows about one gate, supplied by the plugin that owns it."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from pydantic import BaseModel, ConfigDict

PLUGIN_API_VERSION = 1
"""The rule contract below. An OpDef written for another version is refused."""

SAVES = frozenset({"inputs", "outputs"})

Shape = tuple[int | str | None, ...] | None
"""A shape as validation sees it: dims may be symbolic (str) or unknown (None); None: any rank."""


class NoAttributes(BaseModel):
    """The attribute model of ops that take none."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Meta(NamedTuple):
    """Stands in for a value a gradient rule does not keep: its shape and dtype only."""

    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


@dataclass(frozen=True)
class OpDef:
    """A gate: forward rule and local-gradient rule side by side, plus what the checks need.

    forward(*inputs, **attributes) -> output (a tuple when num_outputs > 1)
    vjp(upstream, output, *inputs, **attributes) -> one gradient per input (None: none flows)

    `vjp` may instead be a tuple with one rule per input, each returning that input's gradient
    (None for an input that has none): then only the gradients a run needs are computed, e.g.
    MatMul skips dX when only the weights' gradients are wanted.

    Rules receive numpy arrays, and numpy scalars (np.float64, np.float32, ...) for 0-d values,
    which have the same arithmetic, shape and dtype but are much faster for scalar graphs.

    `saves` says which of output/inputs `vjp` reads; the others reach it as `Meta` (shape and
    dtype only), so a run with gradients keeps nothing a rule does not need. Rules return
    gradients in the broadcast shape; the executor sums them back to each input's shape.

    forward_saving(*inputs, **attributes) -> (output, residual), optional: the forward rule of
    runs that backpropagate through the node, returning also what the vjp would otherwise
    recompute (the cross-entropy's probabilities). Its output must equal `forward`'s; the
    residual (anything) reaches the vjp (each rule, for a tuple) as the keyword `residual`,
    is kept until the node's backward step, and must not be modified.
    """

    name: str
    forward: Callable[..., Any]
    vjp: Callable[..., Any] | tuple[Callable[..., Any] | None, ...] | None = None
    domain: str = ""
    version: int = 1
    num_inputs: int = 1
    variadic: bool = False
    """Takes `num_inputs` or more inputs (Concat); its vjp is then one rule for all of them."""
    num_outputs: int = 1
    attributes: type[BaseModel] = NoAttributes
    saves: frozenset[str] = SAVES
    forward_saving: Callable[..., tuple[Any, Any]] | None = None
    infer: Callable[..., list[Shape]] | None = None
    sample: Callable[[np.random.Generator], tuple[list[np.ndarray], dict[str, Any]]] | None = None
    onnx: Any = None
    doc: str = ""
    api_version: int = PLUGIN_API_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.domain, self.name, self.version)

    @property
    def qualname(self) -> str:
        prefix = f"{self.domain}::" if self.domain else ""
        return f"{prefix}{self.name}@{self.version}"

    def accepts(self, count: int) -> bool:
        """Whether a node may give this op `count` inputs."""
        return count >= self.num_inputs if self.variadic else count == self.num_inputs

    @property
    def arity(self) -> str:
        noun = "input" if self.num_inputs == 1 and not self.variadic else "inputs"
        return f"{self.num_inputs}{' or more' if self.variadic else ''} {noun}"

    def api_problem(self) -> str:
        """Why an OpDef written for another plugin API version is refused, and what to do."""
        advice = "upgrade graphkit-backprop" if isinstance(self.api_version, int) \
            and self.api_version > PLUGIN_API_VERSION else "update the plugin"
        return (f"written for plugin API version {self.api_version!r}, but this graphkit "
                f"provides version {PLUGIN_API_VERSION} ({advice})")

    def problems(self) -> list[str]:
        """Why this OpDef cannot be registered (empty when it can)."""
        found = []
        if not isinstance(self.name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.name):
            found.append(f"name {self.name!r} is not an identifier")
        if not isinstance(self.domain, str) or not re.fullmatch(r"[A-Za-z0-9_.\-]*", self.domain):
            found.append(f"domain {self.domain!r} is not a dotted name")
        if not isinstance(self.version, int) or self.version < 1:
            found.append(f"version {self.version!r} is not a positive integer")
        if self.api_version != PLUGIN_API_VERSION:
            found.append(self.api_problem())
        if not callable(self.forward):
            found.append("forward is not callable")
        if self.forward_saving is not None:
            if not callable(self.forward_saving):
                found.append("forward_saving is not callable")
            if self.vjp is None:
                found.append("forward_saving is set but vjp is None: nothing reads a residual")
        if isinstance(self.vjp, tuple):
            if self.variadic:
                found.append("a variadic op's vjp must be one rule, not a tuple")
            elif len(self.vjp) != self.num_inputs:
                found.append(f"vjp has {len(self.vjp)} rules for {self.num_inputs} inputs")
            if not all(rule is None or callable(rule) for rule in self.vjp):
                found.append("a vjp rule is not callable")
        elif self.vjp is not None and not callable(self.vjp):
            found.append("vjp is not callable")
        if not isinstance(self.num_inputs, int) or self.num_inputs < 0:
            found.append(f"num_inputs {self.num_inputs!r} is not a count")
        if not isinstance(self.num_outputs, int) or self.num_outputs < 1:
            found.append(f"num_outputs {self.num_outputs!r} is not a positive count")
        if not (isinstance(self.attributes, type) and issubclass(self.attributes, BaseModel)):
            found.append("attributes is not a pydantic model class")
        if not (isinstance(self.saves, frozenset) and self.saves <= SAVES):
            found.append(f"saves {self.saves!r} is not a subset of {sorted(SAVES)}")
        return found
