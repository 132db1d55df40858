"""Limits on /v2: tensor size (413) and the execution timeout (504), with the server answering
other requests meanwhile, since graphs run in worker threads and not on the event loop."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
import tritonclient.http as httpclient
from oip_fixtures import OIPServer, oip_server
from tritonclient.utils import InferenceServerException

import graphkit
from graphkit.service.settings import Settings

N = 2000
"""The slow graph's size: two 2000x2000 MatMuls, about a second of work, from 4000 numbers."""
TIMEOUT = 0.3


def slow_graph() -> graphkit.Graph:
    """Plugin-free and slow: an outer sum makes an NxN matrix, then (m @ m) @ m."""
    g = graphkit.GraphBuilder("slow")
    a = g.input("a", shape=["N", 1])
    b = g.input("b", shape=[1, "N"])
    m = a + b
    g.output(((m @ m) @ m).sum(), "f")
    return g.build()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OIPServer]:
    settings = Settings(timeout_seconds=TIMEOUT, max_tensor_elements=5000)
    with oip_server(tmp_path_factory.mktemp("limits"), settings) as running:
        running.add(slow_graph())
        running.add_example("two_layer_net")
        yield running


def slow_inputs(n: int) -> list[httpclient.InferInput]:
    a = httpclient.InferInput("a", [n, 1], "FP64")
    a.set_data_from_numpy(np.full((n, 1), 1e-3))
    b = httpclient.InferInput("b", [1, n], "FP64")
    b.set_data_from_numpy(np.full((1, n), 1e-3))
    return [a, b]


def test_a_tensor_over_the_element_limit_is_413(server: OIPServer) -> None:
    client = httpclient.InferenceServerClient(server.address)
    try:
        X = httpclient.InferInput("X", [1251, 4], "FP64")  # 5004 elements > 5000
        X.set_data_from_numpy(np.zeros((1251, 4)))
        y = httpclient.InferInput("y", [1251], "INT64")
        y.set_data_from_numpy(np.zeros(1251, dtype=np.int64))
        with pytest.raises(InferenceServerException) as raised:
            client.infer("two_layer_net", [X, y])
        assert raised.value.status() == "413"
        assert "'X' has 5004 elements" in raised.value.message()
        assert "at most 5000" in raised.value.message()
    finally:
        client.close()


def test_a_run_past_the_timeout_is_504_and_the_server_keeps_answering(
        server: OIPServer) -> None:
    probe = httpclient.InferenceServerClient(server.address)
    outcome: dict[str, object] = {}

    def slow() -> None:  # its own client: tritonclient's (gevent) clients stay in one thread
        client = httpclient.InferenceServerClient(server.address, network_timeout=30)
        started = time.monotonic()
        try:
            client.infer("slow", slow_inputs(N))
        except InferenceServerException as exc:
            outcome["error"] = exc
        finally:
            client.close()
        outcome["seconds"] = time.monotonic() - started

    try:
        assert probe.is_server_live()  # connected before the slow run starts
        thread = threading.Thread(target=slow)
        thread.start()
        latencies = []
        while thread.is_alive():
            started = time.monotonic()
            assert probe.is_server_live()
            latencies.append(time.monotonic() - started)
            time.sleep(0.01)
        thread.join()
        error = outcome["error"]
        assert isinstance(error, InferenceServerException)
        assert error.status() == "504" and "0.3 s" in error.message()
        assert TIMEOUT <= float(outcome["seconds"]) < TIMEOUT + 0.5  # type: ignore[arg-type]
        # a loop blocked by the ~1 s computation would answer after most of it, not in < 0.4 s
        assert len(latencies) >= 5 and max(latencies) < 0.4
        # small requests still run while the abandoned computation finishes in its thread
        small = probe.infer("slow", slow_inputs(20))
        local = graphkit.execute(slow_graph(), {"a": np.full((20, 1), 1e-3),
                                                "b": np.full((1, 20), 1e-3)})
        assert small.as_numpy("f") == local.outputs["f"]
    finally:
        probe.close()
