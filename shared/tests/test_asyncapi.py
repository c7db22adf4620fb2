"""The AsyncAPI document: complete, its schemas accept real messages, the checked-in copy current."""

from __future__ import annotations

import enum
import json
import re
import subprocess
import sys
import types
import typing
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from uuid import UUID, uuid4

import hypothesis
import pytest
from hypothesis import strategies as st
from pydantic import AwareDatetime, BaseModel, EmailStr, ValidationError
from pydantic.fields import FieldInfo

from prs_shared.asyncapi import build_asyncapi, load_catalog, render
from prs_shared.messaging.catalog import MessageSpec
from prs_shared.messaging.envelope import Envelope, Priority
from prs_shared.messaging.messages import Heartbeat, Ping, TaskLifecycle, TaskStatus
from prs_shared.messaging.runtime import ATTEMPT_HEADER, ERROR_HEADER
from prs_shared.messaging.topology import RETRY_QUEUE_HEADER

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.json"
REGENERATE = ".venv/bin/python -m prs_shared.asyncapi docs/asyncapi.json"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
NO_DATABASE = hypothesis.settings(database=None)

EXAMPLES: dict[type[BaseModel], list[BaseModel]] = {
    Ping: [Ping(), Ping(note="hello")],
    TaskLifecycle: [
        TaskLifecycle(
            task_id=uuid4(),
            task_type="diagnostic.ping",
            status=TaskStatus.SUCCEEDED,
            queue="system",
            service="notifier",
            worker="notifier@host:1",
            attempt=1,
            at=NOW,
            duration_ms=1.5,
            result={"service": "notifier"},
        ),
        TaskLifecycle(
            task_id=uuid4(),
            task_type="diagnostic.ping",
            status=TaskStatus.RETRYING,
            queue="system",
            service="notifier",
            worker="notifier@host:1",
            attempt=2,
            at=NOW,
            error="TimeoutError: slow",
            retry_at=NOW,
        ),
    ],
    Heartbeat: [
        Heartbeat(
            service="scheduler",
            worker="scheduler@host:7",
            started_at=NOW,
            queues=["scheduler.events"],
            in_flight=0,
            processed=12,
        )
    ],
}
"""Hand-written payloads; other models get one built from their field types."""


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_asyncapi()


def test_document_has_every_catalog_type(document: dict[str, Any]) -> None:
    specs = load_catalog()
    assert specs
    messages = document["components"]["messages"]
    assert set(messages) == {s.type for s in specs}
    channel_messages = {
        ref["$ref"].rsplit("/", 1)[-1]
        for channel in document["channels"].values()
        for ref in channel["messages"].values()
    }
    assert channel_messages == {s.type for s in specs}
    for spec in specs:
        message = messages[spec.type]
        assert message["name"] == spec.type
        assert message["summary"] == spec.description
        assert message["tags"] == [{"name": spec.kind}]
        channel_id = f"commands.{spec.queue}" if spec.kind == "command" else f"events.{spec.type}"
        channel = document["channels"][channel_id]
        assert spec.type in channel["messages"]
        expected_exchange = "prs.commands" if spec.kind == "command" else "prs.events"
        assert channel["bindings"]["amqp"]["exchange"]["name"] == expected_exchange
        assert channel["address"] == (spec.queue if spec.kind == "command" else spec.type)
        actions = sorted(
            op["action"]
            for op in document["operations"].values()
            if op["channel"]["$ref"] == f"#/channels/{channel_id}"
            and any(m["$ref"].endswith(f"/messages/{spec.type}") for m in op["messages"])
        )
        assert actions == ["receive", "send"]


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    refs = list(_refs(document))
    assert refs
    for ref in refs:
        _resolve(document, ref)
    for op_id, op in document["operations"].items():
        channel_ref = op["channel"]["$ref"]
        for message in op["messages"]:
            assert message["$ref"].startswith(channel_ref + "/messages/"), op_id


