"""The deployment files agree with the app: probe paths it answers, the port the image serves, grace periods that
outlast the drain, and every setting they pass read by the code."""

from __future__ import annotations

import asyncio
import ipaddress
import re
from functools import cache
from pathlib import Path

import pytest
import yaml
from code_names import CodeNames, code_names
from deploy_helpers import DEPLOY, compose, kubernetes, shipped_settings, trainer_sessions
from fastapi.testclient import TestClient

from metric_tracker_rl.serving.lifecycle import READY_PATH, STEP_GRACE_S
from metric_tracker_rl.settings import DEFAULT_DRAIN_S, ServerSettings

ROOT = Path(__file__).resolve().parents[1]
CODE = [*ROOT.glob("metric_tracker_rl/**/*.py"), *ROOT.glob("server/*.py"), ROOT / "inference.py"]

DRAIN_VAR = "METRIC_TRACKER_DRAIN_S"
FORWARDED_VAR = "FORWARDED_ALLOW_IPS"


def image_port() -> int:
    (port,) = re.findall(r"^EXPOSE (\d+)$", (ROOT / "Dockerfile").read_text(), re.M)
    return int(port)


@cache
def used_names() -> CodeNames:
    return code_names(CODE)


def read_by_the_code(name: str) -> bool:
    """Spelt as a string the code uses (an environment key, a settings alias), not only named in a comment."""
    return used_names().reads_setting(name)


@pytest.fixture(scope="module")
def app_client() -> TestClient:
    import os

    from metric_tracker_rl.serving.app import build_app

    previous = os.environ.get("ENABLE_WEB_INTERFACE")
    os.environ["ENABLE_WEB_INTERFACE"] = "false"
    try:
        return TestClient(build_app())
    finally:
        if previous is None:
            del os.environ["ENABLE_WEB_INTERFACE"]
        else:
            os.environ["ENABLE_WEB_INTERFACE"] = previous


def test_the_kubernetes_probes_ask_what_the_app_answers(app_client: TestClient) -> None:
    deployment = kubernetes()["Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": image_port()}
    readiness, liveness = container["readinessProbe"]["httpGet"], container["livenessProbe"]["httpGet"]
    assert readiness == {"path": READY_PATH, "port": "http"} and liveness == {"path": "/health", "port": "http"}
    for probe in (readiness, liveness):
        assert app_client.get(probe["path"]).status_code == 200
    service = kubernetes()["Service"]
    assert service["spec"]["selector"] == deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_kubernetes_gives_a_replica_longer_than_its_drain_and_passes_only_settings_the_code_reads() -> None:
    documents = kubernetes()
    pod = documents["Deployment"]["spec"]["template"]["spec"]
    env = {item["name"]: item for item in pod["containers"][0]["env"]}
    drain = float(env[DRAIN_VAR]["value"]) if DRAIN_VAR in env else DEFAULT_DRAIN_S
    assert pod["terminationGracePeriodSeconds"] > drain + STEP_GRACE_S
    assert all(read_by_the_code(name) for name in env), [name for name in env if not read_by_the_code(name)]
    secret_ref = env["METRIC_TRACKER_SECRET"]["valueFrom"]["secretKeyRef"]
    assert secret_ref["name"] == documents["Secret"]["metadata"]["name"]
    assert secret_ref["key"] in documents["Secret"]["stringData"]


def test_compose_and_haproxy_agree() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    config = (DEPLOY / "haproxy.cfg").read_text()
    services = compose["services"]
    replicas = [name for name in services if name.startswith("replica")]
    assert len(replicas) >= 2
    for name in replicas:
        replica = services[name]
        drain = float(replica["environment"].get(DRAIN_VAR, DEFAULT_DRAIN_S))
        assert int(replica["stop_grace_period"].removesuffix("s")) > drain + STEP_GRACE_S
        assert all(read_by_the_code(setting) for setting in replica["environment"])
    proxy = services["proxy"]
    variables = set(re.findall(r'"\$\{(\w+)\}"', config))
    assert variables == set(proxy["environment"])  # every variable the configuration reads is set
    assert {proxy["environment"][f"REPLICA_{i + 1}"] for i in range(len(replicas))} == {
        f"{name}:{image_port()}" for name in replicas
    }
    assert re.search(rf"option httpchk GET {READY_PATH}\n", config)
    assert len(re.findall(r"^\s+server replica\d+ ", config, re.M)) == len(replicas)


def test_haproxy_gives_each_session_affinity_by_a_cookie_naming_its_replica() -> None:
    """A resuming client's socket must reach the replica that created its session (tests/test_scale_out_proxy.py
    plays it): the backend inserts a cookie in the answers, and each server line names its own value."""
    config = (DEPLOY / "haproxy.cfg").read_text()
    assert re.search(r"^\s+cookie \w+ insert indirect nocache$", config, re.M)
    servers = re.findall(r"^\s+server replica\d+ .*$", config, re.M)
    values = [re.search(r" cookie (\S+)", line) for line in servers]
    assert all(values) and len({value.group(1) for value in values if value}) == len(servers)


# --- who a replica counts as the client: the per-client cap and the proxy's forwarding agree ---------------------

COMPOSE_PROXY = "proxy"


