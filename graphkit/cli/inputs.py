"""What commands are given: the graph file, input values (--input/--inputs) and gradient options.

Values are checked here only for being numbers or rectangular nested lists, so that a bad one
is reported with the option or file it came from; dtypes and shapes are the library's business.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
import numpy as np

import graphkit
from graphkit.errors import GraphkitError, InputError
from graphkit.io.npz import read_npz
from graphkit.model import FLOAT_DTYPES, Graph

F = TypeVar("F", bound=Callable[..., Any])

INPUTS_SUFFIX = ".inputs.json"
"""`GRAPH.json` (or `GRAPH.onnx`) reads its inputs from `GRAPH.inputs.json` beside it when
--inputs is not given."""


def graph_argument(function: F) -> F:
    """The GRAPH argument: a plain string, so a missing file is an `error:` (exit 1), not usage."""
    return click.argument("graph", metavar="GRAPH")(function)


def input_options(function: F) -> F:
    """--input and --inputs, shared by `execute` and `gradcheck`."""
    function = click.option(
        "--inputs", "inputs_file", metavar="FILE",
        help="Input values from a .json object (name -> number or nested list) or an .npz file. "
        "Default: GRAPH's sibling NAME.inputs.json, if there is one.",
    )(function)
    return click.option(
        "--input", "-i", "pairs", metavar="NAME=VALUE", multiple=True,
        help="One input value: a number or a JSON array, e.g. 'x=[1,2]'. Repeatable; "
        "overrides --inputs.",
    )(function)


def gradient_options(function: F) -> F:
    """--wrt and --of, shared by `execute` and `gradcheck`."""
    function = click.option(
        "--of", metavar="OUTPUT",
        help="The output to differentiate (needed when the graph has several).",
    )(function)
    return click.option(
        "--wrt", metavar="NAME", multiple=True,
        help="A value to take the gradient for: input, constant or intermediate. Repeatable. "
        "Default: every float input and every trainable constant.",
    )(function)


def output_option(suffix: str, writes: str, instead: str) -> Callable[[F], F]:
    """-o/--output, required, whose extension must be `suffix`; otherwise a usage error (exit 2)
    that says what the command writes and which command does what was perhaps meant."""

    def check(ctx: click.Context, param: click.Parameter, value: str) -> str:
        if Path(value).suffix.lower() != suffix:
            raise click.BadParameter(
                f"{value!r} does not end in {suffix}: this command writes {writes} ({instead})",
                ctx=ctx, param=param,
            )
        return value

    return click.option(
        "-o", "--output", required=True, metavar=f"OUT{suffix}", callback=check,
        help=f"The {writes} file to write (replaced if it exists; written atomically).",
    )


def load_graph(path: str) -> Graph:
    """Read a graph; the extension chooses the format and errors already name the file."""
    return graphkit.load(path)


@contextmanager
def blaming(path: str) -> Iterator[None]:
    """Prefix library errors with the graph file, so every message says which file is at fault."""
    try:
        yield
    except GraphkitError as exc:
        message = str(exc)
        if message.startswith(f"{path}:"):
            raise
        raise GraphkitError(f"{path}: {message}") from exc


def parameters(graph: Graph) -> list[str]:
    """What --grad differentiates by default: float inputs and trainable float constants.

    Unlike the library's wrt="all", fixed constants (the sigmoid neuron's -1 and 1) are left out.
    """
    names = [i.name for i in graph.inputs if i.dtype is None or i.dtype in FLOAT_DTYPES]
    names += [c.name for c in graph.constants if c.trainable and c.dtype in FLOAT_DTYPES]
    return names


def collect_inputs(graph_path: str, pairs: tuple[str, ...], inputs_file: str | None) -> dict:
    """The run's inputs: the --inputs file (or the sibling default), then each --input on top."""
    values: dict[str, Any] = {}
    if inputs_file is None:
        sibling = default_inputs_file(graph_path)
        if sibling is not None:
            inputs_file = str(sibling)
    if inputs_file is not None:
        values.update(read_inputs_file(inputs_file))
    for pair in pairs:
        name, value = parse_pair(pair)
        values[name] = value
    return values


def default_inputs_file(graph_path: str) -> Path | None:
    """`examples/add_mul.json` (or `.onnx`) -> `examples/add_mul.inputs.json`, if it exists."""
    path = Path(graph_path)
    if path.suffix.lower() not in (".json", ".onnx") or path.name.endswith(INPUTS_SUFFIX):
        return None
    sibling = path.with_name(path.name[: -len(path.suffix)] + INPUTS_SUFFIX)
    return sibling if sibling.is_file() else None


def parse_pair(pair: str) -> tuple[str, Any]:
    """`NAME=VALUE` -> (name, number or nested list); the error quotes the whole option."""
    name, sep, text = pair.partition("=")
    name = name.strip()
    if not sep or not name:
        raise InputError(f"--input {pair!r}: expected NAME=VALUE, e.g. x=3 or 'x=[1,2]'")
    try:
        value = json.loads(text)
    except ValueError:
        raise InputError(
            f"--input {pair!r}: {text!r} is not a number or a JSON array"
        ) from None
    problem = _value_problem(value)
    if problem:
        raise InputError(f"--input {pair!r}: {problem}")
    return name, value


def read_inputs_file(path: str) -> dict[str, Any]:
    """A .json object or an .npz archive of named values; any problem names the file."""
    suffix = Path(path).suffix.lower()
    if suffix == ".npz":
        return _read_npz(path)
    if suffix != ".json":
        raise InputError(
            f"{path}: unknown inputs file type {suffix or '(no extension)'}; use .json or .npz"
        )
    text = _read_text(path)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    if not isinstance(document, dict):
        raise InputError(
            f"{path}: expected a JSON object of name -> value, got {type(document).__name__}"
        )
    for name, value in document.items():
        problem = _value_problem(value)
        if problem:
            raise InputError(f"{path}: input {name!r}: {problem}")
    return document


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not an inputs file") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _read_npz(path: str) -> dict[str, np.ndarray]:
    """Arrays keep their dtype; nothing is unpickled (allow_pickle=False)."""
    arrays = read_npz(path, InputError, "inputs file")
    for name, array in arrays.items():
        if array.dtype.kind not in "biuf":
            raise InputError(f"{path}: input {name!r} has dtype {array.dtype}, not numbers")
    return arrays


def _value_problem(value: Any) -> str | None:
    """Why a JSON value cannot be an input (None when it can): numbers and rectangular lists."""
    if isinstance(value, bool | int | float):
        return None
    if not isinstance(value, list):
        kind = "null" if value is None else type(value).__name__
        return f"a value must be a number or a (nested) array of numbers, not {kind}"
    try:
        array = np.asarray(value)
    except (ValueError, OverflowError):
        return "a nested array must be rectangular (every row the same length)"
    if array.dtype.kind not in "biuf":
        return "a nested array must hold only numbers"
    return None
