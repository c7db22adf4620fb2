"""The OpenAPI document describes every endpoint, each with an example."""

from __future__ import annotations

from typing import Any

from gateway.app import create_app
from gateway.settings import GatewaySettings


def _has_example(node: Any, components: dict[str, Any], seen: set[str]) -> bool:
    if isinstance(node, dict):
        if "example" in node or "examples" in node:
            return True
        ref = node.get("$ref")
        if isinstance(ref, str) and ref not in seen:
            seen.add(ref)
            name = ref.rsplit("/", 1)[-1]
            return _has_example(components.get(name), components, seen)
        return any(_has_example(v, components, seen) for v in node.values())
    if isinstance(node, list):
        return any(_has_example(v, components, seen) for v in node)
    return False


def test_every_operation_has_a_summary_and_an_example() -> None:
    document = create_app(GatewaySettings(admin_api_key=None)).openapi()
    components = document["components"]["schemas"]
    missing = []
    operations = 0
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            operations += 1
            assert operation.get("description") or operation.get("summary"), (method, path)
            parts = [operation.get("requestBody"), operation.get("responses")]
            if not _has_example(parts, components, set()):
                missing.append(f"{method.upper()} {path}")
    assert operations >= 25
    assert missing == []
