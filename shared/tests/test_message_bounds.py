"""Every field of every message is bounded, so that a message no consumer could store is refused.

A payload that passes validation reaches a handler and a database: a float of 1e300, an integer
past 64 bits, a naive datetime among aware ones or a result of megabytes must be refused when the
message is validated (the runtime then dead-letters it as a schema mismatch), not fail later.

The walk below checks each payload model of the catalog and the envelope: in the JSON schema every
string has a maximum length (or is a uuid, a date, an enum, a constant or a bounded pattern), every
number a minimum and a maximum, every array a maximum number of items; in the model fields every
datetime is aware and every free-form object is bounded in serialized size; every model refuses
NaN and infinity.
"""

from __future__ import annotations

import math
import re
import types
import typing
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from pydantic import AwareDatetime, BaseModel, ValidationError

from prs_shared.messaging import catalog
from prs_shared.messaging.catalog import MessageSpec
from prs_shared.messaging.deals import VerificationReminderDue
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.messages import Heartbeat, TaskLifecycle, TaskStatus
from prs_shared.messaging.notifications import SendNotification
from prs_shared.messaging.prs_events import CommissionTier, Deal

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BOUNDED_FORMATS = {"uuid", "date-time", "date"}


def _specs() -> list[MessageSpec]:
    # The test kit's probe messages (registered by this suite's conftest) are not part of the
    # platform's catalog: they are in neither catalog.CATALOG_MODULES nor the AsyncAPI document.
    return [
        s for s in catalog.load_all() if not s.payload.__module__.startswith("prs_shared.testing")
    ]


def _models() -> list[type[BaseModel]]:
    models: list[type[BaseModel]] = [Envelope]
    for spec in _specs():
        if spec.payload not in models:
            models.append(spec.payload)
    return models


MODELS = _models()


def test_the_walk_covers_the_catalog() -> None:
    types_ = {s.type for s in _specs()}
    assert {"task.succeeded", "service.heartbeat", "deal.verified", "notification.send"} <= types_
    assert all(s.payload in MODELS for s in _specs())


# --- the JSON schema ------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_json_schema_bounds_every_string_number_and_array(model: type[BaseModel]) -> None:
    schema = model.model_json_schema(mode="validation")
    problems = list(_schema_problems(schema, schema, model.__name__, set()))
    assert not problems, "unbounded in the schema:\n  " + "\n  ".join(problems)


def _schema_problems(root: dict[str, Any], node: Any, path: str, seen: set[str]) -> Iterator[str]:
    if not isinstance(node, dict):
        return
    ref = node.get("$ref")
    if isinstance(ref, str):
        if ref not in seen:
            seen.add(ref)
            name = ref.rsplit("/", 1)[-1]
            yield from _schema_problems(root, root["$defs"][name], name, seen)
        return
    kinds = node.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds] if kinds else []
    if "string" in kinds and not _string_bounded(node):
        yield f"{path}: string without maxLength"
    if "integer" in kinds or "number" in kinds:
        if not ({"minimum", "exclusiveMinimum"} & set(node)):
            yield f"{path}: number without minimum"
        if not ({"maximum", "exclusiveMaximum"} & set(node)):
            yield f"{path}: number without maximum"
    if "array" in kinds:
        if "maxItems" not in node:
            yield f"{path}: array without maxItems"
        yield from _schema_problems(root, node.get("items"), f"{path}[]", seen)
    for name, sub in (node.get("properties") or {}).items():
        yield from _schema_problems(root, sub, f"{path}.{name}", seen)
    yield from _schema_problems(root, node.get("additionalProperties"), f"{path}{{}}", seen)
    for keyword in ("anyOf", "allOf", "oneOf"):
        for sub in node.get(keyword, ()):
            yield from _schema_problems(root, sub, path, seen)


def _string_bounded(node: dict[str, Any]) -> bool:
    if "maxLength" in node or "enum" in node or "const" in node:
        return True
    if node.get("format") in BOUNDED_FORMATS:
        return True
    pattern = node.get("pattern")
    return isinstance(pattern, str) and _pattern_bounded(pattern)


def _pattern_bounded(pattern: str) -> bool:
    """An anchored pattern without an unbounded repetition (``*``, ``+``, ``{n,}``)."""
    if not (pattern.startswith("^") and pattern.endswith("$")):
        return False
    body = re.sub(r"\\.", "", pattern)  # escaped characters
    body = re.sub(r"\[[^\]]*\]", "", body)  # character classes
    return not re.search(r"[*+]|\{\d*,\}", body)


def test_pattern_bounded() -> None:
    assert _pattern_bounded(r"^[A-Z]{3}$")
    assert _pattern_bounded(r"^[0-9a-f]{64}$")
    assert not _pattern_bounded(r"^[a-z]+$")
    assert not _pattern_bounded(r"^a{2,}$")
    assert not _pattern_bounded(r"[A-Z]{3}")


