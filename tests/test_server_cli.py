"""`uv run server` as a person starts it: --help shows the defaults, a port already taken is one clear line, and
the start names the URLs to open (the debugger at /web) without warnings that are not this project's to fix."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile

import pytest
from conftest import ROOT

from metric_tracker_rl.server_process import free_port, serving


def test_help_shows_every_default() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server.app", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    text = " ".join(result.stdout.split())
    for default in ("(default: 0.0.0.0)", "(default: 8000)", "(default: 1)"):
        assert default in text, text


def test_a_port_in_use_is_one_line_that_says_how_to_choose_another() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "server.app", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        f"error: cannot listen on 127.0.0.1:{port} (Address already in use): stop what "
        "holds it, or choose another port with --port N (or PORT=N)"
    )


@pytest.mark.slow
def test_the_start_names_the_debugger_url_and_prints_no_gradio_warning() -> None:
    port = free_port()
    command = [sys.executable, "-m", "server.app", "--host", "127.0.0.1", "--port", str(port)]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(ROOT), "PYTHONUNBUFFERED": "1"}
    with tempfile.TemporaryFile() as log:
        with serving(command, port, env, log, cwd=ROOT, timeout_s=120):
            pass
        log.seek(0)
        text = log.read().decode(errors="replace")
    assert f"the debugger at http://127.0.0.1:{port}/web/" in text, text
    assert "Warning" not in text, text
