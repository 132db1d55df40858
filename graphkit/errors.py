"""The one error family graphkit raises; the CLI turns any of them into `error: ...` and exit 1."""

from __future__ import annotations


class GraphkitError(Exception):
    """Base of every error graphkit raises on bad input."""


class FormatError(GraphkitError):
    """A file or document is not a valid graphkit graph (malformed, wrong version, too big)."""


class GraphValidationError(GraphkitError):
    """A graph breaks one or more rules; `problems` lists every one, each naming its node."""

    def __init__(self, graph_name: str, problems: list[str]) -> None:
        self.graph_name = graph_name
        self.problems = list(problems)
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"graph {graph_name!r} has {count} {noun}: " + "; ".join(self.problems))


class PluginError(GraphkitError):
    """A plugin failed to load or register, or registered an op that clashes or is invalid."""


class ExecutionError(GraphkitError):
    """A node failed while running; the message names the node, its op and the shapes."""


class InputError(GraphkitError):
    """Inputs given to a run do not match what the graph declares."""