# --- the model fields -----------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_fields_have_aware_datetimes_bounded_objects_and_finite_numbers(
    model: type[BaseModel],
) -> None:
    problems = list(_model_problems(model, model.__name__, set()))
    problems += [f"{model.__name__}: {p}" for p in _core_schema_problems(model)]
    assert not problems, "unbounded fields:\n  " + "\n  ".join(problems)


def _model_problems(model: type[BaseModel], path: str, seen: set[type[BaseModel]]) -> Iterator[str]:
    if model in seen:
        return
    seen.add(model)
    if model.model_config.get("allow_inf_nan") is not False:
        yield f"{path}: the model allows NaN and infinity (set allow_inf_nan=False)"
    for name, field in model.model_fields.items():
        yield from _annotation_problems(
            field.annotation, list(field.metadata), f"{path}.{name}", seen
        )


def _annotation_problems(
    annotation: Any, metadata: list[Any], path: str, seen: set[type[BaseModel]]
) -> Iterator[str]:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        yield from _annotation_problems(args[0], [*metadata, *args[1:]], path, seen)
    elif origin in (typing.Union, types.UnionType):
        for arg in args:
            yield from _annotation_problems(arg, metadata, path, seen)
    elif origin in (list, set, frozenset, tuple):
        for arg in args:
            if arg is not Ellipsis:
                yield from _annotation_problems(arg, [], f"{path}[]", seen)
    elif origin is dict or annotation is dict:
        if not any(isinstance(getattr(item, "max_bytes", None), int) for item in metadata):
            yield f"{path}: free-form object without a bound on its serialized size"
        if len(args) == 2 and args[1] is not Any:
            yield from _annotation_problems(args[1], [], f"{path}{{}}", seen)
    elif annotation is datetime:
        yield f"{path}: naive datetime allowed (use AwareDatetime)"
    elif annotation is AwareDatetime:
        return
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield from _model_problems(annotation, path, seen)


def _core_schema_problems(model: type[BaseModel]) -> Iterator[str]:
    """Datetimes in the validator itself: every one requires a time zone."""
    for node in _nodes(model.__pydantic_core_schema__):
        if node.get("type") == "datetime" and node.get("tz_constraint") != "aware":
            yield "a datetime validator accepts naive datetimes"


def _nodes(node: Any) -> Iterator[dict[str, Any]]:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)


# --- what the consumers met -----------------------------------------------------------------------


def _lifecycle(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "task_id": str(uuid4()),
        "task_type": "diagnostic.ping",
        "status": TaskStatus.SUCCEEDED.value,
        "queue": "system",
        "service": "notifier",
        "worker": "notifier@host:1",
        "attempt": 1,
        "at": NOW.isoformat(),
        "duration_ms": 1.5,
        "result": {"service": "notifier"},
    }
    fields.update(overrides)
    return fields


def _heartbeat(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "service": "scheduler",
        "worker": "scheduler@host:7",
        "started_at": NOW.isoformat(),
        "queues": ["scheduler.events"],
        "in_flight": 0,
        "processed": 12,
    }
    fields.update(overrides)
    return fields


def test_real_lifecycle_and_heartbeat_pass() -> None:
    TaskLifecycle.model_validate(_lifecycle())
    TaskLifecycle.model_validate(_lifecycle(duration_ms=0.0, result=None, error="x" * 2100))
    TaskLifecycle.model_validate(_lifecycle(result={"ids": [str(uuid4()) for _ in range(5000)]}))
    Heartbeat.model_validate(_heartbeat(in_flight=64, processed=2**40))


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"duration_ms": 1e300}, id="duration 1e300"),
        pytest.param({"duration_ms": math.inf}, id="duration inf"),
        pytest.param({"duration_ms": math.nan}, id="duration nan"),
        pytest.param({"duration_ms": -1.0}, id="negative duration"),
        pytest.param({"duration_ms": 8 * 24 * 3600 * 1000.0}, id="duration over a week"),
        pytest.param({"at": "2026-03-01T12:00:00"}, id="naive at (text)"),
        pytest.param({"at": datetime(2026, 3, 1, 12, 0)}, id="naive at"),
        pytest.param({"retry_at": datetime(2026, 3, 1, 12, 0)}, id="naive retry_at"),
        pytest.param({"attempt": 2**70}, id="attempt 2**70"),
        pytest.param({"attempt": 0}, id="attempt 0"),
        pytest.param({"worker": "w" * 10_000}, id="long worker"),
        pytest.param({"error": "e" * 1_000_000}, id="long error"),
        pytest.param({"result": {"blob": "x" * (10 * 1024 * 1024)}}, id="10 MB result"),
        pytest.param({"result": {"ratio": math.nan}}, id="nan in result"),
        pytest.param({"result": {"nested": [{"value": math.inf}]}}, id="inf deep in result"),
    ],
)
def test_lifecycle_out_of_bounds_is_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        TaskLifecycle.model_validate(_lifecycle(**overrides))


