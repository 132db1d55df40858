"""`graphkit serve`: the HTTP graph registry and Open Inference Protocol server.

fastapi, uvicorn and sqlalchemy belong to the `serve` extra, so they are imported inside the
command: the rest of the CLI works without them, and this command says how to get them. The
settings reach uvicorn's worker processes through environment variables (Settings.to_env), the
app being built by a factory in each worker, so --workers N works like --workers 1.
"""

from __future__ import annotations

import inspect
import os
import socket
from pathlib import Path

import click

from graphkit.errors import GraphkitError

EXTRA_HINT = "pip install 'graphkit-backprop[serve]'"
APP_FACTORY = "graphkit.service.app:app_from_env"
SHUTDOWN_GRACE_SECONDS = 60
"""On SIGTERM or Ctrl-C the server stops accepting connections and waits this long for the
requests in flight to finish before closing them."""


def require_serve_extra(command: str) -> None:
    """One `error:` line naming the extra when fastapi, uvicorn, sqlalchemy or alembic is
    missing (imported here, not at the top, so the rest of the CLI works without them)."""
    try:
        import alembic  # noqa: F401
        import fastapi  # noqa: F401
        import sqlalchemy  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise GraphkitError(f"{command} needs the serve extra: {EXTRA_HINT} "
                            f"(missing: {exc.name})") from None


def read_token(token_file: str | None) -> str | None:
    """The token from --token-file (whitespace around it ignored), else GRAPHKIT_TOKEN, else
    None; an empty one is an error rather than an open door."""
    if token_file is not None:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise GraphkitError(f"cannot read the token file {token_file}: {reason}") from None
        if not token:
            raise GraphkitError(f"the token file {token_file} is empty")
        return token
    token = os.environ.get("GRAPHKIT_TOKEN")
    if token is not None and not token.strip():
        raise GraphkitError("GRAPHKIT_TOKEN is set but empty")
    return token.strip() if token else None


@click.command("serve", short_help="Run the graph registry and inference server (HTTP).")
@click.option("--db", metavar="URL", default=None,
              help="Database URL: sqlite:///FILE or postgresql://USER:PASSWORD@HOST/DB "
                   "[default: sqlite:///graphkit.db in the working folder].")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes (they share the database).")
@click.option("--token-file", metavar="FILE", default=None,
              help="File holding the bearer token clients must send to write (and, with "
                   "--read-token, to read). Default: the GRAPHKIT_TOKEN environment variable. "
                   "Without a token the server refuses every write.")
@click.option("--read-token", "read_needs_token", is_flag=True,
              help="Reads need the token too (by default anyone who can connect may read).")
@click.option("--cors-origin", "cors_origins", multiple=True, metavar="ORIGIN",
              help="Allow browser pages from ORIGIN (e.g. https://app.example.com; "
                   "repeatable). CORS is off unless given.")
@click.option("--max-body-bytes", type=click.IntRange(min=1), default=64 * 2**20,
              show_default=True, help="Largest request body (413 beyond).")
@click.option("--max-nodes", type=click.IntRange(min=1), default=100_000, show_default=True,
              help="Most nodes an uploaded graph may have (413 beyond).")
@click.option("--max-tensor-elements", type=click.IntRange(min=1), default=2**26,
              show_default=True, help="Most elements of one tensor in an inference request.")
@click.option("--timeout", "timeout_seconds", type=click.FloatRange(min=0, min_open=True),
              default=30.0, show_default=True,
              help="Seconds an inference may run (504 beyond).")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info",
                                                "debug"]), default="info", show_default=True)
def serve_command(db: str | None, host: str, port: int, workers: int, token_file: str | None,
                  read_needs_token: bool, cors_origins: tuple[str, ...], max_body_bytes: int,
                  max_nodes: int, max_tensor_elements: int, timeout_seconds: float,
                  log_level: str) -> None:
    """Serve the graph registry (/graphs) and the Open Inference Protocol (/v2) over HTTP.

    Graphs are kept in a database, a SQLite file in the working folder unless --db names
    another (a new database is created; an older schema must first be migrated with
    `graphkit db upgrade`). Writes need the bearer token of --token-file or GRAPHKIT_TOKEN.
    SIGTERM or Ctrl-C stops it gracefully: requests in flight finish first.

    \b
    Examples:
      graphkit serve
      GRAPHKIT_TOKEN=s3cret graphkit serve --port 8080 --workers 4
      graphkit serve --db postgresql://graphkit@db.example.com/graphkit --token-file token.txt
    """
    require_serve_extra("graphkit serve")
    import uvicorn

    from graphkit.service.settings import Settings
    from graphkit.service.store import Store

    token = read_token(token_file)
    try:
        settings = Settings(
            db=db, token=token, read_needs_token=read_needs_token, max_body_bytes=max_body_bytes,
            max_nodes=max_nodes, max_tensor_elements=max_tensor_elements,
            timeout_seconds=timeout_seconds, cors_origins=tuple(cors_origins))
    except ValueError as exc:
        raise GraphkitError(str(exc)) from None
    store = Store(db)
    try:
        store.check_schema()  # SchemaOutOfDate: one line naming `graphkit db upgrade --db URL`
        where = store.url
    finally:
        store.close()
    os.environ.update(settings.to_env())
    writes = "writes need the token" if token else \
        "no token: writes refused (use --token-file or GRAPHKIT_TOKEN)"
    reads = "reads need the token" if read_needs_token else "reads open"
    click.echo(f"graphkit serve: {where}; {writes}; {reads}", err=True)
    config = uvicorn.Config(
        APP_FACTORY, factory=True, host=host, port=port, workers=workers, log_level=log_level,
        server_header=False, proxy_headers=False,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS)
    server = uvicorn.Server(config)
    if workers == 1:
        server.run()
        return
    from uvicorn.supervisors import Multiprocess

    sockets = [_said_tcp(config.bind_socket())]
    if "target" in inspect.signature(Multiprocess).parameters:  # uvicorn before 0.30
        Multiprocess(config, target=server.run, sockets=sockets).run()
    else:
        Multiprocess(config, sockets=sockets).run()


def _said_tcp(sock: socket.socket) -> socket.socket:
    """The socket uvicorn bound for its worker processes, re-wrapped to say it is TCP.

    uvicorn creates it without naming its protocol, and asyncio turns Nagle's algorithm off
    (TCP_NODELAY) only on sockets whose `proto` is IPPROTO_TCP: with --workers N every small
    response waited ~40 ms for the client's delayed ACK. Re-wrapping the descriptor lets
    Python read the real protocol from the kernel."""
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.proto != 0:
        return sock
    tcp = socket.socket(fileno=sock.detach())
    tcp.set_inheritable(True)
    return tcp
