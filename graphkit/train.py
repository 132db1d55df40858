"""Training: minibatch gradient descent on a graph's parameters (its trainable constants).

A graph's constants are baked into its compiled plan, so training compiles, once, a copy of
the graph in which each parameter is an *input*: every step feeds the current parameter arrays
with the batch and asks for the gradients of the loss with respect to them. The parameters are
plain numpy arrays that the optimiser updates in place; `with_parameters` puts them back into
the graph as constants. Nothing here prints: `fit` reports progress through a callback.
"""

from __future__ import annotations

import json
import math
import os
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np

from graphkit.errors import ExecutionError, FormatError, GraphkitError, InputError
from graphkit.execute import execute, plan_for
from graphkit.graph import validate
from graphkit.io.atomic import write_atomic
from graphkit.io.npz import read_npz
from graphkit.model import FLOAT_DTYPES, Constant, Graph, Tensor, ValueInfo
from graphkit.optim import SGD, Optimizer
from graphkit.registry import Registry

__all__ = [
    "History", "Objective", "StepInfo", "TrainingInterrupted", "fit", "load_data",
    "minibatches", "parameters", "plot_history", "prepare_data", "require_matplotlib",
    "with_parameters",
]

Data = Mapping[str, Any]


# -- parameters ----------------------------------------------------------------------------


def trainable_constants(graph: Graph) -> list[Constant]:
    """The graph's parameters; a trainable constant that is not a float cannot be trained."""
    found = [c for c in graph.constants if c.trainable]
    for constant in found:
        if constant.dtype not in FLOAT_DTYPES:
            raise InputError(
                f"graph {graph.name!r}: constant {constant.name!r} is trainable but "
                f"{constant.dtype}; only float constants can be trained"
            )
    if not found:
        raise InputError(
            f"graph {graph.name!r} has no trainable constants to train: mark its parameters "
            'with "trainable": true (GraphBuilder.parameter does)'
        )
    return found


def parameters(graph: Graph) -> dict[str, np.ndarray]:
    """The graph's parameters as new writable arrays, by name: what an optimiser updates."""
    return {c.name: c.to_numpy() for c in trainable_constants(graph)}


def with_parameters(graph: Graph, params: Mapping[str, Any]) -> Graph:
    """The same graph with the named trainable constants' values replaced by `params`."""
    known = {c.name: c for c in graph.constants if c.trainable}
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise InputError(
            f"graph {graph.name!r} has no trainable constant {', '.join(map(repr, unknown))}"
        )
    constants = []
    for constant in graph.constants:
        if constant.name not in params:
            constants.append(constant)
            continue
        value = np.asarray(params[constant.name])
        if list(value.shape) != list(constant.shape):
            raise InputError(
                f"parameter {constant.name!r} has shape {value.shape}, the graph's constant "
                f"{tuple(constant.shape)}"
            )
        tensor = Tensor.from_numpy(value, dtype=constant.dtype)
        constants.append(Constant(name=constant.name, trainable=True,
                                  **tensor.model_dump(exclude_none=True)))
    return graph.model_copy(update={"constants": constants})


class Objective:
    """A graph's loss as a function of (parameters, batch): validated and compiled once.

    `objective(params, batch)` returns the loss (a float) and its gradient with respect to
    every parameter, each of the parameter's shape and dtype.
    """

    def __init__(self, graph: Graph, loss: str, registry: Registry | None = None) -> None:
        outputs = [info.name for info in graph.outputs]
        if loss not in outputs:
            raise InputError(
                f"graph {graph.name!r} has no output {loss!r} to use as the loss "
                f"(outputs: {', '.join(outputs)})"
            )
        shape = validate(graph, registry).shapes.get(loss)  # errors in the graph's own terms
        if shape is not None and tuple(shape) != ():
            raise InputError(_not_scalar(graph.name, loss, shape))
        trainable = trainable_constants(graph)
        self.graph = graph
        self.loss = loss
        self.parameter_names = tuple(c.name for c in trainable)
        self.data_inputs = tuple(info.name for info in graph.inputs)
        lifted = Graph(
            name=graph.name,
            inputs=[*graph.inputs,
                    *(ValueInfo(name=c.name, dtype=c.dtype, shape=list(c.shape))
                      for c in trainable)],
            outputs=graph.outputs,
            constants=[c for c in graph.constants if not c.trainable],
            nodes=graph.nodes,
        )
        self._lifted = lifted  # kept alive: the plan cache holds it weakly
        self._plan = plan_for(lifted, registry)

    def __call__(
        self, params: Mapping[str, np.ndarray], batch: Mapping[str, Any]
    ) -> tuple[float, dict[str, np.ndarray]]:
        result = execute(self._plan, {**batch, **params}, wrt=self.parameter_names, of=self.loss)
        value = result.outputs[self.loss]
        if value.ndim != 0:
            raise InputError(_not_scalar(self.graph.name, self.loss, value.shape))
        return float(value), result.gradients

    def outputs(self, params: Mapping[str, np.ndarray], batch: Mapping[str, Any]
                ) -> dict[str, np.ndarray]:
        """Every output of the graph at these parameters (forward only): predictions."""
        return execute(self._plan, {**batch, **params}).outputs


