"""Run the benchmarks and print one table: workload, graphkit, reference, ratio, target, met.

    python -m benchmarks.run                  (or: make bench)
    python -m benchmarks.run --only scale     (groups: net, scalar, onnx, scale, memory, startup)
    python -m benchmarks.run --quick          (scale stops at 100,000 nodes; fewer rounds)

Exits 1 when a target is missed (or a measurement could not be made). Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable

from benchmarks import machine, memory, net, onnx_forward, scalar, scale, startup
from benchmarks.table import Row, render
from benchmarks.timing import progress

GROUPS: dict[str, Callable[[bool, int], list[Row]]] = {
    "net": net.rows,  # 1. the 2-layer net step against numpy
    "scalar": scalar.rows,  # 2, 3. the sigmoid neuron and the scalar chain against micrograd
    "onnx": onnx_forward.rows,  # 4. the 2-layer net forward against onnxruntime
    "scale": scale.rows,  # 5. time per node from 1,000 to 1,000,000 nodes
    "memory": memory.rows,  # 6. what a run holds at its peak
    "startup": startup.rows,  # recorded: `graphkit execute` in a new process
}


def _groups(values: list[str]) -> list[str]:
    chosen = [name.strip() for value in values for name in value.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in GROUPS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown group {', '.join(unknown)} (groups: {', '.join(GROUPS)})")
    return [name for name in GROUPS if name in chosen] if chosen else list(GROUPS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=[], metavar="GROUP[,GROUP]",
                        help=f"run only these groups ({', '.join(GROUPS)}); repeatable")
    parser.add_argument("--quick", action="store_true",
                        help="smaller sizes (scale up to 100,000 nodes) and fewer rounds")
    parser.add_argument("--rounds", type=int, default=None,
                        help="interleaved rounds per comparison (default 15, quick 5)")
    args = parser.parse_args(argv)
    try:
        groups = _groups(args.only)
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    rounds = args.rounds or (5 if args.quick else 15)
    print("graphkit benchmarks" + (" (--quick)" if args.quick else ""))
    for line in machine.describe():
        print(line)
    start = time.perf_counter()
    rows: list[Row] = []
    for name in groups:
        progress(f"== {name}")
        began = time.perf_counter()
        try:
            rows += GROUPS[name](args.quick, rounds)
        except Exception as exc:  # noqa: BLE001 - one failing group must not hide the others
            traceback.print_exc()
            rows.append(Row(f"{name}: error", None, target=1, failed=True,
                            note=f"{type(exc).__name__}: {exc}"[:200]))
        progress(f"== {name}: {time.perf_counter() - began:.0f} s")
    print(render(rows))
    missed = sum(row.met == "NO" for row in rows)
    met = sum(row.met == "yes" for row in rows)
    print(f"{met} targets met, {missed} missed; {time.perf_counter() - start:.0f} s")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
