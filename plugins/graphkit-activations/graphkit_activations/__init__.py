"""graphkit-activations: activation gates beyond the lecture's built-ins, as a graphkit plugin.

Swish (and SiLU), GELU (tanh form), Mish, Softplus (PyTorch's beta and threshold) and the
lecture's Maxout, in the ONNX domain `ai.graphkit.activations`, version 1. Each has a forward
rule, a local-gradient rule (VJP) that keeps only the inputs, shape inference, a sample for the
gradient checks, and an ONNX mapping whose body is written with graphkit's built-in ops, so an
exported model runs in any ONNX runtime as a model-local function.

Installed, the entry point `activations` (group `graphkit`) registers them; in a script:

    registry = graphkit.builtin_registry()
    registry.register_plugin(graphkit_activations, name="activations")
"""

from __future__ import annotations

from collections.abc import Callable

from graphkit import hookimpl
from graphkit.opdef import OpDef

from graphkit_activations._common import DOMAIN, VERSION
from graphkit_activations.gelu import GELU
from graphkit_activations.maxout import MAXOUT
from graphkit_activations.mish import MISH
from graphkit_activations.softplus import SOFTPLUS
from graphkit_activations.swish import SILU, SWISH

__all__ = ["DOMAIN", "OPS", "VERSION", "graphkit_register_ops"]

OPS: list[OpDef] = [SWISH, SILU, GELU, MISH, SOFTPLUS, MAXOUT]


@hookimpl
def graphkit_register_ops(register: Callable[[OpDef], None]) -> None:
    for op in OPS:
        register(op)
