"""`graphkit serve`, `push` and `pull` as users run them: against a real server, with one-line
errors for what goes wrong before or after."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

import graphkit
from graphkit.cli.main import cli
from graphkit.io.onnx_export import save_onnx
from graphkit.service.store import upgrade
from graphkit.service.tables import VERSION_TABLE
from tests.service.server_fixtures import (
    EXAMPLES,
    JSON_TYPE,
    TOKEN,
    LiveServer,
    canonical,
    child_env,
    free_port,
    graphkit_command,
    variant,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("cli")).start()
    yield live
    live.stop()


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), prog_name="graphkit", env=env)


def one_error_line(result: Result) -> str:
    assert result.exit_code == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_push_and_pull_json_and_onnx(server: LiveServer, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    source = EXAMPLES / "sigmoid_neuron.json"
    pushed = run("push", str(source), "--server", server.url, "--name", "neuron",
                 "--token-file", str(token_file), "--tag", "stage=test")
    assert pushed.exit_code == 0, pushed.stderr
    assert pushed.stdout.strip() == "neuron@1"
    # the same graph as ONNX, the token from GRAPHKIT_TOKEN: the version it already is
    onnx_file = tmp_path / "neuron.onnx"
    save_onnx(graphkit.load(source), onnx_file)
    again = run("push", str(onnx_file), "--server", server.url, "--name", "neuron",
                env={"GRAPHKIT_TOKEN": TOKEN})
    assert again.exit_code == 0, again.stderr
    assert again.stdout.strip() == "neuron@1"
    assert "identical" in again.stderr
    newer = tmp_path / "neuron2.json"
    newer.write_bytes(variant(2, "sigmoid_neuron"))
    assert run("push", str(newer), "--server", server.url, "--name", "neuron",
               env={"GRAPHKIT_TOKEN": TOKEN}).stdout.strip() == "neuron@2"

    out_json = tmp_path / "out" / "v1.json"
    out_json.parent.mkdir()
    pulled = run("pull", "neuron@1", "-o", str(out_json), "--server", server.url)
    assert pulled.exit_code == 0, pulled.stderr
    assert out_json.read_bytes() == canonical(source.read_bytes())
    out_onnx = tmp_path / "out" / "latest.onnx"
    monkeypatch.setenv("GRAPHKIT_SERVER", server.url)
    latest = run("pull", "neuron", "-o", str(out_onnx))
    assert latest.exit_code == 0, latest.stderr
    assert "neuron@2" in latest.stdout
    assert graphkit.load(out_onnx) == graphkit.loads(canonical(newer.read_bytes()))


def test_client_errors_are_one_line(server: LiveServer, tmp_path: Path) -> None:
    source = str(EXAMPLES / "add_mul.json")
    no_token = one_error_line(run("push", source, "--server", server.url, "--name", "x"))
    assert "401" in no_token and "token" in no_token
    missing = one_error_line(run("pull", "nothing@3", "-o", str(tmp_path / "n.json"),
                                 "--server", server.url))
    assert "404" in missing and "nothing" in missing
    assert not (tmp_path / "n.json").exists()
    bad_graph = tmp_path / "bad.json"
    bad_graph.write_text('{"format_version": 1, "name": "bad", "outputs": ["y"], '
                         '"nodes": [{"op": "Nope", "inputs": ["a"], "outputs": ["y"]}]}')
    invalid = one_error_line(run("push", str(bad_graph), "--server", server.url,
                                 env={"GRAPHKIT_TOKEN": TOKEN}))
    assert "422" in invalid and "Nope" in invalid
    assert "unknown file type" in one_error_line(
        run("pull", "x", "-o", str(tmp_path / "x.txt"), "--server", server.url))
    unreachable = one_error_line(run("pull", "x", "-o", str(tmp_path / "x.json"),
                                     "--server", f"http://127.0.0.1:{free_port()}"))
    assert "cannot reach" in unreachable


def _serve(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(graphkit_command("serve", "--port", str(free_port()), *args),
                          capture_output=True, text=True, timeout=timeout, env=child_env())


def test_serve_refuses_an_out_of_date_schema_naming_the_fix(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url)
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # as a database from before any migration ran would be
        conn.execute(sa.text(f"DELETE FROM {VERSION_TABLE}"))
    engine.dispose()
    result = _serve("--db", url)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and f"graphkit db upgrade --db {url}" in lines[0]


def test_serve_refuses_bad_token_setups(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    db = f"sqlite:///{tmp_path / 'g.db'}"
    for args, expected in [(("--token-file", str(empty)), "is empty"),
                           (("--token-file", str(tmp_path / "missing")), "cannot read"),
                           (("--read-token",), "--token-file")]:
        # each is refused before the server would start listening
        line = one_error_line(run("serve", "--db", db, "--port", str(free_port()), *args,
                                  env={"GRAPHKIT_TOKEN": None}))  # type: ignore[dict-item]
        assert expected in line


def test_without_the_serve_extra_the_core_cli_works_and_serve_says_what_to_install(
        tmp_path: Path) -> None:
    block = "import sys; sys.modules['fastapi'] = None; sys.modules['uvicorn'] = None; "
    core = subprocess.run(
        [sys.executable, "-c", block + "from graphkit.cli.main import main; "
         f"main(['validate', {str(EXAMPLES / 'add_mul.json')!r}])"],
        capture_output=True, text=True, timeout=60, env=child_env())
    assert core.returncode == 0, core.stderr
    serve = subprocess.run(
        [sys.executable, "-c", block + "from graphkit.cli.main import main; main(['serve'])"],
        capture_output=True, text=True, timeout=60, env=child_env(), cwd=tmp_path)
    assert serve.returncode == 1
    assert serve.stderr.strip() == ("error: graphkit serve needs the serve extra: "
                                    "pip install 'graphkit-backprop[serve]' (missing: fastapi)")


def test_several_workers_share_the_settings_and_the_database(tmp_path: Path) -> None:
    live = LiveServer(tmp_path, "--workers", "2").start()
    try:
        with live.client(token=None) as anonymous:
            assert anonymous.post("/graphs/w/versions", content=variant(1),
                                  headers=JSON_TYPE).status_code == 401
        versions = set()
        for number in range(6):  # new connections, spread over both workers
            with httpx.Client(base_url=live.url,
                              headers={"Authorization": f"Bearer {TOKEN}"}) as http:
                response = http.post("/graphs/w/versions", content=variant(number),
                                     headers=JSON_TYPE)
                assert response.status_code == 201, response.text
                versions.add(response.json()["version"])
        assert versions == set(range(1, 7))
    finally:
        assert live.terminate() in (0, -15)