@pytest.mark.parametrize("spec", load_catalog(), ids=lambda s: s.type)
def test_payload_schema_accepts_real_messages(document: dict[str, Any], spec: MessageSpec) -> None:
    message = document["components"]["messages"][spec.type]
    body_schema = message["payload"]
    payload_schema = body_schema["allOf"][1]["properties"]["payload"]
    for example in _examples(spec.payload):
        payload = example.model_dump(mode="json")
        _validate(document, payload_schema, payload)
        body = Envelope(type=spec.type, payload=payload, priority=Priority.HIGH)
        _validate(document, body_schema, body.model_dump(mode="json"))
        headers = {ATTEMPT_HEADER: 2, RETRY_QUEUE_HEADER: "system", ERROR_HEADER: "ValueError: x"}
        _validate(document, message["headers"], headers)


def test_payload_schema_rejects_wrong_messages(document: dict[str, Any]) -> None:
    messages = document["components"]["messages"]
    ping = messages["diagnostic.ping"]["payload"]
    good = Envelope(type="diagnostic.ping", payload={}).model_dump(mode="json")
    _validate(document, ping, good)
    wrong: list[dict[str, Any]] = [
        {**good, "type": "task.started"},
        {**good, "payload": {"unknown": 1}},
        {**good, "payload": {"note": "x" * 501}},
        {**good, "priority": "urgent"},
        {key: value for key, value in good.items() if key != "payload"},
    ]
    for body in wrong:
        with pytest.raises(SchemaError):
            _validate(document, ping, body)
    lifecycle = messages["task.started"]["payload"]["allOf"][1]["properties"]["payload"]
    started = EXAMPLES[TaskLifecycle][0].model_dump(mode="json")
    with pytest.raises(SchemaError):
        _validate(document, lifecycle, {**started, "attempt": 0})
    with pytest.raises(SchemaError):
        _validate(document, lifecycle, {**started, "task_id": "not-a-uuid"})


def test_checked_in_document_is_current() -> None:
    # A fresh interpreter, as the regeneration command runs: this test process's catalog also
    # holds the test kit's probe messages, which are not part of the document.
    generated = subprocess.run(
        [sys.executable, "-m", "prs_shared.asyncapi", "-"],
        capture_output=True,
        text=True,
        check=True,
        cwd=DOC_PATH.parents[1],
    ).stdout
    current = DOC_PATH.read_text(encoding="utf-8") if DOC_PATH.exists() else ""
    if current != generated:
        pytest.fail(
            f"{DOC_PATH.name} is out of date with the message catalog; regenerate it from the "
            f"repository root with:\n    {REGENERATE}",
            pytrace=False,
        )


def test_generated_document_is_the_rendered_build(document: dict[str, Any]) -> None:
    assert json.loads(render(document)) == document


# --- examples ----------------------------------------------------------------------------------


def _examples(model: type[BaseModel]) -> list[BaseModel]:
    """Hand-written examples, else the model's own schema examples, else one built from its fields."""
    if model in EXAMPLES:
        return EXAMPLES[model]
    declared = model.model_json_schema().get("examples")
    if declared:
        return [model.model_validate(example) for example in declared]
    errors: list[str] = []
    for fill_optional in (False, True):
        try:
            return [model.model_validate(_fields_of(model, fill_optional=fill_optional))]
        except (ValidationError, TypeError) as exc:
            errors.append(str(exc))
    pytest.fail(
        f"cannot build an example of {model.__name__} ({errors[-1]}); give the model schema "
        f"examples (json_schema_extra) or add one to EXAMPLES in {Path(__file__).name}",
        pytrace=False,
    )


def _fields_of(model: type[BaseModel], *, fill_optional: bool = False) -> dict[str, Any]:
    """Values for the required fields (and, with ``fill_optional``, those defaulting to None)."""
    return {
        name: _value(field.annotation, field.metadata)
        for name, field in model.model_fields.items()
        if field.is_required() or (fill_optional and field.default is None)
    }


