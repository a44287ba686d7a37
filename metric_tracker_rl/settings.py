"""Every setting a process reads from its environment, typed and validated in one place.

One object per process kind: `ServerSettings` (the server, read in `build_app` and `main`) and `ClientSettings`
(anything that talks to a server: inference.py, the TRL class, the Inspect task; read where a run starts). Nothing
else reads environment variables; settings travel as arguments from there. A bad value stops the process at
start-up with an error that names the variable and what it accepts. docs/settings.md lists every variable (a
test keeps that table and these classes in step).
"""

from __future__ import annotations

import os
import sys
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import AliasChoices, Field, ValidationError, ValidationInfo, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings import SettingsError as SourceError

DEFAULT_MAX_CONCURRENT_ENVS = 64
DEFAULT_SESSION_TIMEOUT_S = 900.0
DEFAULT_UNRESET_GRACE_S = 60.0
DEFAULT_FULL_SERVER_IDLE_S = 120.0
DEFAULT_DRAIN_S = 10.0
DEFAULT_STEP_TIMEOUT_S = 60.0
MAX_STEP_TIMEOUT_S = 150.0  # under every client's default message timeout (180 s), so a bounded step always answers
DEFAULT_RETRY_DEADLINE_S = 300.0
DEFAULT_API_BASE_URL = "https://router.huggingface.co/v1"
DEFAULT_MODEL_NAME = "Qwen/Qwen2.5-72B-Instruct"
DEFAULT_SERVER_URL = "http://127.0.0.1:8000"
# A Hugging Face Space's container is reached only through the Space's proxy, which sits on a private network.
SPACE_PROXY_NETWORKS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
LOOPBACK = ("127.0.0.1", "::1")

SettingsT = TypeVar("SettingsT", bound="Settings")
_WARNED: set[str] = set()  # the deprecated names this process has warned about


class SettingsError(ValueError):
    """A variable whose value cannot be used; the message names it and what it accepts."""


def variable(name: str, *aliases: str) -> AliasChoices:
    """The variable a field is read from, then older names (the first one set wins)."""
    return AliasChoices(name, *aliases)


class Settings(BaseSettings):
    """Shared parsing rules: blank values count as unset, unknown variables are ignored."""

    model_config = SettingsConfigDict(
        env_ignore_empty=True, populate_by_name=True, extra="ignore", str_strip_whitespace=True, frozen=True
    )
    # Old name -> current name; reading an old one prints one deprecation line to stderr.
    DEPRECATED: ClassVar[dict[str, str]] = {}

    @field_validator("*", mode="before")
    @classmethod
    def blank_is_unset(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str) and not value.strip() and info.field_name is not None:
            return cls.model_fields[info.field_name].get_default(call_default_factory=True)
        return value.strip() if isinstance(value, str) else value

    @classmethod
    def load(cls: type[SettingsT], **overrides: Any) -> SettingsT:
        """The settings from the environment (with `overrides` on top), or a SettingsError naming the variable."""
        for old, new in cls.DEPRECATED.items():
            used = (os.environ.get(old) or "").strip() and not (os.environ.get(new) or "").strip()
            if used and old not in _WARNED:  # once per process (the Inspect solver loads per sample)
                _WARNED.add(old)
                print(f"warning: {old} is deprecated, set {new} instead", file=sys.stderr, flush=True)
        try:
            return cls(**overrides)
        except ValidationError as exc:
            raise SettingsError("; ".join(describe_error(cls, error) for error in exc.errors())) from None
        except SourceError as exc:  # a JSON value that does not parse
            field_name = str(exc).split('"')[1] if '"' in str(exc) else ""
            field = cls.model_fields.get(field_name)
            names = " / ".join(variable_names(field)) if field else field_name
            raise SettingsError(f"{names}: not valid JSON (expected {describe_expected(field)})") from None

    @classmethod
    def variables(cls) -> dict[str, str]:
        """Every variable read, mapped to its field (aliases included)."""
        return {name: field_name for field_name, field in cls.model_fields.items() for name in variable_names(field)}


def describe_error(cls: type[Settings], error: Any) -> str:
    location = str(error["loc"][0]) if error["loc"] else ""
    field = cls.model_fields.get(cls.variables().get(location, location))
    names = " / ".join(variable_names(field)) if field else location
    return f"{names}: {error['msg']} (got {error.get('input')!r}; expected {describe_expected(field)})"


def variable_names(field: FieldInfo) -> list[str]:
    """The variables a setting is read from: its `variable(...)` alias choices."""
    alias = field.validation_alias
    if not isinstance(alias, AliasChoices):
        raise TypeError("every setting names its variables with variable()")
    return [name for name in alias.choices if isinstance(name, str)]


