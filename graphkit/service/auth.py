"""Bearer-token checks as FastAPI dependencies.

Writes always need the token: a server started without one (no --token-file, no
GRAPHKIT_TOKEN) refuses every write with 403, since no credential could succeed. Reads need
it only when the server was started with --read-token. Tokens are compared in constant time
(hmac.compare_digest) and never logged: nothing here logs, and uvicorn's access log records
the method and path only.
"""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request

NO_WRITE_TOKEN = (
    "this server takes no writes: it was started without a token; start it with "
    "--token-file FILE or with GRAPHKIT_TOKEN set, and send 'Authorization: Bearer TOKEN'"
)


def _presented(request: Request) -> str | None:
    """The token of an `Authorization: Bearer TOKEN` header, or None."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _check(request: Request, what: str) -> None:
    expected: str | None = request.app.state.settings.token
    if expected is None:
        raise HTTPException(403, NO_WRITE_TOKEN)
    token = _presented(request)
    if token is None:
        raise HTTPException(
            401, f"{what} needs a token: send 'Authorization: Bearer TOKEN'",
            headers={"WWW-Authenticate": 'Bearer realm="graphkit"'})
    if not hmac.compare_digest(token.encode("utf-8", "surrogatepass"),
                               expected.encode("utf-8", "surrogatepass")):
        raise HTTPException(
            401, "the bearer token is not this server's token",
            headers={"WWW-Authenticate": 'Bearer realm="graphkit", error="invalid_token"'})


async def require_write(request: Request) -> None:
    """Every write (upload, delete) needs the server's token."""
    _check(request, "this request changes the registry and")


async def require_read(request: Request) -> None:
    """Reads need the token only on a server started with --read-token."""
    if request.app.state.settings.read_needs_token:
        _check(request, "this server was started with --read-token: reading")