def _value(annotation: Any, metadata: list[Any]) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _value(args[0], [*metadata, *args[1:]])
    if origin in (typing.Union, types.UnionType):
        return _value(next(a for a in args if a is not type(None)), metadata)
    if origin is Literal:
        return args[0]
    if origin in (list, set, frozenset, tuple):
        return [_value(args[0], [])] if args else []
    if origin is dict:
        return {}
    if annotation is EmailStr:
        return "someone@example.com"
    if annotation is AwareDatetime:
        return NOW.isoformat()
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return _fields_of(annotation)
        if issubclass(annotation, enum.Enum):
            return next(iter(annotation)).value
        if issubclass(annotation, bool):
            return True
        if issubclass(annotation, int | float | Decimal):
            return _number(metadata)
        if issubclass(annotation, str):
            return _text(metadata)
        if issubclass(annotation, UUID):
            return str(uuid4())
        if issubclass(annotation, datetime):
            return NOW.isoformat()
        if issubclass(annotation, date):
            return NOW.date().isoformat()
    raise TypeError(f"no example value for {annotation!r}")


def _constraint(metadata: list[Any], name: str) -> Any:
    for item in metadata:
        if isinstance(item, FieldInfo):
            found = _constraint(item.metadata, name)
        else:
            found = getattr(item, name, None)
        if found is not None:
            return found
    return None


def _number(metadata: list[Any]) -> int:
    ge, gt, le = (_constraint(metadata, name) for name in ("ge", "gt", "le"))
    value = int(ge) if ge is not None else int(gt) + 1 if gt is not None else 1
    return min(value, int(le)) if le is not None else value


def _text(metadata: list[Any]) -> str:
    pattern = _constraint(metadata, "pattern")
    if pattern is not None:
        strategy = st.from_regex(pattern, fullmatch=True)
        return str(hypothesis.find(strategy, lambda _: True, settings=NO_DATABASE))
    return "x" * max(1, int(_constraint(metadata, "min_length") or 1))


# --- a JSON Schema validator for the keywords pydantic emits -----------------------------------


class SchemaError(AssertionError):
    """An instance does not match its schema."""


ANNOTATIONS = {"title", "description", "default", "examples", "deprecated", "readOnly", "writeOnly"}
TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


def _validate(root: dict[str, Any], schema: Any, instance: Any, path: str = "$") -> None:
    if schema is True:
        return
    if schema is False:
        raise SchemaError(f"{path}: no value is allowed here")
    unknown = set(schema) - ANNOTATIONS - set(_KEYWORDS)
    if unknown:
        raise NotImplementedError(f"{path}: keywords {sorted(unknown)} are not checked")
    checks = dict.fromkeys(check for keyword, check in _KEYWORDS.items() if keyword in schema)
    for check in checks:
        check(root, schema, instance, path)


def _check_ref(root: dict[str, Any], schema: Any, instance: Any, path: str) -> None:
    _validate(root, _resolve(root, schema["$ref"]), instance, path)


def _check_type(root: dict[str, Any], schema: Any, instance: Any, path: str) -> None:
    names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    for name in names:
        kinds = TYPES[name]
        if isinstance(instance, bool) and bool not in kinds:
            continue
        if isinstance(instance, kinds):
            return
    raise SchemaError(f"{path}: {instance!r} is not of type {names}")


def _check_properties(root: dict[str, Any], schema: Any, instance: Any, path: str) -> None:
    if not isinstance(instance, dict):
        return
    for name, sub in schema["properties"].items():
        if name in instance:
            _validate(root, sub, instance[name], f"{path}.{name}")


def _check_required(root: dict[str, Any], schema: Any, instance: Any, path: str) -> None:
    if isinstance(instance, dict):
        missing = [name for name in schema["required"] if name not in instance]
        if missing:
            raise SchemaError(f"{path}: missing {missing}")


def _check_additional(root: dict[str, Any], schema: Any, instance: Any, path: str) -> None:
    if not isinstance(instance, dict):
        return
    extra = set(instance) - set(schema.get("properties", {}))
    for name in sorted(extra):
        _validate(root, schema["additionalProperties"], instance[name], f"{path}.{name}")


def _check_items(root: dict[str, Any], schema: Any, instance: Any, path: str) -> None:
    if isinstance(instance, list):
        for index, item in enumerate(instance):
            _validate(root, schema["items"], item, f"{path}[{index}]")


def _check_all_of(root: dict[str, Any], schema: Any, instance: Any, path: str) -> None:
    for sub in schema["allOf"]:
        _validate(root, sub, instance, path)


def _check_any_of(root: dict[str, Any], schema: Any, instance: Any, path: str) -> None:
    if _matches(root, schema["anyOf"], instance, path) == 0:
        raise SchemaError(f"{path}: {instance!r} matches none of anyOf")


