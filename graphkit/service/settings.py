"""The server's settings: one frozen value, passed to worker processes through the environment.

`graphkit serve --workers N` starts N processes that each build the app from
`GRAPHKIT_SERVE_SETTINGS` (JSON of every field but the token) and `GRAPHKIT_TOKEN`, so a
token never appears on a command line (where `ps` would show it) or in the settings JSON.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SETTINGS_ENV = "GRAPHKIT_SERVE_SETTINGS"
TOKEN_ENV = "GRAPHKIT_TOKEN"


@dataclass(frozen=True)
class Settings:
    """What a server instance allows and where it keeps its graphs."""

    db: str | None = None
    token: str | None = None  # --token-file or GRAPHKIT_TOKEN; None: the server takes no writes
    read_needs_token: bool = False
    max_body_bytes: int = 64 * 2**20
    max_nodes: int = 100_000
    max_tensor_elements: int = 2**26
    timeout_seconds: float = 30.0
    plan_cache_size: int = 64
    cors_origins: tuple[str, ...] = ()  # CORS off unless given

    def __post_init__(self) -> None:
        if self.read_needs_token and not self.token:
            raise ValueError("reads cannot need a token when the server has none: give the "
                             "server a token (--token-file or GRAPHKIT_TOKEN)")
        if self.token is not None and not self.token.strip():
            raise ValueError("the token is empty")

    def to_env(self) -> dict[str, str]:
        """Environment variables from which `from_env` rebuilds these settings in a worker."""
        fields = dataclasses.asdict(self)
        token = fields.pop("token")
        fields["cors_origins"] = list(self.cors_origins)
        env = {SETTINGS_ENV: json.dumps(fields)}
        if token is not None:
            env[TOKEN_ENV] = token
        return env

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings a `graphkit serve` parent process left in the environment (defaults and
        GRAPHKIT_TOKEN when there are none)."""
        environ = os.environ if environ is None else environ
        fields: dict[str, Any] = json.loads(environ.get(SETTINGS_ENV) or "{}")
        known = {f.name for f in dataclasses.fields(cls)} - {"token"}
        fields = {k: v for k, v in fields.items() if k in known}
        if "cors_origins" in fields:
            fields["cors_origins"] = tuple(fields["cors_origins"])
        token = environ.get(TOKEN_ENV) or None
        return cls(token=token, **fields)