def test_lifecycle_bounds_hold_for_json_input() -> None:
    good = TaskLifecycle.model_validate(_lifecycle()).model_dump_json()
    TaskLifecycle.model_validate_json(good)
    for bad in ('"duration_ms":1e300', '"duration_ms":Infinity', '"duration_ms":NaN'):
        text = re.sub(r'"duration_ms":[^,}]+', bad, good)
        assert bad in text
        with pytest.raises(ValidationError):
            TaskLifecycle.model_validate_json(text)
    with pytest.raises(ValidationError):
        TaskLifecycle.model_validate_json(good.replace('"result":{', '"result":{"x":NaN,'))


def test_a_batch_mixing_naive_and_aware_times_is_refused() -> None:
    aware = _lifecycle()
    naive = _lifecycle(at="2026-03-01T12:00:01")
    TaskLifecycle.model_validate(aware)
    with pytest.raises(ValidationError):
        TaskLifecycle.model_validate(naive)


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"in_flight": 2**70}, id="in_flight 2**70"),
        pytest.param({"in_flight": -1}, id="negative in_flight"),
        pytest.param({"processed": 2**70}, id="processed 2**70"),
        pytest.param({"started_at": "2026-03-01T12:00:00"}, id="naive started_at"),
        pytest.param({"queues": ["q"] * 10_000}, id="10000 queues"),
        pytest.param({"service": "s" * 1000}, id="long service"),
    ],
)
def test_heartbeat_out_of_bounds_is_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Heartbeat.model_validate(_heartbeat(**overrides))


def test_runtime_validation_refuses_the_payload() -> None:
    """What the runtime does with a delivery: the envelope parses, its payload does not."""
    body = Envelope(
        type="task.succeeded", payload=_lifecycle(duration_ms=1e300), task_id=uuid4()
    ).model_dump_json()
    envelope = Envelope.model_validate_json(body)
    with pytest.raises(ValidationError):
        catalog.lookup(envelope.type).payload.model_validate(envelope.payload)


def test_envelope_payload_is_bounded() -> None:
    Envelope(type="task.succeeded", payload=_lifecycle())
    with pytest.raises(ValidationError):
        Envelope(type="task.succeeded", payload={"blob": "x" * (10 * 1024 * 1024)})
    with pytest.raises(ValidationError):
        Envelope.model_validate_json('{"type": "task.succeeded", "payload": {"x": NaN}}')
    with pytest.raises(ValidationError):
        Envelope(type="task.succeeded", version=2**70)


def test_free_form_data_is_bounded() -> None:
    base = {"notification_type": "password_expiry_warning", "user_id": 1}
    SendNotification.model_validate({**base, "additional_data": {"days_until_expiry": 7}})
    with pytest.raises(ValidationError):
        SendNotification.model_validate({**base, "additional_data": {"x": "y" * 100_000}})
    with pytest.raises(ValidationError):
        SendNotification.model_validate({**base, "additional_data": {"days": math.inf}})
    # A string that merely spells NaN is data, not a number.
    SendNotification.model_validate({**base, "additional_data": {"note": "NaN Infinity"}})


def _deal(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "deal_id": "d-1",
        "organization_id": "org-1",
        "client_name": "ACME",
        "value": "1000.00",
        "currency": "USD",
        "created_at": NOW.isoformat(),
    }
    fields.update(overrides)
    return fields


def test_money_and_rates_are_bounded() -> None:
    Deal.model_validate(_deal(value="99999999999999.9999"))
    for value in ("1e300", str(10**14), "NaN", "Infinity", "-1", "0." + "0" * 100 + "1"):
        with pytest.raises(ValidationError):
            Deal.model_validate(_deal(value=value))
    with pytest.raises(ValidationError):
        Deal.model_validate(_deal(value="0" * 1000 + "1"))
    CommissionTier(up_to=Decimal("1000"), rate=Decimal("0.0375"))
    with pytest.raises(ValidationError):
        CommissionTier(up_to=None, rate=Decimal("NaN"))
    with pytest.raises(ValidationError):
        CommissionTier(up_to=None, rate=Decimal("0." + "1" * 30))


def test_lists_are_bounded() -> None:
    fields = {"organization_id": "org-1", "day": "2026-03-01", "oldest_pending_since": NOW}
    VerificationReminderDue.model_validate({**fields, "deal_ids": ["d-1"]})
    with pytest.raises(ValidationError):
        VerificationReminderDue.model_validate({**fields, "deal_ids": ["d-1"] * 100_000})
    with pytest.raises(ValidationError):
        VerificationReminderDue.model_validate(
            {**fields, "deal_ids": ["d-1"], "oldest_pending_since": "2026-03-01T00:00:00"}
        )
    with pytest.raises(ValidationError):
        Deal.model_validate(_deal(attachment_ids=["a"] * 100_000))
