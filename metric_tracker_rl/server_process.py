"""A server started as a child process on a loopback port: the command, its environment and its health, with
nothing of the server's code imported (so a client-side harness may start one). `serving.local_server` adds a server
in this process."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO

# A child server leaves out, unless asked: the debugger, debug mode, and a secret from the caller's environment.
STANDARD_MODE = {"ENABLE_WEB_INTERFACE": "false", "METRIC_TRACKER_DEBUG": ""}
SECRET_VARIABLE = "METRIC_TRACKER_SECRET"
SERVER_MODULE = "metric_tracker_rl.serving.app"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def healthy(url: str, timeout_s: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout_s) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def stop_process(process: subprocess.Popen, timeout_s: float = 15.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _log_tail(log: IO[bytes], limit: int = 4000) -> str:
    log.seek(0)
    return log.read().decode(errors="replace")[-limit:]


@contextlib.contextmanager
def serving(
    command: list[str],
    port: int,
    env: dict[str, str],
    log: IO[bytes],
    *,
    cwd: Path | None = None,
    timeout_s: float = 90.0,
) -> Iterator[subprocess.Popen]:
    """Start `command` (which must listen on `port`), yield the process once /health answers, stop it on exit.

    Its output goes to `log` (a file: an unread pipe fills up and blocks a chatty server); a failure to start
    raises RuntimeError with the end of that log."""
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while not healthy(url, timeout_s=1.0):
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with code {process.returncode}:\n{_log_tail(log)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server was not healthy within {timeout_s:.0f} s:\n{_log_tail(log)}")
            time.sleep(0.2)
        yield process
    finally:
        stop_process(process)


@contextlib.contextmanager
def child_server(
    *,
    held_out_secret: str = "",
    env: dict[str, str] | None = None,
    workers: int = 1,
    module: str = SERVER_MODULE,
    cwd: Path | None = None,
    timeout_s: float = 120.0,
    port: int = 0,
) -> Iterator[str]:
    """A standard-mode server (no debugger, no debug mode) as `python -m module` in a child process on `port` (0: a
    free one), with `env` on top of this process's environment; yields its URL, stops it on exit. `held_out_secret`
    serves held-out episodes."""
    port = port or free_port()
    child_env = {**os.environ, **STANDARD_MODE, SECRET_VARIABLE: held_out_secret, **(env or {})}  # blank: unset
    command = [sys.executable, "-m", module, "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    with tempfile.TemporaryFile() as log, serving(command, port, child_env, log, cwd=cwd, timeout_s=timeout_s):
        yield f"http://127.0.0.1:{port}"