def describe_expected(field: Any) -> str:
    if field is None:
        return "a valid value"
    return field.description or "a valid value"


class ServerSettings(Settings):
    """What the server reads at start-up (`uv run server`, `uvicorn server.app:app`, the image, each worker)."""

    host: str = Field("0.0.0.0", validation_alias=variable("HOST"), description="the address to listen on")
    port: int = Field(8000, ge=0, le=65535, validation_alias=variable("PORT"), description="the port, 0 to 65535")
    workers: int = Field(
        1,
        ge=1,
        validation_alias=variable("WORKERS"),
        description="server processes, 1 or more; each holds its own sessions",
    )
    max_concurrent_envs: int = Field(
        DEFAULT_MAX_CONCURRENT_ENVS,
        ge=1,
        validation_alias=variable("MAX_CONCURRENT_ENVS"),
        description="sessions served at once (WebSocket and HTTP), 1 or more",
    )
    session_timeout_s: float = Field(
        DEFAULT_SESSION_TIMEOUT_S,
        gt=0,
        validation_alias=variable("SESSION_TIMEOUT_S"),
        description="seconds of silence after which a session is closed, more than 0",
    )
    enable_web_interface: bool = Field(
        True, validation_alias=variable("ENABLE_WEB_INTERFACE"), description="serve the debugger at /web: true or false"
    )
    max_sessions_per_client: int | None = Field(
        None,
        ge=1,
        validation_alias=variable("MAX_SESSIONS_PER_CLIENT"),
        description="sessions one client may hold at once, 1 or more (unset: MAX_CONCURRENT_ENVS)",
    )
    sql_workers: int = Field(
        3,
        ge=1,
        le=64,
        validation_alias=variable("SQL_WORKERS"),
        description="SQL worker processes of each server process, 1 to 64, started on the first query; one client "
        "may use all but one of them at once",
    )
    step_timeout_s: float = Field(
        DEFAULT_STEP_TIMEOUT_S,
        gt=0,
        le=MAX_STEP_TIMEOUT_S,
        validation_alias=variable("STEP_TIMEOUT_S"),
        description=f"seconds within which the server answers every step, more than 0 and at most "
        f"{MAX_STEP_TIMEOUT_S:g}: a statement that cannot finish in them (a busy server) is stopped and "
        "answered as an error that uses no step, and the episode goes on",
    )
    unreset_session_grace_s: float = Field(
        DEFAULT_UNRESET_GRACE_S,
        gt=0,
        validation_alias=variable("UNRESET_SESSION_GRACE_S"),
        description="seconds a new session (WebSocket or HTTP) may stay unused (no reset) before it is closed, more "
        "than 0",
    )
    full_server_idle_s: float = Field(
        DEFAULT_FULL_SERVER_IDLE_S,
        gt=0,
        validation_alias=variable("FULL_SERVER_IDLE_S"),
        description="seconds a session may go without a reset, step or tool call while the server is full before it "
        "is closed, more than 0",
    )
    forwarded_allow_ips: str = Field(
        "",
        validation_alias=variable("FORWARDED_ALLOW_IPS"),
        description="comma-separated proxies (addresses or networks) whose X-Forwarded-For names the client",
    )
    space_id: str = Field(
        "",
        validation_alias=variable("SPACE_ID"),
        description="set by Hugging Face on a Space: trusts the Space's proxy networks",
    )
    debug: bool = Field(
        False,
        validation_alias=variable("METRIC_TRACKER_DEBUG"),
        description="debug mode, observations carry the ground truth: true or false",
    )
    held_out_secret: str = Field(
        "",
        repr=False,
        validation_alias=variable("METRIC_TRACKER_SECRET"),
        description="held-out mode: a secret mixed into every random stream, never shown",
    )
    drain_s: float = Field(
        DEFAULT_DRAIN_S,
        ge=0,
        validation_alias=variable("METRIC_TRACKER_DRAIN_S"),
        description="seconds open sessions are still served after SIGTERM, 0 or more",
    )
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field(
        "info",
        validation_alias=variable("LOG_LEVEL"),
        description="the server's log level: critical, error, warning, info (each request) or debug; successful "
        "/health and /ready probes are never logged",
    )
    self_url: str | None = Field(
        None,
        validation_alias=variable("METRIC_TRACKER_SELF_URL"),
        description="the URL the debugger reaches this server's API at (default: the "
        "socket the page's request arrived on)",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def any_case_level(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    def trusted_proxies(self) -> list[str]:
        """The peers whose X-Forwarded-For header names the client (and so the per-client session cap's client).

        Loopback always, since the debugger's own sessions forward the browser's address from there; then the
        proxies named in FORWARDED_ALLOW_IPS. When it names none, on a Hugging Face Space only (SPACE_ID set), the
        private networks the Space's proxy connects from; anywhere else a peer on a LAN or in a cluster is counted
        as itself, whatever header it sends."""
        named = [item.strip() for item in self.forwarded_allow_ips.split(",") if item.strip()]
        if not named and self.space_id:
            named = list(SPACE_PROXY_NETWORKS)
        return list(dict.fromkeys([*LOOPBACK, *named]))


class ClientSettings(Settings):
    """What a client of the server reads: inference.py, the TRL class, the Inspect task."""

    DEPRECATED: ClassVar[dict[str, str]] = {"BASE_URL": "METRIC_TRACKER_URL"}

    server_url: str | None = Field(
        None,
        validation_alias=variable("METRIC_TRACKER_URL", "BASE_URL"),
        description="a running environment server (BASE_URL is its deprecated name); unset: inference.py and "
        f"Inspect start a local server, the TRL class uses {DEFAULT_SERVER_URL}",
    )
    image_name: str | None = Field(
        None,
        validation_alias=variable("LOCAL_IMAGE_NAME", "IMAGE_NAME"),
        description="inference.py without a server URL: a Docker image of the environment to start",
    )
    reset_defaults: dict[str, Any] = Field(
        default_factory=dict,
        validation_alias=variable("METRIC_TRACKER_RESET"),
        description="the TRL class: a JSON object of reset settings applied under every dataset row",
    )
    connect_timeout_s: float = Field(
        30.0,
        gt=0,
        validation_alias=variable("OPENENV_CONNECT_TIMEOUT_S"),
        description="seconds to open a WebSocket session, more than 0",
    )
    message_timeout_s: float = Field(
        180.0,
        gt=0,
        validation_alias=variable("OPENENV_MESSAGE_TIMEOUT_S"),
        description="seconds to wait for one reply, more than 0",
    )
    resume_sessions: bool = Field(
        True,
        validation_alias=variable("METRIC_TRACKER_RESUME_SESSIONS"),
        description="the TRL class, inference.py and Inspect: keep each episode in a server session that a dropped "
        "connection comes back to (false: one socket, one session): true or false",
    )
    retry_deadline_s: float = Field(
        DEFAULT_RETRY_DEADLINE_S,
        ge=0,
        validation_alias=variable("METRIC_TRACKER_RETRY_DEADLINE_S"),
        description="seconds a reset keeps retrying while the server is down or restarting, 0 or more",
    )
    server_start_timeout_s: float = Field(
        120.0,
        gt=0,
        validation_alias=variable("SERVER_START_TIMEOUT_S"),
        description="seconds a local server or container may take to start",
    )
    api_base_url: str = Field(
        DEFAULT_API_BASE_URL,
        validation_alias=variable("API_BASE_URL"),
        description="inference.py: the model's OpenAI-compatible endpoint",
    )
    model_name: str = Field(
        DEFAULT_MODEL_NAME, validation_alias=variable("MODEL_NAME"), description="inference.py: the model"
    )
    api_key: str | None = Field(
        None,
        repr=False,
        validation_alias=variable("API_KEY", "HF_TOKEN", "OPENAI_API_KEY"),
        description="inference.py: the model's key, the first one set wins (a local endpoint needs none)",
    )
    temperature: float = Field(
        0.0, ge=0, validation_alias=variable("TEMPERATURE"), description="inference.py: sampling temperature, 0 or more"
    )
    max_tokens: int = Field(
        1500,
        ge=1,
        validation_alias=variable("MAX_TOKENS"),
        description="inference.py: tokens per model turn, 1 or more",
    )
    max_tool_rounds: int | None = Field(
        None,
        ge=1,
        validation_alias=variable("MAX_TOOL_ROUNDS"),
        description="inference.py: model turns per task, 1 or more (default: the episode's step budget and half "
        "as many again, 60 for 40 steps)",
    )
    model_timeout_s: float = Field(
        120.0,
        gt=0,
        validation_alias=variable("MODEL_TIMEOUT_S"),
        description="inference.py: seconds per model call, more than 0",
    )
    model_max_retries: int = Field(
        2,
        ge=0,
        validation_alias=variable("MODEL_MAX_RETRIES"),
        description="inference.py: retries per model call, 0 or more",
    )
    success_threshold: float | None = Field(
        None,
        ge=0,
        le=1,
        validation_alias=variable("SUCCESS_THRESHOLD"),
        description="inference.py: the score an [END] line calls a success, 0 to 1 (default: the episode's tier's, "
        "docs/inference.md)",
    )

    def model_requested(self) -> bool:
        """A model is asked for by a key, or by naming an endpoint or a model (a local endpoint needs no key)."""
        return bool(self.api_key) or bool({"api_base_url", "model_name"} & self.model_fields_set)
