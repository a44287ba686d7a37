"""Typed settings: what each variable accepts, the clear error for what it does not, old names, and the docs table."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metric_tracker_rl import settings as settings_module
from metric_tracker_rl.serving import app as server_app
from metric_tracker_rl.settings import ClientSettings, ServerSettings, Settings, SettingsError

ROOT = Path(__file__).resolve().parents[1]
CLASSES: tuple[type[Settings], ...] = (ServerSettings, ClientSettings)
SECONDS = [
    (cls, name)
    for cls in CLASSES
    for name, field in cls.model_fields.items()
    if field.annotation is float and name.endswith("_s")
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees only the variables it sets."""
    for cls in CLASSES:
        for name in cls.variables():
            monkeypatch.delenv(name, raising=False)


def documented_variables() -> dict[str, tuple[str, str]]:
    """variable -> (process, default as written), from the table in docs/settings.md."""
    rows = re.findall(
        r"^\| (`[^|]+) \| (server|client) \| ([^|]+) \|", (ROOT / "docs" / "settings.md").read_text(), re.M
    )
    return {name: (process, default) for names, process, default in rows for name in re.findall(r"`([A-Z_]+)`", names)}


def written_default(cls: type[Settings], field_name: str) -> str:
    value = cls.model_fields[field_name].get_default(call_default_factory=True)
    if value is None or value == "":
        return "unset"
    return f"`{str(value).lower() if isinstance(value, bool) else value}`"


def test_the_docs_table_lists_exactly_the_variables_the_settings_read_with_their_defaults() -> None:
    read = {
        name: (process, written_default(cls, field_name))
        for cls, process in ((ServerSettings, "server"), (ClientSettings, "client"))
        for name, field_name in cls.variables().items()
    }
    assert documented_variables() == read


@pytest.mark.parametrize(("cls", "field_name"), SECONDS)
@given(value=st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6))
def test_seconds_are_numbers_in_range_or_a_clear_error(cls: type[Settings], field_name: str, value: float) -> None:
    field = cls.model_fields[field_name]
    variable = field.validation_alias.choices[0]
    lower = next(m for m in field.metadata if hasattr(m, "ge") or hasattr(m, "gt"))
    allowed = value >= lower.ge if hasattr(lower, "ge") else value > lower.gt
    upper = next((m for m in field.metadata if hasattr(m, "le")), None)
    allowed = allowed and (upper is None or value <= upper.le)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(variable, f" {value!r} ")  # surrounding blanks are ignored
        if allowed:
            assert math.isclose(getattr(cls.load(), field_name), value)
        else:
            with pytest.raises(SettingsError, match=re.escape(variable)) as error:
                cls.load()
            assert "expected" in str(error.value) and repr(value) in str(error.value)


@given(text=st.text(alphabet="abcxyz-_.", min_size=1, max_size=8))
def test_a_word_that_is_not_a_number_names_the_variable(text: str) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("METRIC_TRACKER_DRAIN_S", text)
        with pytest.raises(SettingsError, match="METRIC_TRACKER_DRAIN_S: .*seconds open sessions"):
            ServerSettings.load()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True),
        ("true", True),
        ("yes", True),
        ("0", False),
        ("false", False),
        ("no", False),
        ("", False),
        ("  ", False),
    ],
)
def test_debug_mode_is_a_boolean(raw: str, expected: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRIC_TRACKER_DEBUG", raw)
    assert ServerSettings.load().debug is expected


def test_a_bad_boolean_and_a_bad_json_object_are_clear_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENABLE_WEB_INTERFACE", "maybe")
    with pytest.raises(SettingsError, match="ENABLE_WEB_INTERFACE: .*'maybe'.*true or false"):
        ServerSettings.load()
    monkeypatch.setenv("METRIC_TRACKER_RESET", "{seed: 1}")
    with pytest.raises(SettingsError, match="METRIC_TRACKER_RESET: not valid JSON"):
        ClientSettings.load()
    monkeypatch.setenv("METRIC_TRACKER_RESET", "[1]")
    with pytest.raises(SettingsError, match="METRIC_TRACKER_RESET"):
        ClientSettings.load()
    monkeypatch.setenv("METRIC_TRACKER_RESET", '{"max_steps": 3}')
    assert ClientSettings.load().reset_defaults == {"max_steps": 3}


def test_base_url_is_the_deprecated_name_of_the_server_url(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(settings_module, "_WARNED", set())
    monkeypatch.setenv("BASE_URL", "http://old:8000")
    assert ClientSettings.load().server_url == ClientSettings.load().server_url == "http://old:8000"
    assert capsys.readouterr().err == "warning: BASE_URL is deprecated, set METRIC_TRACKER_URL instead\n"  # once
    monkeypatch.setenv("METRIC_TRACKER_URL", "http://new:8000")
    assert ClientSettings.load().server_url == "http://new:8000"
    assert capsys.readouterr().err == ""


def test_the_first_key_set_wins_and_a_model_is_asked_for_by_naming_one(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ClientSettings.load().model_requested() is False
    monkeypatch.setenv("OPENAI_API_KEY", "third")
    assert ClientSettings.load().api_key == "third"
    monkeypatch.setenv("HF_TOKEN", "second")
    monkeypatch.setenv("API_KEY", "first")
    settings = ClientSettings.load()
    assert settings.api_key == "first" and settings.model_requested()
    assert "first" not in repr(settings)  # a key never shows in a log line
    monkeypatch.delenv("API_KEY")
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("MODEL_NAME", "local-model")
    assert ClientSettings.load().model_requested()


def test_trusted_proxies_are_loopback_then_the_named_ones_or_a_spaces_networks() -> None:
    assert ServerSettings.load().trusted_proxies() == ["127.0.0.1", "::1"]
    named = ServerSettings.load(forwarded_allow_ips=" 10.0.0.5, ,127.0.0.1", space_id="me/space")
    assert named.trusted_proxies() == ["127.0.0.1", "::1", "10.0.0.5"]
    assert "10.0.0.0/8" in ServerSettings.load(space_id="me/space").trusted_proxies()


def test_the_server_command_stops_at_a_bad_value_before_anything_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MAX_CONCURRENT_ENVS", "0")
    with pytest.raises(SystemExit) as exit_info:
        server_app.main(["--port", "0"])
    assert exit_info.value.code == 2
    assert "MAX_CONCURRENT_ENVS: Input should be greater than or equal to 1" in capsys.readouterr().err
    monkeypatch.delenv("MAX_CONCURRENT_ENVS")
    with pytest.raises(SystemExit):
        server_app.main(["--workers", "0"])
    assert "WORKERS" in capsys.readouterr().err


def test_every_clients_message_timeout_outlasts_the_longest_step_bound_a_server_may_set() -> None:
    """A server answers every step within its step bound (STEP_TIMEOUT_S, at most MAX_STEP_TIMEOUT_S), so a client
    that waits longer than that never gives up on a step the server is still answering."""
    import inspect

    from metric_tracker_rl.adapters.openenv_harness import McpSession, McpSessionFactory
    from metric_tracker_rl.settings import DEFAULT_STEP_TIMEOUT_S, MAX_STEP_TIMEOUT_S, ClientSettings

    assert DEFAULT_STEP_TIMEOUT_S <= MAX_STEP_TIMEOUT_S < ClientSettings.model_fields["message_timeout_s"].default
    for harness in (McpSession, McpSessionFactory):
        assert inspect.signature(harness).parameters["timeout_s"].default > MAX_STEP_TIMEOUT_S
    with pytest.raises(SettingsError):
        ServerSettings.load(step_timeout_s=MAX_STEP_TIMEOUT_S + 1)
