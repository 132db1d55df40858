"""RFC 9457 problem details (application/problem+json): how the registry routes say what went
wrong, in a form a client can read without parsing prose.

Members: `type` (a URI naming the kind of problem; "about:blank" when the status says it all),
`title` (the status's phrase or the kind's short name), `status`, `detail` (this occurrence,
in words) and `instance` (the request path). Validation problems add the extension member
`errors`: one string per problem, each naming its node or field.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://graphkit-backprop.invalid/problems/"
"""Problem types are named under this (unresolvable by design) base, like the file schema's $id."""


class Problem(BaseModel):
    """An RFC 9457 problem details object."""

    type: str = Field("about:blank", description="URI naming the kind of problem")
    title: str = Field(description="short, human-readable summary of the kind of problem")
    status: int = Field(description="the HTTP status code of this response")
    detail: str | None = Field(None, description="this occurrence of the problem, in words")
    instance: str | None = Field(None, description="the request path")
    errors: list[str] | None = Field(
        None, description="every problem found, when a graph or request fails validation")


class ProblemError(Exception):
    """Raised by a route to answer with a problem; the app's handler renders it."""

    def __init__(self, status: int, detail: str, kind: str | None = None,
                 errors: list[str] | None = None, headers: dict[str, str] | None = None,
                 title: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.kind = kind
        self.errors = errors
        self.headers = headers
        self.title = title


def problem_response(status: int, detail: str | None, instance: str | None = None,
                     kind: str | None = None, errors: list[str] | None = None,
                     headers: dict[str, str] | None = None,
                     title: str | None = None) -> JSONResponse:
    """A problem+json response; `kind` (e.g. "invalid-graph") becomes the `type` URI."""
    body: dict[str, Any] = {
        "type": TYPE_BASE + kind if kind else "about:blank",
        "title": title or _phrase(status),
        "status": status,
    }
    if detail is not None:
        body["detail"] = detail
    if instance is not None:
        body["instance"] = instance
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries declaring problem+json bodies for these statuses."""
    return {
        status: {
            "description": _phrase(status),
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }
