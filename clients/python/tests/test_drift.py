"""The client's models against the platform's own documents: the gateway's OpenAPI document
(built from the gateway app in-process) and docs/asyncapi.json. Field names, types, required
fields and enums must agree, and every path the client calls must exist, so the client cannot
drift from the platform."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from pydantic import BaseModel

from gateway.app import create_app
from gateway.settings import GatewaySettings
from prs_client import calls, event_models, models

from .conftest import REPO

Shape = frozenset[Any]


def shape(schema: dict[str, Any], defs: dict[str, Any]) -> Shape:
    """What values a JSON schema admits, as comparable facts: types (with format), enums,
    array item shapes. Titles, descriptions, bounds and examples are left out."""
    if "$ref" in schema:
        return shape(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return frozenset().union(*(shape(s, defs) for s in schema[key]))
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return shape(schema["allOf"][0], defs)
    if "enum" in schema:
        return frozenset({("enum", frozenset(schema["enum"]))})
    if "const" in schema:
        return frozenset({("enum", frozenset([schema["const"]]))})
    kind = schema.get("type", "any")
    if kind == "array":
        return frozenset({("array", shape(schema.get("items", {}), defs))})
    if kind == "object" and "properties" in schema:
        return frozenset({("object", fields(schema, defs))})
    return frozenset({(kind, schema.get("format"))})


def fields(schema: dict[str, Any], defs: dict[str, Any]) -> frozenset[Any]:
    required = set(schema.get("required", ()))
    return frozenset(
        (name, name in required, shape(prop, defs))
        for name, prop in schema.get("properties", {}).items()
    )


def model_fields(model: type[BaseModel], mode: str = "validation") -> frozenset[Any]:
    schema = model.model_json_schema(mode=mode)  # type: ignore[arg-type]
    return fields(schema, schema.get("$defs", {}))


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    document: dict[str, Any] = create_app(GatewaySettings(admin_api_key=None)).openapi()
    return document


@pytest.fixture(scope="module")
def asyncapi() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((REPO / "docs" / "asyncapi.json").read_text())
    return document


REQUESTS = [
    models.QueueDealProcessing,
    models.SendNotificationRequest,
    models.GenerateAuditReportRequest,
    models.TriggerProcessRequest,
    models.DiagnosticRequest,
    models.RegisterWebhookRequest,
]
RESPONSES = [
    models.QueuedResponse,
    models.TaskStatusResponse,
    models.TaskPage,
    models.CancelResponse,
    models.DiagnosticResponse,
    models.ReportSummary,
    models.ProcessStatus,
    models.ScheduleView,
]
ENUMS = [
    models.Priority,
    models.TaskStatus,
    models.WorkflowAction,
    models.NotificationType,
    models.UserRole,
]


@pytest.mark.parametrize("model", REQUESTS, ids=lambda m: m.__name__)
def test_each_request_body_matches_the_gateways_schema(
    openapi: dict[str, Any], model: type[BaseModel]
) -> None:
    components = openapi["components"]["schemas"]
    assert model_fields(model) == fields(components[model.__name__], components)


@pytest.mark.parametrize("model", RESPONSES, ids=lambda m: m.__name__)
def test_each_response_matches_the_gateways_schema(
    openapi: dict[str, Any], model: type[BaseModel]
) -> None:
    components = openapi["components"]["schemas"]
    assert model_fields(model, "serialization") == fields(components[model.__name__], components)


def test_the_json_form_of_file_processing_matches_the_gateways_schema(
    openapi: dict[str, Any],
) -> None:
    operation = openapi["paths"]["/api/background-tasks/queue-file-processing/"]["post"]
    content = operation["requestBody"]["content"]
    schema = content["application/json"]["schema"]
    assert model_fields(models.QueueFileProcessingJson) == fields(
        schema, openapi["components"]["schemas"]
    )
    form = content["multipart/form-data"]["schema"]["properties"]
    assert shape(form["file_type"], {}) == shape(
        models.QueueFileProcessingJson.model_json_schema()["properties"]["file_type"], {}
    )


@pytest.mark.parametrize("enum", ENUMS, ids=lambda e: e.__name__)
def test_each_enum_has_the_gateways_values(openapi: dict[str, Any], enum: Any) -> None:
    assert {m.value for m in enum} == set(openapi["components"]["schemas"][enum.__name__]["enum"])


def _sample_calls() -> list[calls.Call[Any]]:
    task = uuid.uuid4()
    return [
        calls.queue_deal_processing("d-1", "verify_deal"),
        calls.queue_file_processing(b"x", "profile_picture"),
        calls.queue_file_processing_from_path("a.jpg", "profile_picture", "a.jpg"),
        calls.send_notification("deal_overdue", user_id="u-1"),
        calls.generate_audit_report(),
        *(
            calls.trigger_process(p)
            for p in ("verification_reminders", "commission_calculation", "overdue_detection")
        ),
        calls.register_webhook("https://hooks.example.com/prs", ["deal.verified"], "s" * 24),
        calls.list_webhooks(organization_id="42"),
        calls.queue_diagnostic(),
        calls.get_status(task),
        calls.list_tasks(status="FAILED"),
        calls.cancel(task),
        calls.retry(task),
        calls.download(task),
        calls.download(task, variant="256"),
        calls.list_reports(),
        calls.download_report("r-1"),
        calls.process_status(),
        calls.system_health(),
        calls.list_schedules(),
        calls.get_schedule("system_cleanup"),
        calls.change_schedule("system_cleanup", cron="0 * * * *"),
        calls.enable_schedule("system_cleanup"),
        calls.disable_schedule("system_cleanup"),
        calls.run_schedule("system_cleanup"),
        calls.cleanup(),
        calls.cleanup(dry_run=False, jobs=["system_cleanup"]),
        calls.cleanup_plan(),
    ]


def test_every_call_of_the_client_is_an_operation_of_the_gateway(openapi: dict[str, Any]) -> None:
    operations = [
        (method.upper(), re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"), op)
        for path, methods in openapi["paths"].items()
        for method, op in methods.items()
    ]
    for call in _sample_calls():
        matching = [
            op for m, pattern, op in operations if m == call.method and pattern.match(call.path)
        ]
        assert matching, f"{call.method} {call.path} is not in the gateway's OpenAPI document"
        declared = {p["name"] for p in matching[0].get("parameters", []) if p["in"] == "query"}
        assert set(call.params or {}) <= declared, (call.path, call.params, declared)


def test_the_queuing_operations_are_every_accepted_operation_of_the_gateway(
    openapi: dict[str, Any],
) -> None:
    accepted = {
        path
        for path, methods in openapi["paths"].items()
        for method, op in methods.items()
        if "202" in op["responses"] and not path.startswith("/api/dead-letters")
    }
    called = {call.path for call in _sample_calls() if call.method in ("POST", "PATCH")}
    missing = {
        p
        for p in accepted
        if not any(re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", p), c) for c in called)
    }
    assert missing == set()


def _messages_carrying(asyncapi: dict[str, Any]) -> dict[str, str]:
    """Event type → the name of the snapshot schema its envelope carries."""
    found = {}
    for name, message in asyncapi["components"]["messages"].items():
        parts = message["payload"].get("allOf", [])
        for part in parts:
            ref = part.get("properties", {}).get("payload", {}).get("$ref", "")
            if ref.rsplit("/", 1)[-1] in {"Organization", "User", "Deal", "Payment"}:
                found[name] = ref.rsplit("/", 1)[-1]
    return found


def test_the_client_publishes_every_prs_domain_event_the_platform_consumes(
    asyncapi: dict[str, Any],
) -> None:
    assert {t: m.__name__ for t, m in event_models.EVENT_TYPES.items()} == _messages_carrying(
        asyncapi
    )
    for type_ in event_models.EVENT_TYPES:
        assert f"events.{type_}" in asyncapi["channels"]


@pytest.mark.parametrize(
    "model",
    [
        event_models.Organization,
        event_models.User,
        event_models.Deal,
        event_models.Payment,
        event_models.CommissionPolicy,
        event_models.CommissionTier,
        event_models.Event,
    ],
    ids=lambda m: m.__name__,
)
def test_each_event_model_matches_the_asyncapi_schema(
    asyncapi: dict[str, Any], model: type[BaseModel]
) -> None:
    schemas = asyncapi["components"]["schemas"]
    name = "Envelope" if model is event_models.Event else model.__name__
    assert model_fields(model) == fields(schemas[name], schemas)


def test_the_drift_check_sees_a_renamed_field(openapi: dict[str, Any]) -> None:
    class QueuedResponse(BaseModel):
        task: uuid.UUID
        status: models.TaskStatus
        queue: str
        status_url: str

    components = openapi["components"]["schemas"]
    assert model_fields(QueuedResponse) != fields(components["QueuedResponse"], components)
