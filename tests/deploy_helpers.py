"""Shared by the tests of what ships: pyproject.toml, the Dockerfile's COPY sources and ENV settings, and what each
shipped deployment sets on its replicas. The Dockerfile is read by the lab's image-context reader (one reader for
the lab's measurement and the tests)."""

from __future__ import annotations

import re
import shlex
from typing import Any

import yaml
from conftest import ROOT

from lab.speed.image_context import dockerfile_instructions

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def copy_sources(arguments: str) -> list[str]:
    parts = [p for p in shlex.split(arguments) if not p.startswith("--")]
    return parts[:-1]


def image_env() -> dict[str, str]:
    """The ENV instructions' settings (KEY=VALUE form)."""
    settings: dict[str, str] = {}
    for kind, args in dockerfile_instructions():
        if kind == "ENV":
            settings.update(part.split("=", 1) for part in shlex.split(args))
    return settings


DEPLOY = ROOT / "deploy"


def kubernetes() -> dict[str, dict]:
    return {document["kind"]: document for document in yaml.safe_load_all((DEPLOY / "kubernetes.yaml").read_text())}


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def shipped_settings() -> dict[str, dict[str, str]]:
    """Each shipped deployment's replica environment: the image's ENV, then what the deployment file sets."""
    image = image_env()
    replica = next(service for name, service in compose()["services"].items() if name.startswith("replica"))
    (container,) = kubernetes()["Deployment"]["spec"]["template"]["spec"]["containers"]
    pod = {item["name"]: item["value"] for item in container["env"] if "value" in item}
    return {"image": image, "compose": {**image, **replica["environment"]}, "kubernetes": {**image, **pod}}


def trainer_sessions() -> int:
    """The sessions docs/training.md's GRPO settings hold open."""
    (count,) = re.findall(r"MAX_CONCURRENT_ENVS >= (\d+)", (ROOT / "docs" / "training.md").read_text())
    return int(count)
