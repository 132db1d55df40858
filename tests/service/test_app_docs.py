"""docs/service.md's examples marked `<!-- run: service -->` run, in order, against a live
server (tests/test_docs.py runs only Python and JSON blocks; these need a server)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import graphkit
from tests.service.server_fixtures import EXAMPLES, ROOT, TOKEN, LiveServer, canonical, child_env

PAGE = ROOT / "docs" / "service.md"
DOC_ADDRESS = "127.0.0.1:8000"


def run_blocks() -> list[str]:
    return re.findall(r"<!-- run: service -->\n```sh\n(.*?)```", PAGE.read_text(), re.S)


def test_the_service_page_examples_run_against_a_live_server(tmp_path: Path) -> None:
    blocks = run_blocks()
    assert len(blocks) >= 4
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    server = LiveServer(tmp_path / "server").start()
    (tmp_path / "token.txt").write_text(TOKEN + "\n")
    env = child_env(PATH=os.pathsep.join([str(Path(sys.executable).parent),
                                          os.environ.get("PATH", "")]))
    try:
        for block in blocks:
            script = ('set -euo pipefail\ncurl() { command curl --fail-with-body "$@"; }\n'
                      + block.replace(DOC_ADDRESS, f"127.0.0.1:{server.port}"))
            done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env,
                                  capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, f"{block}\n{done.stdout}\n{done.stderr}"
        neuron = (EXAMPLES / "sigmoid_neuron.json").read_bytes()
        assert (tmp_path / "neuron.json").read_bytes() == canonical(neuron)
        assert graphkit.load(tmp_path / "neuron.onnx") == graphkit.loads(canonical(neuron))
        onnx_bytes = (tmp_path / "neuron.onnx").read_bytes()
        assert (tmp_path / "neuron-too.onnx").read_bytes() == onnx_bytes
        net = (EXAMPLES / "two_layer_net.json").read_bytes()
        assert (tmp_path / "net.json").read_bytes() == canonical(net)
        assert graphkit.load(tmp_path / "net.onnx") == graphkit.loads(canonical(net))
        with server.client() as http:
            assert http.get("/graphs/neuron").status_code == 404
            assert http.get("/graphs/scratch/versions/1").status_code == 404
    finally:
        server.stop()


def test_the_documented_upload_answer_matches_the_server() -> None:
    """The page's sample answer shows the neuron's real size and node count."""
    sample = re.search(r'```json\n(\{"name": "neuron".*?)```', PAGE.read_text(), re.S)
    assert sample is not None
    shown = json.loads(sample.group(1))
    stored = canonical((EXAMPLES / "sigmoid_neuron.json").read_bytes())
    assert shown["size"] == len(stored)
    assert shown["nodes"] == len(graphkit.loads(stored).nodes)
    assert hashlib.sha256(stored).hexdigest().startswith(shown["sha256"].rstrip("."))
