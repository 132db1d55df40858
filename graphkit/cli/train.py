"""`graphkit train`: minibatch training of a graph's parameters, with progress and Ctrl-C.

The loop is `graphkit.train.fit`; this module only shows its progress (a rich progress bar in
a terminal, one line per epoch elsewhere, both on stderr), writes the trained graph, the
optional loss curve and a summary, and turns Ctrl-C into "save what is trained, exit 130".
"""

from __future__ import annotations

import time
from pathlib import Path

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

import graphkit
from graphkit.cli import output
from graphkit.cli.inputs import graph_argument, load_graph
from graphkit.errors import GraphkitError
from graphkit.io import FORMATS
from graphkit.io.atomic import check_writable
from graphkit.optim import DEFAULT_LR, make_optimizer
from graphkit.train import (
    History,
    StepInfo,
    TrainingInterrupted,
    fit,
    plot_history,
    require_matplotlib,
)

INTERRUPTED = 130
"""The exit code after Ctrl-C (128 + SIGINT), as a shell reports an interrupted program."""


def _check_output(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if Path(value).suffix.lower() not in FORMATS:
        raise click.BadParameter(
            f"{value!r} does not end in {' or '.join(sorted(FORMATS))}: this command writes "
            "the trained graph", ctx=ctx, param=param,
        )
    return value


def _check_plot(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and Path(value).suffix.lower() != ".png":
        raise click.BadParameter(f"{value!r} does not end in .png: the loss curve is a PNG image",
                                 ctx=ctx, param=param)
    return value


@click.command("train", short_help="Train a graph's parameters on data (SGD or Adam).")
@graph_argument
@click.option("--data", "data", required=True, metavar="DATA.npz",
              help="The training data: an .npz archive (numpy.savez) with one array per graph "
              "input, named like it, samples along the first axis (a .json object works too).")
@click.option("--loss", required=True, metavar="NAME",
              help="The graph output to minimise: a scalar, e.g. a mean loss over the batch.")
@click.option("-o", "--output", "out", required=True, metavar="TRAINED.json",
              callback=_check_output,
              help="Where to write the trained graph (.json or .onnx; written atomically).")
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True,
              metavar="N", help="Passes over the data.")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True,
              metavar="B", help="Samples per step; the last batch of an epoch may be smaller.")
@click.option("--optimizer", type=click.Choice(["sgd", "adam"]), default="sgd",
              show_default=True, help="SGD with momentum, or Adam.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), metavar="LR",
              help=f"Learning rate. Default: {DEFAULT_LR['sgd']} for sgd, "
              f"{DEFAULT_LR['adam']} for adam.")
@click.option("--momentum", type=click.FloatRange(min=0, max=1, max_open=True), default=0.9,
              show_default=True, metavar="M", help="SGD's momentum (0: plain SGD).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, metavar="S",
              help="Seed of the shuffling: the same seed gives the same trained file.")
@click.option("--plot", metavar="CURVE.png", callback=_check_plot,
              help="Also write the loss curve as a PNG (needs matplotlib: "
              "pip install 'graphkit-backprop[plot]').")
