"""Load on `graphkit serve`'s Open Inference Protocol: infer throughput and p50/p99 latency.

    python -m benchmarks.service_load                  (10 s per workload, 8 connections)
    python -m benchmarks.service_load --seconds 3 --workers 2 --connections 16

A real server (`graphkit serve`, a SQLite store in a temporary folder) runs in its own
process; `wrk` (apt-get install wrk), a second process, posts one inference body over and over
for a fixed time per workload (benchmarks/service_load.lua). Every body is first posted once
and its answer checked against graphkit.execute run here. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import graphkit
from benchmarks import machine

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
LUA = Path(__file__).with_name("service_load.lua")
NEURON = {"w0": 2.0, "x0": -1.0, "w1": -3.0, "x1": -2.0, "w2": -3.0}


@dataclass
class Workload:
    """One request body posted again and again, and the local answer it must match."""

    name: str
    model: str
    body: bytes
    header_length: int | None
    expected: dict[str, np.ndarray]


def _json_tensor(name: str, value: np.ndarray) -> dict[str, Any]:
    datatype = {"float64": "FP64", "int64": "INT64"}[value.dtype.name]
    return {"name": name, "shape": list(value.shape), "datatype": datatype,
            "data": value.ravel().tolist()}


def _binary_body(inputs: dict[str, np.ndarray], parameters: dict[str, Any]) -> tuple[bytes, int]:
    header = {"inputs": [{**_json_tensor(n, v), "parameters": {"binary_data_size": v.nbytes}}
                         for n, v in inputs.items()],
              "parameters": {**parameters, "binary_data_output": True}}
    for tensor in header["inputs"]:
        del tensor["data"]
    head = json.dumps(header).encode()
    return head + b"".join(np.ascontiguousarray(v).tobytes() for v in inputs.values()), len(head)


def workloads() -> list[Workload]:
    neuron = graphkit.load(EXAMPLES / "sigmoid_neuron.json")
    net = graphkit.load(EXAMPLES / "two_layer_net.json")
    found: list[Workload] = []
    scalars = {k: np.array(v) for k, v in NEURON.items()}
    local = graphkit.execute(neuron, NEURON, wrt=list(NEURON))
    found.append(Workload("sigmoid neuron, forward (JSON)", "sigmoid_neuron", json.dumps(
        {"inputs": [_json_tensor(n, v) for n, v in scalars.items()]}).encode(), None,
        {"f": local.outputs["f"]}))
    found.append(Workload("sigmoid neuron + 5 gradients (JSON)", "sigmoid_neuron", json.dumps(
        {"inputs": [_json_tensor(n, v) for n, v in scalars.items()],
         "parameters": {"graphkit_gradients": ",".join(NEURON)}}).encode(), None,
        {"f": local.outputs["f"], **{f"grad:{k}": v for k, v in local.gradients.items()}}))
    rng = np.random.default_rng(0)
    for batch in (1, 64):
        inputs = {"X": rng.normal(size=(batch, 4)), "y": rng.integers(0, 3, size=batch)}
        forward = graphkit.execute(net, inputs)
        found.append(Workload(f"2-layer net, batch {batch}, forward (JSON)", "two_layer_net",
                              json.dumps({"inputs": [_json_tensor(n, v) for n, v in
                                                     inputs.items()]}).encode(), None,
                              {"loss": forward.outputs["loss"]}))
        wrt = ["W1", "b1", "W2", "b2"]
        trained = graphkit.execute(net, inputs, wrt=wrt)
        body, length = _binary_body(inputs, {"graphkit_gradients": ",".join(wrt)})
        found.append(Workload(f"2-layer net, batch {batch}, + 4 gradients (binary)",
                              "two_layer_net", body, length,
                              {"loss": trained.outputs["loss"],
                               **{f"grad:{k}": v for k, v in trained.gradients.items()}}))
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(folder: Path, workers: int) -> Iterator[str]:
    """`graphkit serve` on a fresh SQLite store holding the two lecture graphs; its base URL."""
    from graphkit.service.store import Store

    url = f"sqlite:///{folder / 'graphkit.db'}"
    with Store(url) as store:
        store.check_schema()
        for stem in ("sigmoid_neuron", "two_layer_net"):
            graph = graphkit.load(EXAMPLES / f"{stem}.json")
            canonical = graphkit.dumps(graph).encode()
            store.add_version(graph.name, canonical, hashlib.sha256(canonical).hexdigest(),
                              len(graph.nodes))
    port = _free_port()
    command = [sys.executable, "-m", "graphkit.cli.main", "serve",
               "--db", url, "--port", str(port), "--workers", str(workers),
               "--log-level", "warning"]
    process = subprocess.Popen(command, cwd=folder, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(base + "/v2/health/ready", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not start: {process.stderr.read()}") \
                        from None  # type: ignore[union-attr]
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def check(base: str, workload: Workload) -> None:
    """Post the body once: the answer must equal graphkit.execute's, bit for bit."""
    headers = {"Content-Type": "application/json"}
    if workload.header_length is not None:
        headers["Inference-Header-Content-Length"] = str(workload.header_length)
    request = urllib.request.Request(f"{base}/v2/models/{workload.model}/infer",
                                     data=workload.body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        content = response.read()
        length = response.headers.get("Inference-Header-Content-Length")
    head = json.loads(content[:int(length)] if length else content)
    offset = int(length) if length else 0
    for output in head["outputs"]:
        dtype = {"FP64": "<f8", "INT64": "<i8"}[output["datatype"]]
        if "data" in output:
            value = np.array(output["data"], dtype=dtype)
        else:
            size = output["parameters"]["binary_data_size"]
            value = np.frombuffer(content[offset:offset + size], dtype=dtype)
            offset += size
        expected = workload.expected[output["name"]]
        if not np.array_equal(value.reshape(expected.shape), expected):
            raise AssertionError(f"{workload.name}: {output['name']} differs from local run")
    if {o["name"] for o in head["outputs"]} != set(workload.expected):
        raise AssertionError(f"{workload.name}: outputs {[o['name'] for o in head['outputs']]}")


def load(base: str, workload: Workload, folder: Path, seconds: int, connections: int,
         threads: int) -> dict[str, Any]:
    """wrk's figures for one workload (requests/s, latency percentiles in ms)."""
    body = folder / "body.bin"
    body.write_bytes(workload.body)
    env = {**os.environ, "GRAPHKIT_BODY": str(body),
           "GRAPHKIT_HEADER_LENGTH": str(workload.header_length or "")}
    result = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
         "-s", str(LUA), f"{base}/v2/models/{workload.model}/infer"],
        env=env, capture_output=True, text=True, timeout=seconds + 60, check=True)
    line = next(text for text in result.stdout.splitlines() if text.startswith("{"))
    figures = json.loads(line)
    if figures["non_2xx"] or figures["socket_errors"]:
        raise AssertionError(f"{workload.name}: {figures['non_2xx']} non-2xx answers, "
                             f"{figures['socket_errors']} socket errors")
    return {"workload": workload.name, "requests": figures["requests"],
            "per_second": figures["requests"] / figures["seconds"],
            "p50_ms": figures["p50_us"] / 1000, "p99_ms": figures["p99_us"] / 1000}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="per workload")
    parser.add_argument("--connections", default="1,8",
                        help="concurrent connections; a comma-separated list runs each")
    parser.add_argument("--threads", type=int, default=2, help="wrk's threads")
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("error: this benchmark needs wrk (apt-get install wrk)", file=sys.stderr)
        return 1
    connections = [int(c) for c in args.connections.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="graphkit-load-") as tmp:
        folder = Path(tmp)
        with server(folder, args.workers) as base:
            for workload in workloads():
                check(base, workload)
                # warm-up: the plan cached, generated code in place
                load(base, workload, folder, 1, max(connections), min(args.threads, 1))
                for count in connections:
                    row = load(base, workload, folder, args.seconds, count,
                               min(args.threads, count))
                    rows.append({**row, "connections": count})
                    print(f"{workload.name}, {count} connections: {row['per_second']:.0f}/s",
                          file=sys.stderr)
    print(f"wrk with {args.threads} threads (1 for one connection), {args.seconds} s per "
          f"workload, against graphkit serve --workers {args.workers} on the same machine:")
    for line in machine.describe():
        print(f"- {line}")
    print()
    print("| workload | connections | infer/s | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['workload']} | {row['connections']} | {row['per_second']:,.0f} | "
              f"{row['p50_ms']:.2f} | {row['p99_ms']:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