def counted_client(trusted: list[str], peer: str, forwarded_for: str) -> str:
    """The address uvicorn hands the app (and so the session cap) for a WebSocket from `peer` with that header."""
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    seen: list[str] = []

    async def app(scope: dict, receive: object, send: object) -> None:
        seen.append(scope["client"][0])

    scope = {"type": "websocket", "client": (peer, 40000), "headers": [(b"x-forwarded-for", forwarded_for.encode())]}
    asyncio.run(ProxyHeadersMiddleware(app, trusted_hosts=trusted)(scope, None, None))  # type: ignore[arg-type]
    return seen[0]


def trusted_under(settings: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    for name in (FORWARDED_VAR, "SPACE_ID"):
        monkeypatch.delenv(name, raising=False)
    if FORWARDED_VAR in settings:
        monkeypatch.setenv(FORWARDED_VAR, settings[FORWARDED_VAR])
    return ServerSettings.load().trusted_proxies()


LAN_AND_CLUSTER_PEERS = ("10.1.2.3", "172.17.0.5", "172.30.0.130", "192.168.1.20", "127.0.0.2")


@pytest.mark.parametrize("deployment", ["image", "compose", "kubernetes"])
def test_a_client_that_is_not_a_named_proxy_cannot_change_its_counted_address(
    deployment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    trusted = trusted_under(shipped_settings()[deployment], monkeypatch)
    for peer in LAN_AND_CLUSTER_PEERS:
        assert counted_client(trusted, peer, "203.0.113.7") == peer, (deployment, peer, trusted)
    # the debugger's own sessions, on loopback, still count the browser's address
    assert counted_client(trusted, "127.0.0.1", "203.0.113.7") == "203.0.113.7"


def test_compose_trusts_exactly_its_proxy_which_names_every_client() -> None:
    services = compose()["services"]
    proxy_address = services[COMPOSE_PROXY]["networks"]["default"]["ipv4_address"]
    (network,) = compose()["networks"]["default"]["ipam"]["config"]
    assert ipaddress.ip_address(proxy_address) in ipaddress.ip_network(network["subnet"])
    assert ipaddress.ip_address(proxy_address) not in ipaddress.ip_network(network["ip_range"])  # never a replica's
    for name, service in services.items():
        if name.startswith("replica"):
            assert service["environment"][FORWARDED_VAR] == proxy_address
    assert counted_client([proxy_address], proxy_address, "198.51.100.4") == "198.51.100.4"
    # HAProxy replaces what a client sent with the address it connected from
    config = (DEPLOY / "haproxy.cfg").read_text()
    assert re.search(r"^\s+http-request del-header X-Forwarded-For\n\s+option forwardfor\n", config, re.M)


def test_kubernetes_has_no_proxy_to_trust_and_the_image_trusts_networks_only_on_a_space(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = shipped_settings()
    assert FORWARDED_VAR not in settings["kubernetes"] and FORWARDED_VAR not in settings["image"]
    monkeypatch.delenv(FORWARDED_VAR, raising=False)
    monkeypatch.setenv("SPACE_ID", "someone/metric_tracker_rl")  # set by Hugging Face in a Space's container
    assert counted_client(ServerSettings.load().trusted_proxies(), "10.1.2.3", "203.0.113.7") == "203.0.113.7"


@pytest.mark.parametrize("deployment", ["compose", "kubernetes"])
def test_one_replica_gives_one_trainer_all_the_sessions_the_training_docs_configure(deployment: str) -> None:
    settings = shipped_settings()[deployment]
    per_client = int(settings.get("MAX_SESSIONS_PER_CLIENT", settings["MAX_CONCURRENT_ENVS"]))
    assert min(per_client, int(settings["MAX_CONCURRENT_ENVS"])) >= trainer_sessions()


def test_kubernetes_runs_the_image_the_docs_build_without_pulling_it() -> None:
    (built,) = re.findall(r"^docker build -t (\S+) \.$", (ROOT / "docs" / "deployment.md").read_text(), re.M)
    (container,) = kubernetes()["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == built
    assert container["imagePullPolicy"] in ("IfNotPresent", "Never")


# The server's own peak with every session open and the SQL tool under attack (lab/speed/attack_latency_pool.py
# measures it: about 250 MB with 65 sessions), with room for a deployment's 128.
SERVER_PEAK_MB = 512
UNITS_MB = {"Gi": 1024, "Mi": 1, "g": 1024, "m": 1}


def megabytes(quantity: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([A-Za-z]*)", str(quantity)).groups()  # type: ignore[union-attr]
    return int(number) * UNITS_MB[unit]


def test_the_declared_memory_holds_the_server_and_its_sql_workers_at_their_limits() -> None:
    """Each SQL worker may hold its start-up, its tables and one query at the address-space limit; the memory that
    openenv.yaml, compose and Kubernetes declare covers the server's peak and every worker at that limit."""
    from metric_tracker_rl.sql.engine import CACHE_MB, QUERY_MB, WORKER_START_MB
    from metric_tracker_rl.sql.pool import DEFAULT_WORKERS

    bound = SERVER_PEAK_MB + DEFAULT_WORKERS * (WORKER_START_MB + CACHE_MB + QUERY_MB)
    manifest = yaml.safe_load((ROOT / "openenv.yaml").read_text())
    declared = manifest["validation"]["resources"]["memory_mb"]
    (container,) = kubernetes()["Deployment"]["spec"]["template"]["spec"]["containers"]
    replica = next(service for name, service in compose()["services"].items() if name.startswith("replica"))
    assert bound <= declared == megabytes(container["resources"]["limits"]["memory"]) == megabytes(replica["mem_limit"])
