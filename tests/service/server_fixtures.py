"""A REAL `graphkit serve` for the service tests: uvicorn in a subprocess on 127.0.0.1 and a
free port, its own SQLite file, its output captured in a file (to check what it logs).

Test modules import these helpers and wrap them in fixtures of their own scope.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

import graphkit

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
TOKEN = "tok-9f3a1c-never-logged"
START_SECONDS = 30.0


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def graphkit_command(*args: str) -> list[str]:
    """The CLI as a subprocess runs it: this interpreter, this checkout."""
    return [sys.executable, "-m", "graphkit.cli.main", *args]


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child process: no token or plugin policy from the developer's shell,
    and this checkout importable."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"GRAPHKIT_TOKEN", "GRAPHKIT_SERVER"} and not k.startswith(
               ("GRAPHKIT_LOAD_PLUGINS", "GRAPHKIT_DISABLE_PLUGINS", "GRAPHKIT_STRICT_PLUGINS",
                "GRAPHKIT_PLUGINS", "GRAPHKIT_SERVE_SETTINGS"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


class LiveServer:
    """`graphkit serve` in a subprocess; start(), kill() (SIGKILL), terminate() (SIGTERM)."""

    def __init__(self, folder: Path, *args: str, token: str | None = TOKEN,
                 db: str | None = None) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.db = db or f"sqlite:///{folder / 'graphkit.db'}"
        self.token = token
        self.args = list(args)
        self.log = folder / "server.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LiveServer:
        """Start the server and wait until it answers (fail with its output if it does not)."""
        self.port = free_port()
        args = ["serve", "--db", self.db, "--port", str(self.port), *self.args]
        if self.token is not None:
            token_file = self.folder / "token.txt"
            token_file.write_text(self.token + "\n")
            args += ["--token-file", str(token_file)]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                graphkit_command(*args), stdout=log, stderr=subprocess.STDOUT,
                cwd=self.folder, env=child_env())
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited with {self.process.returncode}:\n"
                                     f"{self.output()}")
            try:
                httpx.get(f"{self.url}/graphs", timeout=1.0)
                return self
            except httpx.TransportError:
                time.sleep(0.05)
        self.kill()
        raise AssertionError(f"the server did not answer within {START_SECONDS} s:\n"
                             f"{self.output()}")

    def output(self) -> str:
        """Everything the server printed (stdout and stderr) so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def client(self, token: str | None = TOKEN, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30.0, **kwargs)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no cleanup, as a crash or the OOM killer would."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait for the exit; the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def stop(self) -> None:
        try:
            self.terminate(15)
        except subprocess.TimeoutExpired:
            self.kill()


def example(name: str) -> graphkit.Graph:
    return graphkit.load(EXAMPLES / f"{name}.json")


def variant(number: int, base: str = "add_mul") -> bytes:
    """A valid graph whose canonical JSON differs from every other number's."""
    document = json.loads((EXAMPLES / f"{base}.json").read_text())
    document.setdefault("metadata", {})["variant"] = number
    return json.dumps(document).encode()


def chain(nodes: int) -> bytes:
    """A valid graph of `nodes` Add nodes in a row (to hit the node limit)."""
    steps = [{"op": "Add", "inputs": ["x" if i == 0 else f"v{i}", "x"], "outputs": [f"v{i + 1}"]}
             for i in range(nodes)]
    return json.dumps({"format_version": 1, "name": "chain",
                       "inputs": [{"name": "x", "shape": []}], "outputs": [f"v{nodes}"],
                       "nodes": steps}).encode()


def canonical(data: bytes) -> bytes:
    """What the server stores for an upload: the canonical JSON of the validated graph."""
    graph = graphkit.loads(data)
    graphkit.validate(graph)
    return graphkit.dumps(graph).encode()


JSON_TYPE = {"Content-Type": "application/json"}
ONNX_TYPE = {"Content-Type": "application/onnx"}