def _check_one_of(root: dict[str, Any], schema: Any, instance: Any, path: str) -> None:
    if _matches(root, schema["oneOf"], instance, path) != 1:
        raise SchemaError(f"{path}: {instance!r} does not match exactly one of oneOf")


def _matches(root: dict[str, Any], options: list[Any], instance: Any, path: str) -> int:
    count = 0
    for sub in options:
        try:
            _validate(root, sub, instance, path)
        except SchemaError:
            continue
        count += 1
    return count


def _check_enum(root: dict[str, Any], schema: Any, instance: Any, path: str) -> None:
    if instance not in schema["enum"]:
        raise SchemaError(f"{path}: {instance!r} not in {schema['enum']}")


def _check_const(root: dict[str, Any], schema: Any, instance: Any, path: str) -> None:
    if instance != schema["const"]:
        raise SchemaError(f"{path}: {instance!r} != {schema['const']!r}")


def _check_size(root: dict[str, Any], schema: Any, instance: Any, path: str) -> None:
    if isinstance(instance, str):
        low, high = schema.get("minLength", 0), schema.get("maxLength")
    elif isinstance(instance, list):
        low, high = schema.get("minItems", 0), schema.get("maxItems")
    else:
        return
    if len(instance) < low or (high is not None and len(instance) > high):
        raise SchemaError(f"{path}: length {len(instance)} outside [{low}, {high}]")


def _check_range(root: dict[str, Any], schema: Any, instance: Any, path: str) -> None:
    if not isinstance(instance, int | float) or isinstance(instance, bool):
        return
    if "minimum" in schema and instance < schema["minimum"]:
        raise SchemaError(f"{path}: {instance} < {schema['minimum']}")
    if "maximum" in schema and instance > schema["maximum"]:
        raise SchemaError(f"{path}: {instance} > {schema['maximum']}")
    if "exclusiveMinimum" in schema and instance <= schema["exclusiveMinimum"]:
        raise SchemaError(f"{path}: {instance} <= {schema['exclusiveMinimum']}")
    if "exclusiveMaximum" in schema and instance >= schema["exclusiveMaximum"]:
        raise SchemaError(f"{path}: {instance} >= {schema['exclusiveMaximum']}")


def _check_pattern(root: dict[str, Any], schema: Any, instance: Any, path: str) -> None:
    if isinstance(instance, str) and not re.search(schema["pattern"], instance):
        raise SchemaError(f"{path}: {instance!r} does not match {schema['pattern']}")


def _check_format(root: dict[str, Any], schema: Any, instance: Any, path: str) -> None:
    if not isinstance(instance, str):
        return
    fmt = schema["format"]
    try:
        if fmt == "uuid":
            ok = bool(UUID_RE.match(instance))
        elif fmt == "date-time":
            ok = datetime.fromisoformat(instance.replace("Z", "+00:00")).tzinfo is not None
        elif fmt == "date":
            date.fromisoformat(instance)
            ok = True
        else:
            ok = True
    except ValueError:
        ok = False
    if not ok:
        raise SchemaError(f"{path}: {instance!r} is not a {fmt}")


_KEYWORDS = {
    "$ref": _check_ref,
    "type": _check_type,
    "properties": _check_properties,
    "required": _check_required,
    "additionalProperties": _check_additional,
    "items": _check_items,
    "allOf": _check_all_of,
    "anyOf": _check_any_of,
    "oneOf": _check_one_of,
    "enum": _check_enum,
    "const": _check_const,
    "minLength": _check_size,
    "maxLength": _check_size,
    "minItems": _check_size,
    "maxItems": _check_size,
    "minimum": _check_range,
    "maximum": _check_range,
    "exclusiveMinimum": _check_range,
    "exclusiveMaximum": _check_range,
    "pattern": _check_pattern,
    "format": _check_format,
}


def _resolve(root: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"only local references are used: {ref}"
    node: Any = root
    for token in ref[2:].split("/"):
        key = token.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict), f"unresolved reference {ref}"
        assert key in node, f"unresolved reference {ref}"
        node = node[key]
    return node


def _refs(node: Any) -> typing.Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)
