"""The Open Inference Protocol section's examples run, as written, against a live server.

Its shell blocks (marked `<!-- run: oip -->`) and Python blocks (`<!-- run: oip-python -->`)
run in order against a server holding the lecture's graphs; tests/test_docs.py skips marked
blocks, since they need a server. The section is in docs/service.md.
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
from pathlib import Path

import pytest
from oip_fixtures import oip_server

ROOT = Path(__file__).resolve().parents[2]
DOC_ADDRESS = "127.0.0.1:8000"


def page() -> Path:
    path = ROOT / "docs" / "service.md"
    if "<!-- run: oip -->" not in path.read_text():
        pytest.fail("docs/service.md has no Open Inference Protocol examples")
    return path


def blocks(kind: str, language: str) -> list[str]:
    return re.findall(rf"<!-- run: {kind} -->\n```{language}\n(.*?)```", page().read_text(),
                      re.S)


def test_the_oip_examples_run_against_a_live_server(tmp_path: Path) -> None:
    shell, python = blocks("oip", "sh"), blocks("oip-python", "python")
    assert len(shell) >= 2 and len(python) >= 2
    with oip_server(tmp_path) as server:
        server.add_example("sigmoid_neuron")
        server.add_example("two_layer_net")
        answers = []
        for block in shell:
            done = subprocess.run(["bash", "-c", "set -euo pipefail\n" + block.replace(
                DOC_ADDRESS, server.address)], capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, f"{block}\n{done.stdout}\n{done.stderr}"
            answers.append(json.loads(done.stdout))
        outputs = {o["name"]: o["data"][0] for o in answers[1]["outputs"]}
        assert round(outputs.pop("f"), 2) == 0.73
        assert {k: round(v, 2) for k, v in outputs.items()} == {
            "grad:w0": -0.2, "grad:x0": 0.39, "grad:w1": -0.39, "grad:x1": -0.59, "grad:w2": 0.2}
        documented = re.search(r"```json\n(\{\"model_name\".*?)```", page().read_text(), re.S)
        assert documented is not None and answers[0] == json.loads(documented.group(1))
        metadata = re.search(r"```json\n(\{\"name\": \"two_layer_net\".*?)```", page().read_text(),
                             re.S)
        assert metadata is not None
        with urllib.request.urlopen(f"{server.url}/v2/models/two_layer_net") as response:
            assert json.load(response) == json.loads(metadata.group(1))
        namespace: dict[str, object] = {"__name__": "docs_oip"}
        try:
            for block in python:
                exec(compile(block.replace(DOC_ADDRESS, server.address), str(page()), "exec"),
                     namespace)  # noqa: S102 - our own docs
        finally:
            client = namespace.get("client")
            if client is not None:
                client.close()  # type: ignore[attr-defined]
