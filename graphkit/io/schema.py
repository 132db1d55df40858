"""The JSON Schema of the file format, generated from the models.

`python -m graphkit.io.schema > schemas/graph.schema.json` refreshes the checked-in copy;
a test fails when that copy is stale.
"""

from __future__ import annotations

import json
from typing import Any

from graphkit.model import FORMAT_VERSION, Graph

SCHEMA_ID = f"https://graphkit-backprop.invalid/schemas/graph-v{FORMAT_VERSION}.schema.json"


def graph_schema() -> dict[str, Any]:
    schema = Graph.model_json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
    }


def render() -> str:
    return json.dumps(graph_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    print(render(), end="")