@click.option("--quiet", "-q", is_flag=True, help="No progress, only the summary.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object (the summary) and no progress.")
@click.pass_context
def train_command(
    ctx: click.Context, graph: str, data: str, loss: str, out: str, epochs: int,
    batch_size: int, optimizer: str, lr: float | None, momentum: float, seed: int,
    plot: str | None, quiet: bool, as_json: bool,
) -> None:
    """Train the parameters of GRAPH (its constants marked trainable) to minimise the output
    --loss on the arrays of --data, and write the trained graph to TRAINED.json.

    Each epoch shuffles the samples (with --seed: the same seed gives the same file, bit for
    bit) and takes one optimiser step per batch. Progress, with the running loss of the
    epoch, goes to stderr: a progress bar in a terminal, one line per epoch otherwise. Ctrl-C
    stops after the current step, writes the parameters trained so far and exits 130.

    \b
    Examples:
      graphkit train examples/two_layer_net.json --data examples/two_layer_net.inputs.json --loss loss -o trained.json
      graphkit train examples/two_layer_net.json --data examples/two_layer_net.inputs.json --loss loss --optimizer adam --lr 0.01 --epochs 50 -o trained.json --json
    """  # noqa: E501 - examples stay on one line so they can be copied
    source = ctx.get_parameter_source("momentum")
    if optimizer != "sgd" and source is not click.core.ParameterSource.DEFAULT:
        raise click.UsageError("--momentum applies to --optimizer sgd only")
    for path in (out, plot):
        if path is not None:
            _check_writable(path)
    if plot is not None:
        require_matplotlib()
    model = load_graph(graph)
    chosen = make_optimizer(optimizer, lr, momentum)
    shown = _Shown(epochs, mode="off" if quiet or as_json else None)
    started = time.perf_counter()
    interrupted = False
    try:
        trained, history = fit(model, data, loss, chosen, epochs=epochs, batch_size=batch_size,
                               seed=seed, callback=shown.step,
                               registry=graphkit.default_registry())
    except TrainingInterrupted as stop:
        trained, history, interrupted = stop.graph, stop.history, True
    except GraphkitError as exc:
        message = str(exc)
        if message.startswith((f"{graph}:", f"{data}:")):
            raise
        raise GraphkitError(f"{graph}: {message}") from exc
    finally:
        shown.close()
    seconds = time.perf_counter() - started
    written = history.steps > 0
    if written:
        graphkit.save(trained, out)
        if plot is not None:
            plot_history(history, plot, title=f"{model.name}: {loss}")
    if as_json:
        _print_json(out, plot, history, seconds, interrupted)
    elif interrupted:
        where = (f"after {output.count(history.steps, 'step')} "
                 f"({history.epochs} of {output.count(epochs, 'epoch')} done)")
        click.echo(f"interrupted {where}: " + (
            f"wrote the parameters of step {history.steps} to {out}" if written
            else f"nothing trained, {out} not written"), err=True)
    else:
        click.echo(_summary(model.name, chosen.describe(), history, batch_size, seed, seconds))
        click.echo(f"wrote {out}" + (f" and the loss curve {plot}" if plot else ""))
    if interrupted:
        ctx.exit(INTERRUPTED)


def _print_json(path: str, plot: str | None, history: History, seconds: float,
                interrupted: bool) -> None:
    """The summary as one JSON object, for scripts (`output` null when nothing was written)."""
    written = history.steps > 0
    output.print_json({
        "output": path if written else None,
        "plot": plot if written else None,
        "epochs": history.epochs,
        "steps": history.steps,
        "samples": history.samples,
        "loss": history.epoch_losses[-1] if history.epoch_losses else None,
        "epoch_losses": history.epoch_losses,
        "seconds": round(seconds, 3),
        "interrupted": interrupted,
    })


def _summary(name: str, optimizer: str, history: History, batch_size: int, seed: int,
             seconds: float) -> str:
    first, last = history.epoch_losses[0], history.epoch_losses[-1]
    return (
        f"trained {name}: {output.count(history.epochs, 'epoch')}, "
        f"{output.count(history.steps, 'step')} of batch {batch_size} on "
        f"{output.count(history.samples, 'sample')} ({optimizer}, seed {seed}) in "
        f"{seconds:.2f} s\n"
        f"loss {output.number(first)} (epoch 1) -> {output.number(last)} (epoch {history.epochs})"
    )


def _check_writable(path: str) -> None:
    """Fail before training, not after it, when a file cannot be written where asked."""
    check_writable(path)


class _Shown:
    """Progress on stderr: a live bar in a terminal, else one line per epoch, or nothing."""

    def __init__(self, epochs: int, mode: str | None) -> None:
        self.console = Console(stderr=True, highlight=False)
        if mode is None:
            mode = "bar" if self.console.is_terminal else "lines"
        self.mode = mode
        self.epochs = epochs
        self.progress: Progress | None = None
        self.task: TaskID | None = None

    def step(self, info: StepInfo) -> None:
        if self.mode == "lines":
            if info.epoch_done:
                click.echo(f"epoch {info.epoch}/{info.epochs}: loss "
                           f"{output.number(info.running_loss)}", err=True)
        elif self.mode == "bar":
            self._bar(info)

    def _bar(self, info: StepInfo) -> None:
        if self.progress is None:
            self.progress = Progress(
                TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("steps  loss {task.fields[loss]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=self.console,
            )
            self.progress.start()
            self.task = self.progress.add_task(
                "train", total=info.steps_per_epoch * info.epochs, epoch=info.epoch,
                epochs=info.epochs, loss="-",
            )
        assert self.task is not None
        self.progress.update(self.task, completed=info.global_step, epoch=info.epoch,
                             loss=output.number(info.running_loss))

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

