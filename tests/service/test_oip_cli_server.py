"""The whole path a user takes: `graphkit serve` in its own process, a graph uploaded through
the registry, then run with tritonclient over the Open Inference Protocol."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tritonclient.http as httpclient

from tests.service.server_fixtures import EXAMPLES, LiveServer

NEURON = {"w0": 2.0, "x0": -1.0, "w1": -3.0, "x1": -2.0, "w2": -3.0}


def test_upload_then_infer_with_gradients_on_graphkit_serve(tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "server").start()
    try:
        with server.client() as http:
            uploaded = http.post("/graphs/neuron/versions",
                                 content=(EXAMPLES / "sigmoid_neuron.json").read_bytes(),
                                 headers={"Content-Type": "application/json"})
            assert uploaded.status_code == 201, uploaded.text
        client = httpclient.InferenceServerClient(server.url.removeprefix("http://"))
        try:
            assert client.is_server_ready() and client.is_model_ready("neuron")
            inputs = []
            for name, value in NEURON.items():
                tensor = httpclient.InferInput(name, [], "FP64")
                tensor.set_data_from_numpy(np.array(value))
                inputs.append(tensor)
            result = client.infer("neuron", inputs, model_version="1",
                                  parameters={"graphkit_gradients": "w0,x0,w1,x1,w2"})
            assert round(float(result.as_numpy("f")), 2) == 0.73
            assert [round(float(result.as_numpy(f"grad:{n}")), 2) for n in NEURON] == [
                -0.20, 0.39, -0.39, -0.59, 0.20]
        finally:
            client.close()
    finally:
        server.stop()
