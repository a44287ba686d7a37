"""The deployment files agree with the app: probe paths it answers, the port the image serves, grace periods that
outlast the drain, and every setting they pass read by the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from server.lifecycle import READY_PATH, STEP_GRACE_S
from server.serving import DEFAULT_DRAIN_S, DRAIN_VAR

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
CODE = [*ROOT.glob("metric_tracker_rl/**/*.py"), *ROOT.glob("server/*.py"), ROOT / "inference.py"]


def kubernetes() -> dict[str, dict]:
    return {document["kind"]: document for document in yaml.safe_load_all((DEPLOY / "kubernetes.yaml").read_text())}


def image_port() -> int:
    (port,) = re.findall(r"^EXPOSE (\d+)$", (ROOT / "Dockerfile").read_text(), re.M)
    return int(port)


def read_by_the_code(name: str) -> bool:
    return any(name in path.read_text() for path in CODE)


@pytest.fixture(scope="module")
def app_client() -> TestClient:
    import os

    from server.app import build_app

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
        f"{name}:{image_port()}" for name in replicas}
    assert re.search(rf"option httpchk GET {READY_PATH}\n", config)
    assert len(re.findall(r"^\s+server replica\d+ ", config, re.M)) == len(replicas)
