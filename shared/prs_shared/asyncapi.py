"""The AsyncAPI 3.0.0 document of the platform's messages, generated from the catalog.

Every message travels as one JSON :class:`~prs_shared.messaging.envelope.Envelope` (the AMQP
body); the catalog's payload model describes the envelope's ``payload`` field. Commands are
published to the ``prs.commands`` exchange with their queue as routing key, events to the
``prs.events`` exchange with their type as routing key, so the document has one channel per
command queue and one per event type.

Regenerate the checked-in copy after changing a message::

    python -m prs_shared.asyncapi docs/asyncapi.json
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from prs_shared.messaging import catalog
from prs_shared.messaging.catalog import COMMAND_QUEUES, MessageSpec
from prs_shared.messaging.envelope import Envelope, Priority
from prs_shared.messaging.runtime import ATTEMPT_HEADER, ERROR_HEADER
from prs_shared.messaging.topology import RETRY_QUEUE_HEADER, Topology

ASYNCAPI_VERSION = "3.0.0"
AMQP_BINDING_VERSION = "0.3.0"
SCHEMA_REF = "#/components/schemas/{model}"
HEADERS_SCHEMA = "AmqpHeaders"
CORRELATION_ID = "envelopeCorrelationId"


def load_catalog() -> list[catalog.MessageSpec]:
    """Every message type of the platform (catalog.CATALOG_MODULES imported)."""
    return catalog.load_all()


def build_asyncapi() -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document (a JSON-serialisable dict) of every catalog message.

    It covers every type registered in this process once the catalog modules are imported.
    The checked-in copy comes from ``python -m prs_shared.asyncapi``, a fresh interpreter, so it
    holds exactly the catalog modules' types (a test process may have registered more).
    """
    specs = load_catalog()
    topology = Topology()
    refs, schemas = _schemas(specs)

    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}

    for spec in specs:
        messages[spec.type] = _message(spec, refs[spec.payload], refs[Envelope])

    for queue in COMMAND_QUEUES:
        commands = [s for s in specs if s.kind == "command" and s.queue == queue]
        if not commands:
            continue
        channel_id = f"commands.{queue}"
        broker_queue = topology.queue(queue)
        channels[channel_id] = {
            "address": queue,
            "title": f"Commands for the {queue} queue",
            "description": (
                f"Commands published to the `{topology.commands_exchange}` direct exchange with "
                f"routing key `{queue}`, consumed from the durable priority queue "
                f"`{broker_queue}` (dead letters in `{topology.dlq(broker_queue)}`). A sender may "
                "direct a command to another queue than its default one."
            ),
            "messages": {s.type: _ref("components", "messages", s.type) for s in commands},
            "bindings": {"amqp": _exchange_binding(topology.commands_exchange, "direct")},
        }
        for spec in commands:
            operations.update(_operations(spec, channel_id))

    for spec in specs:
        if spec.kind != "event":
            continue
        channel_id = f"events.{spec.type}"
        channels[channel_id] = {
            "address": spec.type,
            "title": f"{spec.type} events",
            "description": (
                f"Events published to the `{topology.events_exchange}` topic exchange with routing "
                f"key `{spec.type}`; each subscribing service binds its own `<service>.events` "
                f"queue. Events no service subscribes to go to `{topology.unrouted_exchange}`."
            ),
            "messages": {spec.type: _ref("components", "messages", spec.type)},
            "bindings": {"amqp": _exchange_binding(topology.events_exchange, "topic")},
        }
        operations.update(_operations(spec, channel_id))

    if HEADERS_SCHEMA in schemas:
        raise ValueError(f"a payload model is named {HEADERS_SCHEMA}; rename it")
    schemas[HEADERS_SCHEMA] = _headers_schema()
    priorities = ", ".join(f"{p.value}={p.amqp}" for p in Priority)
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "PRS Tasks messaging",
            "version": _package_version(),
            "description": (
                "Commands and events exchanged over RabbitMQ by the PRS Tasks services. Every "
                "message body is a JSON envelope (`components.schemas.Envelope`) whose `type` "
                "names the message and whose `payload` holds the message's own schema. AMQP "
                "properties mirror the envelope: `message_id` = `id`, `correlation_id` = "
                f"`correlation_id`, `type` = `type`, `priority` from `priority` ({priorities}), "
                "persistent delivery. Exchange and queue names get the `PRS_NAMESPACE` prefix when "
                "one is set."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "rabbitmq": {
                "host": "rabbitmq:5672",
                "pathname": "/",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "description": "The broker; services connect with the AMQP_URL variable.",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": schemas,
            "messages": messages,
            "correlationIds": {
                CORRELATION_ID: {
                    "description": "Shared by every message of one journey.",
                    "location": "$message.payload#/correlation_id",
                }
            },
        },
    }


