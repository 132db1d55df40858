"""schemathesis against the app's OpenAPI spec: what the spec declares is what the server
answers (status codes, content types, bodies, headers), and nothing is a server error.

Bounded (at most MAX_EXAMPLES per operation and mode) and repeatable (derandomize); requests
carry the write token, so uploads and deletes are exercised, not only refused. Valid requests
(positive) and invalid ones (negative) are both generated. The operations are driven through
hypothesis directly (schemathesis's pytest plugin does not run under pytest 9 yet).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from graphkit.service.app import create_app
from graphkit.service.settings import Settings
from graphkit.service.store import Store
from tests.service.server_fixtures import TOKEN

MAX_EXAMPLES = 20
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                         ids=lambda mode: mode.value)
def test_the_api_conforms_to_its_spec(tmp_path: Path, mode: GenerationMode) -> None:
    store = Store(f"sqlite:///{tmp_path / 'graphkit.db'}")
    store.check_schema()  # creates the new database (the ASGI client runs no lifespan)
    app = create_app(Settings(token=TOKEN), store=store)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    operations = 0
    try:
        for result in schema.get_all_operations():
            operation = result.ok()
            operations += 1

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None,
                      database=None, suppress_health_check=list(HealthCheck))
            def check(case: schemathesis.Case) -> None:
                case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"},
                                       checks=CHECKS)

            try:
                check()
            except Unsatisfiable:  # nothing in this operation can be made invalid
                assert mode is GenerationMode.NEGATIVE, operation.label
            except Exception as exc:  # noqa: BLE001 - reported per operation below
                failures.append(f"{operation.label}: {exc}")
    finally:
        store.close()
    assert operations >= 7
    assert not failures, "\n\n".join(failures)
