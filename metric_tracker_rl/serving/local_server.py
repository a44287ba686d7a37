"""The one way to start a local environment server on a loopback port: `local_server` (inference.py, the Inspect
task, the tests), in this process or as a child process; `serving` runs any server command (the lab's
reference servers, the image); `environment_server` is inference.py's choice between a running server, a
container and a local one. The child-process path spawns a command and never imports the server's code."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from metric_tracker_rl.settings import ClientSettings

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
def serving(command: list[str], port: int, env: dict[str, str], log: IO[bytes], *, cwd: Path | None = None,
            timeout_s: float = 90.0) -> Iterator[subprocess.Popen]:
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
def local_server(*, in_process: bool = False, held_out_secret: str = "", env: dict[str, str] | None = None,
                 workers: int = 1, module: str = SERVER_MODULE, cwd: Path | None = None,
                 timeout_s: float = 120.0) -> Iterator[str]:
    """A standard-mode server (no debugger, no debug mode) on a free loopback port; yields its URL, stops it on exit.

    `in_process`: uvicorn in a thread of this process, which has paid OpenEnv's import already (a second
    interpreter pays it again: most of a start-up); else `python -m module` as a child process, with `env` on top
    of this process's environment (`workers`, `module` and `cwd` apply to it). `held_out_secret` serves
    held-out episodes."""
    if in_process:
        with _server_thread(held_out_secret, timeout_s) as url:
            yield url
        return
    port = free_port()
    child_env = {**os.environ, **STANDARD_MODE, SECRET_VARIABLE: held_out_secret, **(env or {})}  # blank: unset
    command = [sys.executable, "-m", module, "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    with tempfile.TemporaryFile() as log, serving(command, port, child_env, log, cwd=cwd, timeout_s=timeout_s):
        yield f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def _server_thread(held_out_secret: str, timeout_s: float) -> Iterator[str]:
    import uvicorn

    from metric_tracker_rl.serving.app import build_app, websocket_options
    from metric_tracker_rl.settings import ServerSettings

    overrides = {"held_out_secret": held_out_secret} if held_out_secret else {}
    settings = ServerSettings.load(enable_web_interface=False, debug=False, **overrides)
    listener = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(build_app(settings=settings), log_level="warning", **websocket_options()))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, name="environment-server",
                              daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout_s
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the in-process server did not start within {timeout_s:.0f} s")
            time.sleep(0.02)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.close()


def environment_server(settings: ClientSettings) -> contextlib.AbstractContextManager[str]:
    """Where a client run (inference.py) finds its server: METRIC_TRACKER_URL, else a container of
    LOCAL_IMAGE_NAME, else a server in this process. Where it started one, it says so on stderr."""
    if settings.server_url:
        return contextlib.nullcontext(settings.server_url.rstrip("/"))
    if settings.image_name:
        return _docker_server(settings.image_name, settings.server_start_timeout_s)
    return _noted(local_server(in_process=True, timeout_s=settings.server_start_timeout_s), "in this process")


@contextlib.contextmanager
def _noted(server: contextlib.AbstractContextManager[str], where: str) -> Iterator[str]:
    with server as url:
        print(f"[INFO] started local server {where} url={url}", file=sys.stderr, flush=True)
        yield url
    print(f"[INFO] stopped local server url={url}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _docker_server(image: str, start_timeout_s: float) -> Iterator[str]:
    from openenv.core.containers.runtime.providers import LocalDockerProvider

    try:
        provider = LocalDockerProvider()
    except RuntimeError as exc:
        raise RuntimeError(f"cannot start image {image!r}: {exc} Set METRIC_TRACKER_URL to use a running server, "
                           "or unset LOCAL_IMAGE_NAME / IMAGE_NAME to start a local server process.") from exc
    try:
        url = provider.start_container(image)
        print(f"[INFO] started container from {image} at {url}", file=sys.stderr, flush=True)
        provider.wait_for_ready(url, timeout_s=start_timeout_s)
        yield url
    finally:
        provider.stop_container()