def _schemas(
    specs: Sequence[MessageSpec],
) -> tuple[dict[type[BaseModel], dict[str, Any]], dict[str, Any]]:
    """JSON schemas of the envelope and every payload model, under ``components.schemas``."""
    models: list[type[BaseModel]] = [Envelope]
    for spec in specs:
        if spec.payload not in models:
            models.append(spec.payload)
    keys, top = models_json_schema([(m, "validation") for m in models], ref_template=SCHEMA_REF)
    refs = {model: keys[(model, "validation")] for model in models}
    schemas: dict[str, Any] = dict(top.get("$defs", {}))
    return refs, schemas


def _message(
    spec: MessageSpec, payload_ref: dict[str, Any], envelope_ref: dict[str, Any]
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "name": spec.type,
        "title": spec.type,
        "summary": spec.description,
        "contentType": "application/json",
        "tags": [{"name": spec.kind}],
        "headers": {"$ref": SCHEMA_REF.format(model=HEADERS_SCHEMA)},
        "payload": {
            "description": f"Envelope of a {spec.type} {spec.kind}.",
            "allOf": [
                envelope_ref,
                {
                    "type": "object",
                    "properties": {
                        "type": {"const": spec.type},
                        "payload": payload_ref,
                    },
                    "required": ["type", "payload"],
                },
            ],
        },
        "correlationId": {"$ref": f"#/components/correlationIds/{CORRELATION_ID}"},
        "bindings": {"amqp": {"messageType": spec.type, "bindingVersion": AMQP_BINDING_VERSION}},
    }
    doc = inspect.getdoc(spec.payload)
    if doc:
        message["description"] = doc
    if spec.kind == "command":
        message["x-prs-default-queue"] = spec.queue
        if spec.max_retries is not None:
            message["x-prs-max-retries"] = spec.max_retries
    return message


def _operations(spec: MessageSpec, channel_id: str) -> dict[str, Any]:
    channel = _ref("channels", channel_id)
    message = [_ref("channels", channel_id, "messages", spec.type)]
    if spec.kind == "command":
        send_id, receive_id = f"{spec.type}.send", f"{spec.type}.handle"
        send_summary = f"Queue a {spec.type} task."
        receive_summary = f"Handle a {spec.type} task (one handler; retried, then dead-lettered)."
    else:
        send_id, receive_id = f"{spec.type}.publish", f"{spec.type}.subscribe"
        send_summary = f"Publish a {spec.type} event."
        receive_summary = f"Receive {spec.type} events on a service's own events queue."
    return {
        send_id: {
            "action": "send",
            "channel": channel,
            "summary": send_summary,
            "messages": message,
            "bindings": {
                "amqp": {
                    "deliveryMode": 2,
                    "mandatory": True,
                    "timestamp": True,
                    "bindingVersion": AMQP_BINDING_VERSION,
                }
            },
        },
        receive_id: {
            "action": "receive",
            "channel": channel,
            "summary": receive_summary,
            "messages": message,
            "bindings": {"amqp": {"ack": True, "bindingVersion": AMQP_BINDING_VERSION}},
        },
    }


def _ref(*path: str) -> dict[str, str]:
    """A local reference; each part escaped as a JSON pointer token (RFC 6901)."""
    tokens = (part.replace("~", "~0").replace("/", "~1") for part in path)
    return {"$ref": "#/" + "/".join(tokens)}


def _exchange_binding(name: str, kind: str) -> dict[str, Any]:
    return {
        "is": "routingKey",
        "exchange": {
            "name": name,
            "type": kind,
            "durable": True,
            "autoDelete": False,
            "vhost": "/",
        },
        "bindingVersion": AMQP_BINDING_VERSION,
    }


def _headers_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "title": "AMQP headers",
        "description": "Application headers; absent on a message's first delivery.",
        "properties": {
            ATTEMPT_HEADER: {
                "type": "integer",
                "minimum": 1,
                "description": "Attempt number of this delivery (1 when absent).",
            },
            RETRY_QUEUE_HEADER: {
                "type": "string",
                "description": "Queue a retried message returns to after its delay.",
            },
            ERROR_HEADER: {
                "type": "string",
                "description": "Error of the previous attempt.",
            },
        },
    }


def _package_version() -> str:
    try:
        return version("prs-shared")
    except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
        return "0.0.0"


def render(document: dict[str, Any]) -> str:
    """The document as the checked-in JSON text."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m prs_shared.asyncapi",
        description="Write the AsyncAPI document of the message catalog.",
    )
    parser.add_argument("path", nargs="?", default="-", help="output file ('-': standard output)")
    parser.add_argument(
        "--check",
        action="store_true",
        help="do not write; exit 1 if the file differs from the generated document",
    )
    args = parser.parse_args(argv)
    text = render(build_asyncapi())
    if args.path == "-":
        if args.check:
            parser.error("--check needs a path")
        sys.stdout.write(text)
        return 0
    path = Path(args.path)
    if args.check:
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            print(f"{path} is out of date; run: python -m prs_shared.asyncapi {path}")
            return 1
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
