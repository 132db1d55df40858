"""Start-up: `graphkit execute` on the lecture's sigmoid neuron, a new process each call.

Recorded, not a target: what a user waits for at the command line, against a process that only
imports numpy and pydantic (what every graphkit command needs before it can start).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.scalar import EXAMPLES
from benchmarks.table import Row
from benchmarks.timing import compare, progress

NEURON = EXAMPLES / "sigmoid_neuron.json"
EXPECTED_F = 0.7310585786300049  # sigmoid(1): the lecture's neuron at its inputs


def command() -> list[str]:
    """`graphkit execute` on the neuron with its gradients, as JSON, by the installed script."""
    script = Path(sys.executable).with_name("graphkit")
    return [str(script), "execute", str(NEURON), "--grad", "--json"]


def run_command() -> dict[str, object]:
    done = subprocess.run(command(), capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def imports_only() -> None:
    subprocess.run([sys.executable, "-c", "import numpy, pydantic"], check=True)


def rows(quick: bool, rounds: int) -> list[Row]:
    document = run_command()
    value = document["outputs"]["f"]  # type: ignore[index]
    if abs(value - EXPECTED_F) > 1e-9:
        raise AssertionError(f"graphkit execute gave f = {value}, expected {EXPECTED_F}")
    ours, reference = compare(run_command, imports_only, rounds, min_seconds=0.0)
    progress(f"startup: graphkit execute {ours:.3f} s, importing numpy and pydantic "
             f"{reference:.3f} s")
    return [Row("graphkit execute (sigmoid neuron, --grad), wall time", ours, reference,
                note="a new process per call; reference: python -c 'import numpy, pydantic'")]
