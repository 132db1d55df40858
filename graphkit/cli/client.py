"""`graphkit push` and `graphkit pull`: the CLI as a client of a `graphkit serve` registry.

Plain urllib from the standard library, so a client machine needs no extra. Server problems
(RFC 9457 problem+json) become one `error:` line with the server's detail and each problem.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.parse
from pathlib import Path

import click

from graphkit.cli.serve import read_token
from graphkit.errors import GraphkitError
from graphkit.io.atomic import write_atomic
from graphkit.io.reading import read_capped

TYPES = {".json": "application/json", ".onnx": "application/onnx"}
TIMEOUT_SECONDS = 300.0


def _kind(path: str) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in TYPES:
        raise GraphkitError(f"{path}: unknown file type {suffix or '(no extension)'}; "
                            f"use {', '.join(sorted(TYPES))}")
    return suffix


def _request(method: str, url: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of a request; an error answer as one GraphkitError line."""
    import urllib.error  # (here: http.client and ssl cost every other command 10 ms to import)
    import urllib.request

    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:  # noqa: S310
            return answer.status, dict(answer.headers.items()), answer.read()
    except urllib.error.HTTPError as error:
        raise GraphkitError(_problem_text(url, error.code, error.read())) from None
    except urllib.error.URLError as error:
        raise GraphkitError(f"cannot reach {url}: {error.reason}") from None
    except (OSError, ValueError) as error:
        raise GraphkitError(f"cannot reach {url}: {error}") from None


def _problem_text(url: str, status: int, body: bytes) -> str:
    """A server's error answer as text: the problem's detail and listed errors when it sent one."""
    try:
        problem = json.loads(body)
    except ValueError:
        problem = None
    if isinstance(problem, dict):
        detail = problem.get("detail") or problem.get("error") or problem.get("title")
        errors = problem.get("errors")
        if isinstance(errors, list) and errors and str(errors[0]) not in str(detail):
            detail = f"{detail}: " + "; ".join(map(str, errors))
    else:
        detail = body.decode("utf-8", "replace")[:300]
    return f"{url}: {status}: {detail}"


def _auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _base(server: str) -> str:
    if not server.startswith(("http://", "https://")):
        raise GraphkitError(f"--server {server!r}: give a URL such as http://127.0.0.1:8000")
    return server.rstrip("/")


server_option = click.option(
    "--server", required=True, envvar="GRAPHKIT_SERVER", metavar="URL",
    help="The graphkit serve URL, e.g. http://127.0.0.1:8000 [env: GRAPHKIT_SERVER].")
token_option = click.option(
    "--token-file", metavar="FILE", default=None,
    help="File holding the server's bearer token [default: the GRAPHKIT_TOKEN environment "
         "variable].")


@click.command("push", short_help="Upload a graph to a graphkit server as a new version.")
@click.argument("graph", metavar="GRAPH")
@server_option
@click.option("--name", default=None, help="The graph's name on the server [default: GRAPH's "
                                           "file name without extension].")
@click.option("--description", default=None, help="What this version is.")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Tag the version "
                                                                        "(repeatable).")
@token_option
def push_command(graph: str, server: str, name: str | None, description: str | None,
                 tags: tuple[str, ...], token_file: str | None) -> None:
    """Upload GRAPH (.json or .onnx) to the server under NAME and print NAME@VERSION.

    The server validates it and numbers it; uploading content it already has under NAME
    prints the existing version. Writes need the server's token (--token-file or
    GRAPHKIT_TOKEN).

    \b
    Examples:
      graphkit push examples/sigmoid_neuron.json --server http://127.0.0.1:8000 --name neuron
      graphkit push model.onnx --server http://127.0.0.1:8000 --name net --tag stage=test
    """
    suffix = _kind(graph)
    data = read_capped(graph, "a graph file")
    name = name or Path(graph).stem
    query = [("description", description)] if description is not None else []
    query += [("tag", tag) for tag in tags]
    url = f"{_base(server)}/graphs/{urllib.parse.quote(name, safe='')}/versions"
    if query:
        url += "?" + urllib.parse.urlencode(query)
    headers = {"Content-Type": TYPES[suffix], "Accept": "application/json",
               **_auth(read_token(token_file))}
    status, _, body = _request("POST", url, data, headers)
    info = json.loads(body)
    click.echo(f"{info['name']}@{info['version']}")
    if status == 200:
        click.echo(f"note: identical to the stored version {info['version']}; nothing new "
                   "was stored", err=True)


@click.command("pull", short_help="Download a graph version from a graphkit server.")
@click.argument("reference", metavar="NAME[@VERSION]")
@click.option("-o", "--output", "output", required=True, metavar="FILE",
              help="Where to write it; the extension (.json or .onnx) chooses the format.")
@server_option
@token_option
def pull_command(reference: str, output: str, server: str, token_file: str | None) -> None:
    """Download NAME's VERSION (default: the latest) into FILE, written atomically.

    \b
    Examples:
      graphkit pull neuron -o neuron.json --server http://127.0.0.1:8000
      graphkit pull neuron@2 -o neuron.onnx --server http://127.0.0.1:8000
    """
    suffix = _kind(output)
    name, at, version = reference.partition("@")
    if not name or (at and not (version.isascii() and version.isdigit() and int(version) > 0)):
        raise GraphkitError(f"{reference!r}: write NAME or NAME@VERSION (a version number)")
    form = suffix.removeprefix(".")
    url = (f"{_base(server)}/graphs/{urllib.parse.quote(name, safe='')}/versions/"
           f"{version if at else 'latest'}?format={form}")
    token = read_token(token_file)
    _, headers, body = _request("GET", url, headers={"Accept": TYPES[suffix], **_auth(token)})
    etag = {k.lower(): v for k, v in headers.items()}.get("etag", "").strip('"')
    if form == "json" and etag and hashlib.sha256(body).hexdigest() != etag:
        raise GraphkitError(f"{url}: the download does not match its sha256 {etag}; "
                            "nothing was written")
    write_atomic(output, body)
    number = {k.lower(): v for k, v in headers.items()}.get("graphkit-version", version or "?")
    click.echo(f"{name}@{number} -> {os.fspath(output)}")