def _not_scalar(graph: str, loss: str, shape: Any) -> str:
    return (f"graph {graph!r}: loss {loss!r} has shape {_shown(shape)}, but training needs a "
            "scalar loss (reduce it, e.g. with Mean)")


def _shown(shape: Any) -> str:
    """(N, 64): a shape with symbolic dims, as the docs write it."""
    dims = tuple(shape)
    return "(" + ", ".join(map(str, dims)) + ("," if len(dims) == 1 else "") + ")"


# -- data ----------------------------------------------------------------------------------


def load_data(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The named arrays of an .npz archive (numpy.savez; nothing is unpickled), or of a .json
    object of name -> number or nested list (handy for small examples). Errors name the file."""
    suffix = Path(path).suffix.lower()
    if suffix == ".json":
        arrays = _load_json(path)
    elif suffix == ".npz":
        arrays = _load_npz(path)
    else:
        raise FormatError(
            f"{path}: unknown data file type {suffix or '(no extension)'}; use .npz (or .json)"
        )
    if not arrays:
        raise FormatError(f"{path}: holds no arrays")
    for name, array in arrays.items():
        if array.dtype.kind not in "biuf":
            raise FormatError(f"{path}: array {name!r} has dtype {array.dtype}, not numbers")
    return arrays


def _load_npz(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    return read_npz(path, FormatError, "data file")


def _load_json(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FormatError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise FormatError(f"{path}: is a folder, not a data file") from None
    except UnicodeDecodeError:
        raise FormatError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise FormatError(
            f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except (OSError, RecursionError) as exc:
        raise FormatError(f"{path}: cannot read: {exc}") from None
    if not isinstance(document, dict):
        raise FormatError(
            f"{path}: expected a JSON object of name -> array, got {type(document).__name__}"
        )
    arrays = {}
    for name, value in document.items():
        try:
            array = np.asarray(value)
        except (ValueError, OverflowError):
            raise FormatError(
                f"{path}: array {name!r} is not rectangular (every row the same length)"
            ) from None
        if array.dtype.kind == "O":
            raise FormatError(f"{path}: array {name!r} must hold only numbers")
        arrays[name] = array
    return arrays


def prepare_data(
    graph: Graph, data: Data, source: str = "data"
) -> tuple[dict[str, np.ndarray], int]:
    """The arrays matched to the graph's inputs by name, converted to their dtypes, and the
    number of samples (the size of every array's first axis). Errors name `source`."""
    inputs = {info.name: info for info in graph.inputs}
    missing = [name for name in inputs if name not in data]
    if missing:
        raise InputError(
            f"{source}: no array for graph input {', '.join(map(repr, missing))} of graph "
            f"{graph.name!r} (arrays: {', '.join(data) or 'none'})"
        )
    extra = [name for name in data if name not in inputs]
    if extra:
        raise InputError(
            f"{source}: array {', '.join(map(repr, extra))} matches no input of graph "
            f"{graph.name!r} (inputs: {', '.join(inputs) or 'none'})"
        )
    arrays: dict[str, np.ndarray] = {}
    count: int | None = None
    first = ""
    for name, info in inputs.items():
        array = _as_input(source, info, data[name])
        if count is None:
            count, first = len(array), name
        elif len(array) != count:
            raise InputError(
                f"{source}: array {name!r} has {len(array)} samples (first axis), "
                f"array {first!r} has {count}"
            )
        arrays[name] = array
    if count is None:
        raise InputError(f"{source}: graph {graph.name!r} has no inputs to feed data to")
    if count == 0:
        raise InputError(f"{source}: the arrays hold no samples (first axis of size 0)")
    return arrays, count


def _as_input(source: str, info: ValueInfo, value: Any) -> np.ndarray:
    """One array, checked against its input's declaration: a sample axis first, then the
    declared dims (a symbolic dim other than the first may take any size here; the run checks
    that it agrees across inputs), converted once to the declared dtype."""
    where = f"{source}: array {info.name!r}"
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: not an array of numbers: {exc}") from None
    if array.dtype.kind not in "biuf":
        raise InputError(f"{where} has dtype {array.dtype}, not numbers")
    if array.ndim == 0:
        raise InputError(f"{where} is a single number: it needs a first axis of samples")
    if info.shape is not None:
        shape = tuple(info.shape)
        shown = _shown(shape)
        if not shape or not isinstance(shape[0], str):
            raise InputError(
                f"{where}: graph input {info.name!r} has shape {shown}, whose first dimension "
                'is not symbolic; declare it e.g. ["N", ...] to train on minibatches'
            )
        if array.ndim != len(shape) or any(
            isinstance(d, int) and d != size for d, size in zip(shape, array.shape, strict=True)
        ):
            raise InputError(
                f"{where} has shape {array.shape}, the graph input needs {shown}"
            )
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise InputError(f"{where} holds NaN or infinite values")
    if info.dtype is not None:
        if info.dtype not in FLOAT_DTYPES and array.dtype.kind == "f":
            if not np.all(np.mod(array, 1) == 0):
                raise InputError(
                    f"{where} holds non-integer values, the graph input is {info.dtype}"
                )
        array = array.astype(info.dtype, copy=False)
    return array


def minibatches(
    data: Mapping[str, np.ndarray], batch_size: int, rng: np.random.Generator
) -> Iterator[dict[str, np.ndarray]]:
    """One epoch: the samples shuffled by `rng`, cut into batches; the last may be smaller."""
    count = len(next(iter(data.values())))
    order = rng.permutation(count)
    for start in range(0, count, batch_size):
        index = order[start:start + batch_size]
        yield {name: array[index] for name, array in data.items()}


# -- the loop ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepInfo:
    """What `fit` tells its callback after each completed step (epochs and steps from 1)."""

    epoch: int
    epochs: int
    step: int
    steps_per_epoch: int
    global_step: int
    loss: float
    """The loss of this step's batch."""
    running_loss: float
    """The mean loss per sample over this epoch so far."""

    @property
    def epoch_done(self) -> bool:
        return self.step == self.steps_per_epoch


@dataclass
class History:
    """The losses of a training run: per step, and the mean per sample of each full epoch."""

    steps_per_epoch: int
    samples: int
    losses: list[float] = field(default_factory=list)
    epoch_losses: list[float] = field(default_factory=list)

    @property
    def steps(self) -> int:
        return len(self.losses)

    @property
    def epochs(self) -> int:
        """Completed epochs."""
        return len(self.epoch_losses)


class TrainingInterrupted(KeyboardInterrupt):  # noqa: N818 - it is a KeyboardInterrupt
    """Ctrl-C during `fit`: carries the graph with the parameters of the last completed step.

    Uncaught, it stops the program like any KeyboardInterrupt; catch it to keep the work.
    """

    def __init__(self, graph: Graph, history: History) -> None:
        super().__init__(f"training interrupted after {history.steps} steps")
        self.graph = graph
        self.history = history


Callback = Callable[[StepInfo], Any]


def fit(
    graph: Graph,
    data: Data | str | os.PathLike[str],
    loss: str,
    optimizer: Optimizer | None = None,
    epochs: int = 10,
    batch_size: int = 32,
    seed: int = 0,
    callback: Callback | None = None,
    registry: Registry | None = None,
) -> tuple[Graph, History]:
    """Train the graph's parameters to lower its output `loss` on `data`; return the trained
    graph and the history of losses.

    `data` maps each graph input to an array whose first axis holds the samples (or is the
    path of an .npz archive of them). Each epoch shuffles the samples with
    `numpy.random.default_rng(seed)`, so a seed gives the same trained graph bit for bit.
    `optimizer` defaults to `SGD(lr=0.01, momentum=0.9)`. `callback(StepInfo)` runs after
    each step. On Ctrl-C the parameters of the last completed step are kept and
    `TrainingInterrupted` is raised carrying them.
    """
    if isinstance(data, (str, os.PathLike)):
        source, data = str(data), load_data(data)
    else:
        source = "data"
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise InputError(f"epochs must be a whole number >= 0, got {epochs!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
    objective = Objective(graph, loss, registry)
    arrays, count = prepare_data(graph, data, source)
    optimizer = optimizer if optimizer is not None else SGD()
    rng = np.random.default_rng(seed)
    params = parameters(graph)
    per_epoch = -(-count // batch_size)
    history = History(steps_per_epoch=per_epoch, samples=count)
    guard = _DeferredInterrupt()
    guard.install()
    try:
        for epoch in range(1, epochs + 1):
            total = 0.0
            seen = 0
            for step, batch in enumerate(minibatches(arrays, batch_size, rng), start=1):
                try:
                    value, grads = objective(params, batch)
                except ExecutionError as exc:  # (e.g. labels out of range): name the data
                    raise ExecutionError(
                        f"{source}: epoch {epoch}, step {step}, a batch of arrays "
                        f"{', '.join(map(repr, batch))}: {exc}"
                    ) from None
                if not math.isfinite(value):
                    raise ExecutionError(
                        f"graph {graph.name!r}: loss {loss!r} became {value} at epoch "
                        f"{epoch}, step {step}: training diverged (try a smaller "
                        "learning rate)"
                    )
                with guard:  # a Ctrl-C now waits until every parameter is updated
                    optimizer.step(params, grads)
                size = len(next(iter(batch.values())))
                total += value * size
                seen += size
                history.losses.append(value)
                if step == per_epoch:
                    history.epoch_losses.append(total / seen)
                if callback is not None:
                    callback(StepInfo(epoch, epochs, step, per_epoch, history.steps,
                                      value, total / seen))
    except KeyboardInterrupt as exc:
        if isinstance(exc, TrainingInterrupted):
            raise
        raise TrainingInterrupted(with_parameters(graph, params), history) from None
    finally:
        guard.restore()
    return with_parameters(graph, params), history


class _DeferredInterrupt:
    """While training, a Ctrl-C between parameter updates stops at once; one that arrives
    during an update (`with guard:`) is held until the update ends, so that no parameter is
    left half-updated. Installed only on the main thread, over Python's default handler."""

    def __init__(self) -> None:
        self.busy = False
        self.pending = False
        self._previous: Any = None

    def install(self) -> None:
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._previous = signal.signal(signal.SIGINT, self._handle)

    def restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def __enter__(self) -> None:
        self.busy = True

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        self.busy = False
        if self.pending:
            self.pending = False
            if kind is None:
                raise KeyboardInterrupt

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.busy:
            self.pending = True
            return
        raise KeyboardInterrupt


# -- the loss curve ------------------------------------------------------------------------


PLOT_EXTRA = "pip install 'graphkit-backprop[plot]'"


def require_matplotlib() -> None:
    """Fail at once, naming the extra to install, when a loss curve cannot be drawn."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise GraphkitError(f"writing a loss curve needs matplotlib: {PLOT_EXTRA}")


def plot_history(history: History, path: str | os.PathLike[str], title: str = "") -> None:
    """Write the loss curve as a PNG (atomically): each step's loss, and each epoch's mean.

    Uses matplotlib's Agg renderer directly, so it neither needs a display nor changes the
    pyplot backend of the calling program.
    """
    require_matplotlib()
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.0), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    per_epoch = max(history.steps_per_epoch, 1)
    x = np.arange(1, history.steps + 1) / per_epoch
    axes.plot(x, history.losses, linewidth=0.8, alpha=0.5, label="batch loss")
    if history.epoch_losses:
        epochs = np.arange(1, history.epochs + 1)
        axes.plot(epochs, history.epoch_losses, marker="o", label="epoch mean")
    axes.set_xlabel("epoch")
    axes.set_ylabel("loss")
    if history.losses and min(history.losses) > 0:
        axes.set_yscale("log")
    if title:
        axes.set_title(title)
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    write_atomic(Path(path), buffer.getvalue())
