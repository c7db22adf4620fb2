"""docker-compose.yml and its cluster variant scale as docs/deploy.md says.

There is no Docker engine where the tests run, so the files are read as Compose reads them
(YAML with anchors, merge keys and Compose's !override / !reset tags) and checked for what
`docker compose up --scale gateway=2 --scale deal-workflow=3` needs: no fixed host port and no
container_name on a service that scales, one load balancer in front of the gateway, and in the
cluster variant three broker nodes in every service's AMQP_URL with quorum queues.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
CLUSTER = REPO / "deploy" / "compose.cluster.yml"
NGINX_CONF = REPO / "deploy" / "nginx" / "gateway.conf"
PROMETHEUS = REPO / "deploy" / "prometheus"

PRS_SERVICES = ("gateway", "deal-workflow", "file-processor", "notifier", "scheduler")
PUBLISHING = {"gateway-lb", "rabbitmq", "rabbit-1", "prometheus", "grafana"}
"""The services that may publish a host port: the load balancer, the UIs (one container each)."""
NODES = ("rabbit-1", "rabbit-2", "rabbit-3")


class ComposeLoader(yaml.SafeLoader):
    """PyYAML's safe loader plus Compose's tags, whose values are read as they are."""


def _tagged(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    assert isinstance(node, yaml.ScalarNode)
    return loader.construct_scalar(node)


for _tag in ("!override", "!reset"):
    ComposeLoader.add_constructor(_tag, _tagged)


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.load(path.read_text(), Loader=ComposeLoader)
    return document


def merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """The cluster variant's services as `docker compose -f base -f override` merges them.

    Compose merges mappings (environment, depends_on) key by key; `!override` replaces a
    value instead, which the override file uses for depends_on. Scalars and `command` are
    replaced, and other lists (ports, volumes) are added to.
    """
    services = {name: dict(spec) for name, spec in base["services"].items()}
    replaced = _override_keys(CLUSTER.read_text())
    for name, spec in override["services"].items():
        target = services.setdefault(name, {})
        for key, value in spec.items():
            if (name, key) in replaced or key == "command" or key not in target:
                target[key] = value
            elif isinstance(value, dict):
                target[key] = {**target[key], **value}
            elif isinstance(value, list):
                target[key] = [*target[key], *value]
            else:
                target[key] = value
    return services


def _override_keys(text: str) -> set[tuple[str, str]]:
    """(service, key) of every `key: !override` under `services:` in the override file."""
    found: set[tuple[str, str]] = set()
    service = None
    in_services = False
    for line in text.splitlines():
        if re.match(r"^\S", line):
            in_services = line.startswith("services:")
            service = None
        elif in_services and (match := re.match(r"^  ([\w-]+):\s*$", line)):
            service = match.group(1)
        elif service and (match := re.match(r"^    ([\w-]+): !override", line)):
            found.add((service, match.group(1)))
    return found


def host_ports(spec: dict[str, Any]) -> list[Any]:
    return list(spec.get("ports", []))


def runs(spec: dict[str, Any]) -> bool:
    """Whether `docker compose up` (no --profile) starts the service."""
    return not spec.get("profiles")


def amqp_hosts(url_list: str) -> list[str]:
    return [re.sub(r"^amqp://[^@]*@", "", url).split(":")[0] for url in url_list.split(",")]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load(COMPOSE)


@pytest.fixture(scope="module")
def cluster(compose: dict[str, Any]) -> dict[str, Any]:
    return merged(compose, load(CLUSTER))


def test_no_prs_service_publishes_a_host_port_or_names_its_container(
    compose: dict[str, Any], cluster: dict[str, Any]
) -> None:
    for services in (compose["services"], cluster):
        for name in PRS_SERVICES:
            assert host_ports(services[name]) == [], f"{name} publishes a host port"
            assert "container_name" not in services[name], f"{name} has a container_name"


def test_only_the_load_balancer_and_the_single_container_uis_publish_ports(
    compose: dict[str, Any], cluster: dict[str, Any]
) -> None:
    for services in (compose["services"], cluster):
        publishing = {name for name, spec in services.items() if runs(spec) and host_ports(spec)}
        assert publishing <= PUBLISHING, publishing - PUBLISHING
        assert "gateway-lb" in publishing


def test_the_load_balancer_publishes_the_gateway_port_and_proxies_to_every_replica(
    compose: dict[str, Any],
) -> None:
    lb = compose["services"]["gateway-lb"]
    assert re.fullmatch(r"nginx:1\.\d+(\.\d+)?-alpine", lb["image"]), "pin nginx's version"
    assert lb["ports"] == [
        "${PRS_PUBLISH_HOST:-127.0.0.1}:${PRS_GATEWAY_PUBLISHED_PORT:-8000}:8000"
    ]
    assert "./deploy/nginx/gateway.conf:/etc/nginx/conf.d/default.conf:ro" in lb["volumes"]
    assert lb["depends_on"]["gateway"]["condition"] == "service_healthy"
    assert "/readyz" in " ".join(lb["healthcheck"]["test"])


def test_the_gateway_believes_forwarded_addresses_from_the_load_balancer_only(
    compose: dict[str, Any],
) -> None:
    environment = compose["services"]["gateway"]["environment"]
    trusted = environment["PRS_TRUSTED_PROXIES"]
    assert trusted.startswith("${PRS_TRUSTED_PROXIES:-")
    assert "*" not in trusted
    # Replicas share console sessions only with one secret.
    assert environment["PRS_CONSOLE_SECRET"].startswith("${PRS_CONSOLE_SECRET:?")


def test_nginx_resolves_the_gateway_at_request_time_through_dockers_dns() -> None:
    conf = NGINX_CONF.read_text()
    assert re.search(r"^resolver 127\.0\.0\.11 valid=\d+s", conf, re.MULTILINE)
    assert re.search(r"set \$gateway gateway:8000;", conf)
    passes = re.findall(r"proxy_pass (\S+);", conf)
    assert passes, "no proxy_pass"
    assert set(passes) == {"http://$gateway"}, passes
    assert "listen 8000;" in conf
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in conf


def test_the_console_event_stream_is_not_buffered_by_the_proxy() -> None:
    conf = NGINX_CONF.read_text()
    feed = re.search(r"location = /console/tasks/feed \{(.*?)\}", conf, re.DOTALL)
    assert feed is not None
    assert "proxy_buffering off;" in feed.group(1)
    feed_route = REPO / "services/gateway/gateway/console/tasks.py"
    assert '@router.get("/tasks/feed")' in feed_route.read_text()


def test_the_single_broker_file_keeps_classic_queues_by_default(compose: dict[str, Any]) -> None:
    assert compose["x-prs-environment"]["PRS_QUEUE_TYPE"] == "${PRS_QUEUE_TYPE:-classic}"


def test_every_prs_service_of_the_cluster_variant_lists_the_three_nodes_with_quorum_queues(
    cluster: dict[str, Any],
) -> None:
    for name in PRS_SERVICES:
        environment = cluster[name]["environment"]
        assert sorted(amqp_hosts(environment["AMQP_URL"])) == list(NODES), name
        assert environment["PRS_QUEUE_TYPE"] == "quorum", name
        assert set(cluster[name]["depends_on"]) == {*NODES, "postgres"}, name


def test_the_cluster_variant_replaces_the_single_broker_with_three_nodes(
    cluster: dict[str, Any],
) -> None:
    assert not runs(cluster["rabbitmq"])
    cookies = set()
    for node in NODES:
        spec = cluster[node]
        assert runs(spec)
        assert spec["hostname"] == node
        assert (
            "./deploy/rabbitmq/cluster.conf:/etc/rabbitmq/conf.d/20-cluster.conf:ro"
            in (spec["volumes"])
        )
        cookies.add(spec["environment"]["RABBITMQ_ERLANG_COOKIE"])
    # One cookie for all three, from the environment (deploy/new-env writes it).
    assert len(cookies) == 1
    (cookie,) = cookies
    assert cookie.startswith("${RABBITMQ_ERLANG_COOKIE:?")
    # rabbit-1 forms the cluster; the others join it once it is up.
    assert set(cluster["rabbit-2"]["depends_on"]) == {"rabbit-1"}
    assert set(cluster["rabbit-3"]["depends_on"]) == {"rabbit-1"}
    conf = (REPO / "deploy/rabbitmq/cluster.conf").read_text()
    assert "cluster_formation.peer_discovery_backend = classic_config" in conf
    for index, node in enumerate(NODES, start=1):
        assert f"cluster_formation.classic_config.nodes.{index} = rabbit@{node}" in conf


def test_prometheus_discovers_every_replica_of_every_prs_service() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for name in PRS_SERVICES:
        (discovery,) = jobs[name]["dns_sd_configs"]
        assert discovery["names"] == [name]
        assert discovery["type"] == "A"


def test_the_cluster_variant_scrapes_the_three_nodes_and_is_otherwise_the_same(
    cluster: dict[str, Any],
) -> None:
    single = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    clustered = yaml.safe_load((PROMETHEUS / "prometheus.cluster.yml").read_text())
    assert (
        "--config.file=/etc/prometheus/prometheus.cluster.yml" in cluster["prometheus"]["command"]
    )

    def without_rabbitmq(config: dict[str, Any]) -> dict[str, Any]:
        jobs = [job for job in config["scrape_configs"] if job["job_name"] != "rabbitmq"]
        return {**config, "scrape_configs": jobs}

    assert without_rabbitmq(clustered) == without_rabbitmq(single)
    (rabbitmq,) = [job for job in clustered["scrape_configs"] if job["job_name"] == "rabbitmq"]
    (targets,) = rabbitmq["static_configs"]
    assert targets["targets"] == [f"{node}:15692" for node in NODES]
    assert rabbitmq["metrics_path"] == "/metrics/per-object"


def test_an_alert_fires_when_no_scheduler_replica_or_more_than_one_holds_the_lease() -> None:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    alerts = {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"]}
    lease = alerts["PrsSchedulerLeaseUnheld"]
    assert 'sum(prs_scheduler_leader{job="scheduler"}) != 1' in lease["expr"]
    metrics = (REPO / "services/scheduler/scheduler/metrics.py").read_text()
    assert 'Gauge("prs_scheduler_leader"' in metrics
    # The other signals docs/deploy.md names for a scaled deployment.
    assert {"PrsInstanceDown", "PrsQueueWithoutConsumers", "PrsStalledTasks"} <= set(alerts)


NEW_ENV = REPO / "deploy" / "new-env"
SECRET_NAME = re.compile(r"PASSWORD|SECRET|API_KEY|COOKIE")


def _interpolations(path: Path) -> list[tuple[str, str, str]]:
    """(variable, operator, rest) of every ${...} in a compose file."""
    return re.findall(r"\$\{(\w+)(:?[-?])?([^}]*)\}", path.read_text())


def test_no_credential_has_a_default_and_a_missing_one_says_what_to_run() -> None:
    for path in (COMPOSE, CLUSTER):
        secrets = [i for i in _interpolations(path) if SECRET_NAME.search(i[0])]
        assert secrets, path
        for name, operator, message in secrets:
            # A default in a public repository is a public password.
            assert operator == ":?", f"{path.name}: {name} has a default"
            assert "deploy/new-env" in message, f"{path.name}: {name}: {message!r}"


def test_new_env_writes_a_random_value_for_every_required_variable_and_never_overwrites(
    tmp_path: Path,
) -> None:
    required = {
        name for path in (COMPOSE, CLUSTER) for name, op, _ in _interpolations(path) if op == ":?"
    }
    made = []
    for name in ("one.env", "two.env"):
        target = tmp_path / name
        done = subprocess.run([str(NEW_ENV), str(target)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert target.stat().st_mode & 0o077 == 0, "readable by others"
        values = dict(
            line.split("=", 1)
            for line in target.read_text().splitlines()
            if line and not line.startswith("#")
        )
        assert required <= set(values), required - set(values)
        for name_, value in values.items():
            assert re.fullmatch(r"[0-9a-f]{32,}", value), f"{name_}={value!r}"
        made.append(values)
    assert all(made[0][name] != made[1][name] for name in required)
    before = (tmp_path / "one.env").read_text()
    again = subprocess.run(
        [str(NEW_ENV), str(tmp_path / "one.env")], capture_output=True, text=True
    )
    assert again.returncode == 1
    assert "exists" in again.stderr
    assert (tmp_path / "one.env").read_text() == before
