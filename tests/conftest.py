"""Shared fixtures: a real server process on a free loopback port."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_server(extra_env: dict[str, str] | None = None, workers: int = 1,
                   timeout_s: float = 90.0) -> Iterator[str]:
    """Start `python -m server.app` on a free loopback port; yield its base URL; stop it."""
    port = free_port()
    env = {**os.environ, "ENABLE_WEB_INTERFACE": "false", **(extra_env or {})}
    command = [sys.executable, "-m", "server.app", "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(workers)]
    if env.get("ENABLE_WEB_INTERFACE") == "false":
        command.append("--no-web")
    # The log goes to a file: an unread pipe fills up after ~64 KB of access logs and then blocks the server.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                if process.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"server exited early:\n{log.read().decode(errors='replace')[-4000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError("server did not become healthy in time")
                time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """A standard-mode server (debug off, web interface off) shared by the session."""
    with running_server() as url:
        yield url
