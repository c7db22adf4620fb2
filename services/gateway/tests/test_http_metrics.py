"""The gateway's /metrics counts and times HTTP requests by route template and status."""

from __future__ import annotations

import uuid

from prometheus_client.parser import text_string_to_metric_families

from .conftest import Gateway

STATUS_ROUTE = "/api/background-tasks/{task_id}/status/"


async def _samples(gateway: Gateway, name: str) -> list[tuple[dict[str, str], float]]:
    response = await gateway.client.get("/metrics")
    assert response.status_code == 200
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == name
    ]


async def _count(gateway: Gateway, **labels: str) -> float:
    return sum(
        value
        for found, value in await _samples(gateway, "prs_http_requests_total")
        if all(found.get(k) == v for k, v in labels.items())
    )


async def test_a_request_is_counted_under_its_route_template_not_its_raw_path(
    gateway: Gateway,
) -> None:
    task_id = uuid.uuid4()
    before = await _count(gateway, method="GET", route=STATUS_ROUTE, status="404")
    response = await gateway.client.get(
        f"/api/background-tasks/{task_id}/status/", headers=gateway.auth()
    )
    assert response.status_code == 404
    assert await _count(gateway, method="GET", route=STATUS_ROUTE, status="404") == before + 1
    samples = await _samples(gateway, "prs_http_requests_total")
    assert not [labels for labels, _ in samples if str(task_id) in labels["route"]]
    durations = await _samples(gateway, "prs_http_request_duration_seconds_count")
    timed = [v for labels, v in durations if labels["route"] == STATUS_ROUTE]
    assert sum(timed) >= 1


async def test_refusals_before_routing_and_unknown_paths_are_counted_without_the_path(
    gateway: Gateway,
) -> None:
    before_unmatched = await _count(gateway, route="unmatched", status="404")
    before_401 = await _count(gateway, route=STATUS_ROUTE, status="401")
    assert (await gateway.client.get(f"/no/such/{uuid.uuid4()}")).status_code == 404
    assert (
        await gateway.client.get(f"/api/background-tasks/{uuid.uuid4()}/status/")
    ).status_code == 401
    assert await _count(gateway, route="unmatched", status="404") == before_unmatched + 1
    assert await _count(gateway, route=STATUS_ROUTE, status="401") == before_401 + 1


async def test_a_body_refused_by_the_size_limit_is_counted_under_its_route(
    gateway: Gateway,
) -> None:
    route = "/api/background-tasks/queue-diagnostic/"
    before = await _count(gateway, method="POST", route=route, status="413")
    body = b"{" + b" " * (gateway.settings.max_json_bytes + 10) + b"}"
    response = await gateway.client.post(
        route,
        content=body,
        headers={**gateway.auth(), "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert await _count(gateway, method="POST", route=route, status="413") == before + 1
