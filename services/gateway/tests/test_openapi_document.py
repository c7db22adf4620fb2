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


def test_every_error_response_is_documented_as_a_problem() -> None:
    document = create_app(GatewaySettings(admin_api_key=None)).openapi()
    problem = document["components"]["schemas"]["Problem"]
    assert {"title", "status", "instance"} <= set(problem["required"])
    assert "HTTPValidationError" not in document["components"]["schemas"]
    errors = 0
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            responses = operation["responses"]
            if operation.get("security"):
                assert "401" in responses, (method, path)
            for status, response in responses.items():
                if status.startswith("4"):
                    errors += 1
                    content = response.get("content", {})
                    assert list(content) == ["application/problem+json"], (method, path, status)
                    schema = content["application/problem+json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Problem"}
    assert errors >= 50


def test_the_document_names_the_broker_refusal_of_a_queued_task_as_a_problem() -> None:
    document = create_app(GatewaySettings(admin_api_key=None)).openapi()
    refused = document["paths"]["/api/background-tasks/queue-deal-processing/"]["post"]["responses"]
    assert "application/problem+json" in refused["503"]["content"]
    ready = document["paths"]["/readyz"]["get"]["responses"]["503"]
    assert "application/problem+json" not in ready.get("content", {})
