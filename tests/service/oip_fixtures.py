"""A real server for the Open Inference Protocol tests: uvicorn on 127.0.0.1, a free port.

uvicorn runs in a thread of the test process, serving `create_app` over a real socket, so
clients (tritonclient, http.client) speak real HTTP to it, and a test can still look at the
app's plan cache to count loads. Graphs are put in its store the way the registry stores them:
canonical JSON (graphkit.dumps) and its sha256.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from fastapi import FastAPI

import graphkit
from graphkit.service.app import create_app
from graphkit.service.settings import Settings
from graphkit.service.store import Store

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@dataclass
class OIPServer:
    """A running server: its address (host:port, as tritonclient takes it), app and store."""

    address: str
    app: FastAPI
    store: Store

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def add(self, graph: graphkit.Graph, name: str | None = None) -> int:
        """Store `graph` as a new version of `name` (default: its own name); the version."""
        canonical = graphkit.dumps(graph).encode()
        info, _new = self.store.add_version(name or graph.name, canonical,
                                            hashlib.sha256(canonical).hexdigest(),
                                            len(graph.nodes))
        return info.version

    def add_example(self, stem: str) -> int:
        return self.add(graphkit.load(EXAMPLES / f"{stem}.json"))


@contextmanager
def oip_server(tmp: Path, settings: Settings | None = None) -> Iterator[OIPServer]:
    """Start a server on a fresh SQLite store in `tmp`; stop it (and the store) afterwards."""
    store = Store(f"sqlite:///{tmp / 'graphkit.db'}")
    store.check_schema()
    app = create_app(settings or Settings(), store)
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and
    # without it every response written in two parts waits ~40 ms for a delayed ACK (Nagle)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        yield OIPServer(f"127.0.0.1:{port}", app, store)
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()
        store.close()
