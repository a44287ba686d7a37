"""The one way to start a local environment server on a loopback port: `local_server` (inference.py, the tests),
in this process or as a child process (`server_process.child_server`, which a client-side harness uses directly);
`environment_server` is inference.py's choice between a running server, a container and a local one."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from metric_tracker_rl.server_process import SERVER_MODULE, child_server
from metric_tracker_rl.settings import ClientSettings


@contextlib.contextmanager
def local_server(
    *,
    in_process: bool = False,
    held_out_secret: str = "",
    env: dict[str, str] | None = None,
    workers: int = 1,
    module: str = SERVER_MODULE,
    cwd: Path | None = None,
    timeout_s: float = 120.0,
    port: int = 0,
) -> Iterator[str]:
    """A standard-mode server (no debugger, no debug mode) on a loopback port (`port`, or a free one when 0); yields
    its URL, stops it on exit.

    `in_process`: uvicorn in a thread of this process, which has paid OpenEnv's import already (a second
    interpreter pays it again: most of a start-up); else `python -m module` as a child process, with `env` on top
    of this process's environment (`workers`, `module` and `cwd` apply to it). `held_out_secret` serves
    held-out episodes."""
    if in_process:
        with _server_thread(held_out_secret, timeout_s, port) as url:
            yield url
        return
    with child_server(
        held_out_secret=held_out_secret,
        env=env,
        workers=workers,
        module=module,
        cwd=cwd,
        timeout_s=timeout_s,
        port=port,
    ) as url:
        yield url


@contextlib.contextmanager
def _server_thread(held_out_secret: str, timeout_s: float, port: int) -> Iterator[str]:
    import uvicorn

    from metric_tracker_rl.serving.app import build_app, websocket_options
    from metric_tracker_rl.settings import ServerSettings

    overrides = {"held_out_secret": held_out_secret} if held_out_secret else {}
    settings = ServerSettings.load(enable_web_interface=False, debug=False, **overrides)
    try:
        listener = socket.create_server(("127.0.0.1", port))
    except OSError as exc:
        raise RuntimeError(
            f"cannot listen on 127.0.0.1:{port} ({exc.strerror}): choose another port, or 0 for a free one"
        ) from exc
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(build_app(settings=settings), log_level="warning", **websocket_options()))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, name="environment-server", daemon=True)
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


def environment_server(settings: ClientSettings, port: int = 0) -> contextlib.AbstractContextManager[str]:
    """Where a client run (inference.py) finds its server: METRIC_TRACKER_URL, else a container of
    LOCAL_IMAGE_NAME, else a server in this process; one it starts listens on `port` (0: a free one). Where it
    started one, it says so on stderr."""
    if settings.server_url:
        return contextlib.nullcontext(settings.server_url.rstrip("/"))
    if settings.image_name:
        return _docker_server(settings.image_name, settings.server_start_timeout_s, port)
    return _noted(
        local_server(in_process=True, timeout_s=settings.server_start_timeout_s, port=port), "in this process"
    )


@contextlib.contextmanager
def _noted(server: contextlib.AbstractContextManager[str], where: str) -> Iterator[str]:
    with server as url:
        print(f"[INFO] started local server {where} url={url}", file=sys.stderr, flush=True)
        yield url
    print(f"[INFO] stopped local server url={url}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _docker_server(image: str, start_timeout_s: float, port: int) -> Iterator[str]:
    from openenv.core.containers.runtime.providers import LocalDockerProvider

    try:
        provider = LocalDockerProvider()
    except RuntimeError as exc:
        raise RuntimeError(
            f"cannot start image {image!r}: {exc} Set METRIC_TRACKER_URL to use a running server, "
            "or unset LOCAL_IMAGE_NAME / IMAGE_NAME to start a local server process."
        ) from exc
    try:
        url = provider.start_container(image, port=port or None)
        print(f"[INFO] started container from {image} at {url}", file=sys.stderr, flush=True)
        provider.wait_for_ready(url, timeout_s=start_timeout_s)
        yield url
    finally:
        provider.stop_container()
