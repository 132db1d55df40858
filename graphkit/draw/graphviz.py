"""Turning DOT into SVG or PNG with Graphviz's `dot` program, the one outside dependency.

DOT needs nothing installed; pictures need `dot` on PATH. Without it, asking for one is a
DrawError that says which package to install, so the CLI prints one useful line.
"""

from __future__ import annotations

import shutil
import subprocess
import warnings

from graphkit.errors import GraphkitError

FORMATS = ("svg", "png")
"""What `dot` renders for us; DOT itself is the third format and needs no program."""

INSTALL_HINT = ("Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz; "
                "writing .dot needs nothing")

PNG_DPI = 144
"""Sharp enough to read small wire labels on a laptop screen or a slide."""


class DrawError(GraphkitError):
    """A drawing cannot be made: Graphviz's `dot` is missing or failed, or a format is unknown."""


def dot_program() -> str | None:
    """The path of `dot`, or None when Graphviz is not installed."""
    return shutil.which("dot")


def require_dot(format: str) -> str:
    """The `dot` that will draw `format`, or a DrawError saying what to install: callers with
    work to do first (running a graph) check before they start."""
    if format not in FORMATS:
        raise DrawError(f"cannot draw {format!r}: Graphviz draws {' or '.join(FORMATS)} here "
                        "(and DOT is written as it is)")
    program = dot_program()
    if program is None:
        raise DrawError(f"{format.upper()} needs Graphviz's dot program, which is not "
                        f"installed ({INSTALL_HINT})")
    return program


def render_dot(source: str, format: str) -> bytes:
    """`source` laid out and drawn by Graphviz as `format` ("svg" or "png")."""
    program = require_dot(format)
    command = [program, f"-T{format}"]
    if format == "png":
        command.append(f"-Gdpi={PNG_DPI}")
    try:
        done = subprocess.run(command, input=source.encode("utf-8"), capture_output=True,
                              check=False)
    except OSError as exc:
        raise DrawError(f"cannot run {program}: {exc.strerror or exc}") from None
    messages = [line.strip() for line in done.stderr.decode("utf-8", "replace").splitlines()
                if line.strip()]
    if done.returncode != 0:
        detail = "; ".join(messages) or f"exit code {done.returncode}"
        raise DrawError(f"Graphviz's dot failed to draw {format.upper()}: {detail}")
    for message in messages:  # e.g. a drawing too big for the bitmap, scaled down
        warnings.warn(f"dot: {message}", stacklevel=2)
    return done.stdout
