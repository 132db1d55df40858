"""graphkit: computational graphs as data, gates as plugins, backpropagation on numpy."""

from graphkit import optim, train
from graphkit.builder import GraphBuilder, Value
from graphkit.draw import DrawError, Drawing, render, to_dot
from graphkit.errors import (
    ExecutionError,
    FormatError,
    GraphkitError,
    GraphValidationError,
    InputError,
    PluginError,
)
from graphkit.execute import Result, execute, plan_for
from graphkit.gradcheck import GradcheckReport, check_op, check_op_at, gradcheck
from graphkit.graph import ResolvedGraph, from_nx, to_nx, validate
from graphkit.hookspecs import hookimpl
from graphkit.io import dumps, load, loads, save
from graphkit.model import Constant, Graph, Node, OpRef, Tensor, ValueInfo
from graphkit.opdef import PLUGIN_API_VERSION, Meta, NoAttributes, OpDef
from graphkit.optim import SGD, Adam
from graphkit.registry import (
    PluginInfo,
    Registry,
    builtin_registry,
    default_registry,
    load_registry,
    register_plugin,
)
from graphkit.train import TrainingInterrupted, fit

__all__ = [
    "PLUGIN_API_VERSION", "Constant", "ExecutionError", "FormatError", "GradcheckReport",
    "Graph", "GraphBuilder", "GraphValidationError", "GraphkitError", "InputError", "Meta",
    "NoAttributes", "Node", "OpDef", "OpRef", "PluginError", "PluginInfo", "Registry",
    "ResolvedGraph",
    "Result", "Tensor", "Value", "ValueInfo", "builtin_registry", "check_op", "check_op_at",
    "default_registry", "dumps", "execute", "load", "loads", "save", "from_nx", "gradcheck",
    "hookimpl", "load_registry", "register_plugin",
    "plan_for", "to_nx", "validate",
    "DrawError", "Drawing", "render", "to_dot",
    "Adam", "SGD", "TrainingInterrupted", "fit", "optim", "train",
]
