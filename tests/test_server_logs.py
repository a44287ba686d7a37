"""The server's logs: answered /health and /ready probes stay out of the access log (a failing one is kept), and
the log level is a setting (LOG_LEVEL, or --log-level) that reaches uvicorn in every worker process."""

from __future__ import annotations

import logging
import logging.config
import os
import sys
import tempfile
from collections.abc import Iterator

import httpx
import pytest

from metric_tracker_rl.server_process import free_port, serving
from metric_tracker_rl.serving import app as server_app
from metric_tracker_rl.serving import process
from metric_tracker_rl.settings import ServerSettings

ACCESS_FORMAT = '%s - "%s %s HTTP/%s" %d'  # uvicorn's access record


def access_record(path: str, status: int) -> logging.LogRecord:
    return logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, ACCESS_FORMAT, ("127.0.0.1:5000", "GET", path, "1.1", status), None
    )


@pytest.mark.parametrize(
    ("path", "status", "logged"),
    [
        ("/ready", 200, False),
        ("/health", 200, False),
        ("/ready?x=1", 200, False),
        ("/ready", 503, True),
        ("/metadata", 200, True),
        ("/health/extra", 200, True),
    ],
)
def test_answered_probes_are_left_out(path: str, status: int, logged: bool) -> None:
    assert process.QuietProbes().filter(access_record(path, status)) is logged


def test_the_filter_sits_on_the_access_handler_only() -> None:
    config = process.log_config()
    assert config["handlers"]["access"]["filters"] == ["quiet_probes"]
    assert "filters" not in config["handlers"]["default"]
    assert process.QuietProbes().filter(logging.LogRecord("uvicorn.error", logging.INFO, "", 1, "started", (), None))


@pytest.mark.parametrize(("raw", "level"), [("WARNING", "warning"), ("debug", "debug"), ("", "info")])
def test_the_log_level_is_read_in_any_case(raw: str, level: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_LEVEL", raw)
    assert ServerSettings.load().log_level == level


def test_a_bad_log_level_stops_the_server_before_it_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOG_LEVEL", "loud")
    with pytest.raises(SystemExit) as exit_info:
        server_app.main(["--port", "0"])
    assert exit_info.value.code == 2 and "LOG_LEVEL" in capsys.readouterr().err
    monkeypatch.delenv("LOG_LEVEL")
    with pytest.raises(SystemExit):
        server_app.main(["--log-level", "loud"])
    assert "--log-level" in capsys.readouterr().err


@pytest.fixture
def server_log() -> Iterator[tuple[list[str], int, object]]:
    port = free_port()
    command = [sys.executable, "-m", "server.app", "--host", "127.0.0.1", "--port", str(port), "--no-web"]
    with tempfile.TemporaryFile() as log:
        yield command, port, log


def served_lines(command: list[str], port: int, log: object, env: dict[str, str]) -> list[str]:
    with serving(command, port, {**os.environ, **env}, log):  # type: ignore[arg-type]
        for _ in range(3):
            httpx.get(f"http://127.0.0.1:{port}/ready", timeout=30)
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=30)
        httpx.get(f"http://127.0.0.1:{port}/metadata", timeout=30)
    log.seek(0)  # type: ignore[attr-defined]
    return log.read().decode().splitlines()  # type: ignore[attr-defined]


@pytest.mark.slow  # starts server processes
def test_a_server_logs_its_requests_but_not_its_probes(server_log: tuple[list[str], int, object]) -> None:
    command, port, log = server_log
    lines = served_lines(command, port, log, {"LOG_LEVEL": ""})
    assert any('"GET /metadata HTTP/1.1" 200' in line for line in lines), lines
    assert not any('"GET /ready' in line or '"GET /health' in line for line in lines), lines


@pytest.mark.slow  # starts server processes
def test_a_warning_level_server_logs_no_request(server_log: tuple[list[str], int, object]) -> None:
    command, port, log = server_log
    lines = served_lines([*command, "--log-level", "WARNING"], port, log, {})
    assert not any("GET /" in line for line in lines), lines
